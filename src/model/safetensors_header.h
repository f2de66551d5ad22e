// The safetensors header parser without torch (so it builds in the sanitizer and fuzz builds).
// File layout (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes of
// JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// data section; offsets are relative to the start of the data section.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace inferd::model {

inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;  // the reference implementation's limit

struct HeaderTensor {
  std::string name;
  std::string dtype;           // safetensors dtype string, one of SafetensorsDtypeBytes' names
  std::vector<int64_t> shape;  // every dim in [0, INT64_MAX], product * element bytes fits in uint64
  uint64_t data_begin = 0;     // [data_begin, data_end) inside the data section, length = numel * bytes
  uint64_t data_end = 0;
};

struct SafetensorsHeader {
  uint64_t data_start = 0;            // 8 + header length: file offset of the data section
  uint64_t data_size = 0;             // file size - data_start
  std::vector<HeaderTensor> tensors;  // sorted by name; names unique, non-empty spans pairwise disjoint
};

// Throws std::runtime_error "safetensors: <file>: <what>": how every safetensors error names its file.
[[noreturn]] void SafetensorsFail(const std::string& file, const std::string& what);
// "[2, 3]".
std::string ShapeString(const std::vector<int64_t>& shape);

// Element size of a safetensors dtype string ("BF16" -> 2); 0 when the dtype is unknown.
uint64_t SafetensorsDtypeBytes(const std::string& dtype);

// Parses and validates the header of one shard held in [data, data + size). Throws std::runtime_error
// "safetensors: <file>: ..." naming the tensor where one is at fault (truncated file, bad JSON, missing or
// mistyped fields, unknown dtype, overflowing shape, offsets outside the data section or disagreeing with
// the shape, overlapping tensors).
SafetensorsHeader ParseSafetensorsHeader(const uint8_t* data, uint64_t size, const std::string& file);

}  // namespace inferd::model
