// Decisions beyond the header's contract: gaps between tensors in the data section are allowed; overlaps
// of non-empty tensors are not; "__metadata__" is skipped unread.
#include "model/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace inferd::model {

void SafetensorsFail(const std::string& file, const std::string& what) {
  throw std::runtime_error("safetensors: " + file + ": " + what);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

namespace {

[[noreturn]] void Fail(const std::string& file, const std::string& what) {
  SafetensorsFail(file, what);
}

struct DtypeSize {
  const char* name;
  uint64_t bytes;
};

constexpr DtypeSize kDtypeSizes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"I16", 2}, {"U16", 2}, {"I32", 4},     {"U32", 4},     {"I64", 8},
    {"U64", 8},  {"F16", 2}, {"BF16", 2}, {"F32", 4}, {"F64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

}  // namespace

uint64_t SafetensorsDtypeBytes(const std::string& dtype) {
  for (const auto& entry : kDtypeSizes) {
    if (dtype == entry.name) return entry.bytes;
  }
  return 0;
}

SafetensorsHeader ParseSafetensorsHeader(const uint8_t* data, uint64_t file_size, const std::string& file) {
  if (file_size < 8) {
    Fail(file, "truncated: " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, sizeof(header_len));  // little-endian hosts only (static_assert in safetensors.cpp)
  if (header_len > kMaxSafetensorsHeaderBytes) {
    Fail(file, "header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit (file " + std::to_string(file_size) +
                   " bytes)");
  }
  if (8 + header_len > file_size) {
    Fail(file, "truncated: header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  }
  const char* header_begin = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len);
  } catch (const nlohmann::json::exception& e) {
    Fail(file, std::string("bad header JSON: ") + e.what());
  }
  if (!header.is_object()) Fail(file, "bad header JSON: top level is not an object");

  SafetensorsHeader out;
  out.data_start = 8 + header_len;
  out.data_size = file_size - out.data_start;
  std::unordered_set<std::string> names;
  for (const auto& [name, desc] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = "tensor '" + name + "'";
    if (!desc.is_object()) Fail(file, where + ": header entry is not an object");
    const auto dtype_it = desc.find("dtype");
    const auto shape_it = desc.find("shape");
    const auto offsets_it = desc.find("data_offsets");
    if (dtype_it == desc.end() || !dtype_it->is_string()) Fail(file, where + ": missing or non-string dtype");
    if (shape_it == desc.end() || !shape_it->is_array()) Fail(file, where + ": missing or non-array shape");
    if (offsets_it == desc.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      Fail(file, where + ": data_offsets must be [begin, end] with non-negative integers");
    }
    HeaderTensor tensor;
    tensor.name = name;
    tensor.dtype = dtype_it->get<std::string>();
    const uint64_t elem_bytes = SafetensorsDtypeBytes(tensor.dtype);
    if (elem_bytes == 0) Fail(file, where + ": unknown dtype \"" + tensor.dtype + "\"");

    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned()) Fail(file, where + ": shape entries must be non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d)) {
        Fail(file, where + ": shape overflows");
      }
      numel *= d;
      tensor.shape.push_back(static_cast<int64_t>(d));
    }
    if (numel > std::numeric_limits<uint64_t>::max() / elem_bytes) Fail(file, where + ": shape overflows");
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    const std::string offsets = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) Fail(file, where + ": " + offsets + " has begin after end");
    if (end > out.data_size) {
      Fail(file, where + ": " + offsets + " runs past the end of the data section (" + std::to_string(out.data_size) +
                     " bytes at file offset " + std::to_string(out.data_start) + "; file " + std::to_string(file_size) +
                     " bytes): file truncated or header corrupt");
    }
    if (end - begin != numel * elem_bytes) {
      Fail(file, where + ": " + offsets + " holds " + std::to_string(end - begin) + " bytes but " + tensor.dtype + " " +
                     ShapeString(tensor.shape) + " needs " + std::to_string(numel * elem_bytes));
    }
    tensor.data_begin = begin;
    tensor.data_end = end;
    if (!names.insert(name).second) Fail(file, where + " appears twice in the header");
    out.tensors.push_back(std::move(tensor));
  }

  std::vector<const HeaderTensor*> spans;
  spans.reserve(out.tensors.size());
  for (const auto& t : out.tensors) spans.push_back(&t);
  std::sort(spans.begin(), spans.end(), [](const HeaderTensor* a, const HeaderTensor* b) {
    return a->data_begin != b->data_begin ? a->data_begin < b->data_begin : a->data_end < b->data_end;
  });
  // Empty spans overlap nothing; `reach` is the furthest end of the non-empty spans so far.
  const HeaderTensor* reach = nullptr;
  for (const HeaderTensor* cur : spans) {
    if (cur->data_begin == cur->data_end) continue;
    if (reach != nullptr && cur->data_begin < reach->data_end) {
      Fail(file, "tensors '" + reach->name + "' [" + std::to_string(reach->data_begin) + ", " +
                     std::to_string(reach->data_end) + ") and '" + cur->name + "' [" + std::to_string(cur->data_begin) +
                     ", " + std::to_string(cur->data_end) + ") overlap");
    }
    if (reach == nullptr || cur->data_end > reach->data_end) reach = cur;
  }
  return out;
}

}  // namespace inferd::model
