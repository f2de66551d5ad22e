// Read-only access to a Hugging Face safetensors checkpoint (single file or sharded through
// model.safetensors.index.json), memory-mapped. Errors name the file, the tensor and the byte offset.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace inferd::model {

// Stored element type as written in the safetensors header ("BF16", "F16", "F32", "F8_E4M3", ...).
struct TensorInfo {
  std::string name;
  std::string dtype;  // safetensors dtype string
  std::vector<int64_t> shape;
  std::string file;         // shard file name (relative to the checkpoint dir)
  uint64_t data_begin = 0;  // byte offsets inside the shard's data section
  uint64_t data_end = 0;
};

// The torch type of a stored dtype string (Undefined for a string Open would reject).
c10::ScalarType StoredType(const TensorInfo& info);

// Views into the checkpoint's file mapping (TryView) instead of copies.
struct MapViewOptions {
  bool enabled = false;
  // mlock signature; null = ::mlock (tests pass a failing fake).
  int (*lock)(const void* addr, size_t len) = nullptr;
};

// True when `t`'s storage is a view into a checkpoint's file mapping made by TryView (locked, read-only).
bool IsCheckpointView(const at::Tensor& t);

class SafetensorsCheckpoint {
 public:
  // Opens `dir`/model.safetensors or the shards listed in `dir`/model.safetensors.index.json.
  // Throws std::runtime_error naming the file and the problem (missing, truncated, bad header JSON,
  // offsets outside the file, overlapping tensors, unknown dtype, index naming a missing shard).
  static std::unique_ptr<SafetensorsCheckpoint> Open(const std::string& dir, const MapViewOptions& views = {});
  virtual ~SafetensorsCheckpoint() = default;

  virtual bool Has(const std::string& name) const = 0;
  virtual const TensorInfo& Info(const std::string& name) const = 0;  // throws if absent
  virtual std::vector<std::string> Names() const = 0;                 // sorted
  // Reads tensor `name` into `out` (its shape must equal the stored one). Into a contiguous CPU tensor: pread
  // straight into out's memory when out has the stored dtype (one copy), else into a staging buffer reused
  // across calls and converted into out by copy_; anything else (fp8 with a scale, a device tensor) through
  // Load and copy_. `out` is typically a row range of a fused weight. Throws as Load does, or naming both
  // shapes. Not thread-safe (the staging buffer).
  virtual void LoadInto(const std::string& name, at::Tensor& out) const = 0;
  // Tensors `names` (consecutive in one shard, in this order, each of the shape in `shapes`, equal trailing
  // dims) as one CPU tensor [sum of first dims, trailing dims...] aliasing the file mapping, without a copy:
  // its pages are populated from the page cache and locked (mlock), so the reclaimer cannot evict them, and
  // the mapping lives until the last such tensor is freed (the checkpoint may go first). The tensor is
  // read-only memory (PROT_READ): writing it faults. Undefined (the caller copies instead) when views are
  // off, `dtype` is not the stored one, the device is not the CPU, the data is empty or not aligned
  // to the element size (the CPU kernels load weights unaligned; safetensors writers align a shard's data
  // to 8 bytes only), the tensors are not consecutive, a shape differs, or a lock failed: the first failed
  // lock turns views off for the rest of this checkpoint (ViewFallbackReason says why).
  virtual at::Tensor TryView(const std::vector<std::string>& names, const std::vector<std::vector<int64_t>>& shapes,
                             c10::ScalarType dtype, c10::Device device) const = 0;
  // Whether TryView may still return views (enabled at Open and no lock has failed).
  virtual bool ViewsEnabled() const = 0;
  // Bytes returned as views so far.
  virtual uint64_t ViewBytes() const = 0;
  // Why views stopped ("mlock of 63.1 MiB: Cannot allocate memory (RLIMIT_MEMLOCK 8.0 MiB)"); "" if none did.
  virtual std::string ViewFallbackReason() const = 0;
  // Bytes of every tensor's data (what a full load reads).
  virtual uint64_t TensorBytes() const = 0;
  // Called with each tensor's byte count after Load read it from the file (on the loading thread); for load
  // progress. Set before loading; not thread-safe against concurrent Loads.
  virtual void SetReadObserver(std::function<void(uint64_t bytes)> observer) = 0;

  // Returns tensor `name` converted to `dtype` on `device`, owning its memory (never aliasing the mmap).
  // Throws if absent or if `expected_shape` is non-empty and differs ("model.layers.0.mlp.up_proj.weight:
  // expected shape [64, 32], found [32, 64]"). An F8_E4M3 weight with a sibling `<name>_scale_inv`
  // ([ceil(rows/128), ceil(cols/128)] float) is dequantised blockwise (DeepSeek-V3 release format).
  virtual at::Tensor Load(const std::string& name, c10::ScalarType dtype, c10::Device device,
                          const std::vector<int64_t>& expected_shape = {}) const = 0;
};

}  // namespace inferd::model
