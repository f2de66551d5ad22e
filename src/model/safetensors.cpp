// SafetensorsCheckpoint: POSIX mmap of every shard, header validation at Open, copy-out (pread) at Load,
// locked views into the mapping at TryView.
//
// File layout and header checks: safetensors_header.h.
//
// Decisions beyond the header's contract:
//  - `dir`/model.safetensors wins over the index when both exist (transformers' order).
//  - A sharded checkpoint holds the union of the shards' tensors; a tensor in two shards is an error, and
//    every weight_map entry must name the shard that holds it. Shard names must be plain relative paths.
//  - No std::filesystem calls: the torch wheel's libtorch.so exports its own copies of them (remove_all, status,
//    ...) which interpose on libstdc++'s and have crashed; plain POSIX calls are used instead.
//  - Load(F8_E4M3 weight, dtype = Float8_e4m3fn) returns the raw fp8 values without applying `_scale_inv`
//    (the caller wants the quantised form); any other dtype dequantises first, in float32.
//  - A view locks whole pages from its first byte's page to its last byte's page (a page shared with a
//    neighbouring tensor is locked too); when freed it unlocks only the pages entirely inside it, so a
//    neighbour's lock is never undone. A shared page stays locked until the mapping goes (munmap unlocks).
#include "model/safetensors.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/CPUAllocator.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "common/memory_residency.h"
#include "model/fp8.h"
#include "model/safetensors_header.h"

namespace inferd::model {

namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

[[noreturn]] void Fail(const std::string& file, const std::string& what) {
  SafetensorsFail(file, what);
}

struct DtypeEntry {
  const char* name;
  c10::ScalarType type;
};

constexpr DtypeEntry kDtypes[] = {
    {"BOOL", c10::ScalarType::Bool},
    {"U8", c10::ScalarType::Byte},
    {"I8", c10::ScalarType::Char},
    {"I16", c10::ScalarType::Short},
    {"U16", c10::ScalarType::UInt16},
    {"I32", c10::ScalarType::Int},
    {"U32", c10::ScalarType::UInt32},
    {"I64", c10::ScalarType::Long},
    {"U64", c10::ScalarType::UInt64},
    {"F16", c10::ScalarType::Half},
    {"BF16", c10::ScalarType::BFloat16},
    {"F32", c10::ScalarType::Float},
    {"F64", c10::ScalarType::Double},
    {"F8_E4M3", c10::ScalarType::Float8_e4m3fn},
    {"F8_E5M2", c10::ScalarType::Float8_e5m2},
};

const DtypeEntry* FindDtype(const std::string& name) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

// Owns one read-only private mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  MappedFile(const std::string& path, const std::string& display_name) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail(display_name, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      Fail(display_name, std::string("cannot stat: ") + std::strerror(err));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
      void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (addr == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        Fail(display_name, std::string("mmap failed: ") + std::strerror(err));
      }
      data_ = static_cast<const uint8_t*>(addr);
    }
    fd_ = fd;
    path_ = display_name;
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    ::close(fd_);
  }

  // Copies bytes [offset, offset + bytes) of the file to `dst`: pread straight from the page cache (no page
  // faults on the mapping). Throws naming the file on a short read.
  void CopyTo(void* dst, uint64_t offset, uint64_t bytes) const {
    auto* out = static_cast<uint8_t*>(dst);
    while (bytes > 0) {
      const ssize_t n = ::pread(fd_, out, std::min<uint64_t>(bytes, uint64_t{1} << 30), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        Fail(path_, std::string("read failed at byte ") + std::to_string(offset) + ": " +
                        (n < 0 ? std::strerror(errno) : "unexpected end of file"));
      }
      out += n;
      offset += static_cast<uint64_t>(n);
      bytes -= static_cast<uint64_t>(n);
    }
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int fd_ = -1;       // open for CopyTo while mapped
  std::string path_;  // for messages
};

struct Shard {
  std::string file;                       // relative to the checkpoint dir
  std::string path;                       // dir/file, for messages
  std::shared_ptr<const MappedFile> map;  // shared with every view into it
  uint64_t data_start = 0;                // 8 + header length
  uint64_t data_size = 0;                 // file size - data_start
};

struct Entry {
  TensorInfo info;
  size_t shard = 0;
  c10::ScalarType stored = c10::ScalarType::Undefined;
};

// Parses and validates one shard's header (safetensors_header.h); appends its tensors to `entries`.
void ParseShard(Shard* shard, size_t shard_index, std::map<std::string, Entry>* entries) {
  SafetensorsHeader header = ParseSafetensorsHeader(shard->map->data(), shard->map->size(), shard->path);
  shard->data_start = header.data_start;
  shard->data_size = header.data_size;
  for (HeaderTensor& tensor : header.tensors) {
    Entry entry;
    entry.shard = shard_index;
    const DtypeEntry* dtype = FindDtype(tensor.dtype);
    if (dtype == nullptr)
      Fail(shard->path, "tensor '" + tensor.name + "': dtype " + tensor.dtype + " has no torch type");
    entry.stored = dtype->type;
    entry.info.name = tensor.name;
    entry.info.dtype = std::move(tensor.dtype);
    entry.info.shape = std::move(tensor.shape);
    entry.info.file = shard->file;
    entry.info.data_begin = tensor.data_begin;
    entry.info.data_end = tensor.data_end;
    const auto [it, inserted] = entries->emplace(tensor.name, std::move(entry));
    if (!inserted) {
      Fail(shard->path,
           "tensor '" + tensor.name + "' is also in " + it->second.info.file + " (tensor names must be unique)");
    }
  }
}

bool IsPlainRelativePath(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0) return false;
    start = end + 1;
  }
  return true;
}

// st_mode of `path`, or 0 when it cannot be stat'ed.
mode_t StatMode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode : 0;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

uintptr_t PageSize() {
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// A view's hold on its mapping: the DataPtr context of a TryView tensor.
struct ViewHold {
  std::shared_ptr<const MappedFile> map;
  const uint8_t* begin;
  uint64_t bytes;
};

void ReleaseView(void* ctx) {
  auto* hold = static_cast<ViewHold*>(ctx);
  const uintptr_t page = PageSize();
  const auto b = reinterpret_cast<uintptr_t>(hold->begin);
  const uintptr_t first = (b + page - 1) / page * page;
  const uintptr_t last = (b + hold->bytes) / page * page;
  if (last > first) ::munlock(reinterpret_cast<void*>(first), last - first);
  delete hold;  // the last view of a mapping unmaps it
}

std::string MibText(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

class SafetensorsCheckpointImpl final : public SafetensorsCheckpoint {
 public:
  SafetensorsCheckpointImpl(const std::string& dir, const MapViewOptions& views) : dir_(dir), views_(views) {
    if (views_.lock == nullptr) views_.lock = [](const void* addr, size_t len) { return ::mlock(addr, len); };
    if (!S_ISDIR(StatMode(dir))) Fail(dir, "not a directory");

    const std::string index_display = JoinPath(dir, kIndexFile);
    std::vector<std::string> files;
    std::map<std::string, std::string> weight_map;
    if (StatMode(JoinPath(dir, kSingleFile)) != 0) {
      files.push_back(kSingleFile);
    } else if (StatMode(index_display) != 0) {
      std::ifstream in(index_display);
      if (!in) Fail(index_display, "cannot read");
      nlohmann::json index;
      try {
        index = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        Fail(index_display, std::string("bad JSON: ") + e.what());
      }
      if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
        Fail(index_display, "no \"weight_map\" object");
      }
      for (const auto& [name, shard] : index["weight_map"].items()) {
        if (!shard.is_string()) Fail(index_display, "weight_map['" + name + "'] is not a string");
        const std::string shard_name = shard.get<std::string>();
        if (!IsPlainRelativePath(shard_name)) {
          Fail(index_display, "weight_map['" + name + "'] = \"" + shard_name +
                                  "\" is not a relative path inside the checkpoint directory");
        }
        weight_map[name] = shard_name;
        if (std::find(files.begin(), files.end(), shard_name) == files.end()) files.push_back(shard_name);
      }
      if (files.empty()) Fail(index_display, "weight_map is empty");
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!S_ISREG(StatMode(JoinPath(dir, f)))) {
          const auto it =
              std::find_if(weight_map.begin(), weight_map.end(), [&](const auto& kv) { return kv.second == f; });
          Fail(index_display, "names shard \"" + f + "\" (for '" + it->first + "') which is missing");
        }
      }
    } else {
      Fail(dir, std::string("no ") + kSingleFile + " or " + kIndexFile);
    }

    for (size_t i = 0; i < files.size(); ++i) {
      Shard shard;
      shard.file = files[i];
      shard.path = JoinPath(dir, files[i]);
      shard.map = std::make_shared<MappedFile>(shard.path, shard.path);
      shards_.push_back(std::move(shard));
      ParseShard(&shards_.back(), i, &entries_);
      const Shard& added = shards_.back();
      if (views_.enabled && added.data_size > 0) {
        // Read-ahead of what views will lock (asynchronous; a no-op for pages already cached).
        const auto b = reinterpret_cast<uintptr_t>(added.map->data());
        ::madvise(reinterpret_cast<void*>(b), added.map->size(), MADV_WILLNEED);
      }
    }
    for (const auto& [name, file] : weight_map) {
      const auto it = entries_.find(name);
      if (it == entries_.end()) {
        Fail(index_display, "weight_map names tensor '" + name + "' but " + file + " does not contain it");
      }
      if (it->second.info.file != file) {
        Fail(index_display,
             "weight_map puts tensor '" + name + "' in " + file + " but it is in " + it->second.info.file);
      }
    }
  }

  bool Has(const std::string& name) const override { return entries_.count(name) != 0; }

  const TensorInfo& Info(const std::string& name) const override { return Find(name).info; }

  std::vector<std::string> Names() const override {
    std::vector<std::string> names;
    names.reserve(entries_.size());
    for (const auto& kv : entries_) names.push_back(kv.first);
    return names;  // std::map iteration order is sorted
  }

  void LoadInto(const std::string& name, at::Tensor& out) const override {
    const Entry& entry = Find(name);
    if (out.sizes().vec() != entry.info.shape) {
      throw std::runtime_error(name + ": expected shape " + ShapeString(out.sizes().vec()) + ", found " +
                               ShapeString(entry.info.shape) + " (" + dir_ + "/" + entry.info.file + ")");
    }
    const bool scaled =
        entry.stored == c10::ScalarType::Float8_e4m3fn && out.scalar_type() != entry.stored && Has(name + "_scale_inv");
    if (scaled || !out.device().is_cpu() || !out.is_contiguous()) {
      out.copy_(Load(name, out.scalar_type(), out.device(), entry.info.shape));
      return;
    }
    const Shard& shard = shards_[entry.shard];
    const uint64_t bytes = entry.info.data_end - entry.info.data_begin;
    const uint64_t offset = shard.data_start + entry.info.data_begin;
    if (out.scalar_type() == entry.stored) {
      if (bytes > 0) shard.map->CopyTo(out.data_ptr(), offset, bytes);
    } else if (bytes > 0) {
      // Through the reused staging buffer, converted straight into `out` (copy_ rounds as .to() does).
      if (!staging_.defined() || static_cast<uint64_t>(staging_.numel()) < bytes) {
        staging_ = at::empty({static_cast<int64_t>(bytes)}, at::TensorOptions().dtype(c10::ScalarType::Byte));
      }
      shard.map->CopyTo(staging_.data_ptr(), offset, bytes);
      out.copy_(at::from_blob(staging_.data_ptr(), entry.info.shape, at::TensorOptions().dtype(entry.stored)));
    }
    if (read_observer_) read_observer_(bytes);
  }

  at::Tensor TryView(const std::vector<std::string>& names, const std::vector<std::vector<int64_t>>& shapes,
                     c10::ScalarType dtype, c10::Device device) const override {
    if (names.empty() || names.size() != shapes.size()) return {};
    std::vector<int64_t> shape;
    for (size_t i = 0; i < names.size(); ++i) {
      const auto it = entries_.find(names[i]);
      if (it == entries_.end()) return {};
      const std::vector<int64_t>& stored = it->second.info.shape;
      if (stored != shapes[i] || stored.empty()) return {};
      if (shape.empty()) {
        shape = stored;
      } else if (stored.size() != shape.size() || !std::equal(stored.begin() + 1, stored.end(), shape.begin() + 1)) {
        return {};
      } else {
        shape[0] += stored[0];
      }
    }
    at::Tensor span = TryViewSpan(names, dtype, device);
    return span.defined() ? span.view(shape) : span;
  }

  // Tensors `names` (consecutive in one shard, in this order, each stored as `dtype`) as one flat tensor
  // [total elements] aliasing the mapping: TryView's contract otherwise.
  at::Tensor TryViewSpan(const std::vector<std::string>& names, c10::ScalarType dtype, c10::Device device) const {
    if (!views_.enabled || !device.is_cpu() || names.empty()) return {};
    std::vector<const Entry*> parts;
    for (const std::string& name : names) {
      const auto it = entries_.find(name);
      if (it == entries_.end() || it->second.stored != dtype) return {};
      const Entry& e = it->second;
      if (!parts.empty() && (e.shard != parts.back()->shard || e.info.data_begin != parts.back()->info.data_end)) {
        return {};
      }
      parts.push_back(&e);
    }
    const Shard& shard = shards_[parts.front()->shard];
    const uint8_t* begin = shard.map->data() + shard.data_start + parts.front()->info.data_begin;
    const uint64_t bytes = parts.back()->info.data_end - parts.front()->info.data_begin;
    if (bytes == 0 || reinterpret_cast<uintptr_t>(begin) % c10::elementSize(dtype) != 0) return {};
    const uintptr_t page = PageSize();
    const uintptr_t first = reinterpret_cast<uintptr_t>(begin) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(begin) + bytes + page - 1) / page * page;
    if (views_.lock(reinterpret_cast<const void*>(first), end - first) != 0) {
      const int err = errno;
      view_fallback_ = "mlock of " + MibText(end - first) + " for " + names.front() + ": " + std::strerror(err) + " (" +
                       MemlockLimitText() + ", " + MibText(view_bytes_) + " locked before)";
      views_.enabled = false;
      return {};
    }
    auto* hold = new ViewHold{shard.map, begin, bytes};
    at::Tensor view = at::for_blob(const_cast<uint8_t*>(begin), {static_cast<int64_t>(bytes / c10::elementSize(dtype))})
                          .context(hold, &ReleaseView)
                          .options(at::TensorOptions().dtype(dtype).device(device))
                          .make_tensor();
    view_bytes_ += bytes;
    if (read_observer_) read_observer_(bytes);
    return view;
  }

  bool ViewsEnabled() const override { return views_.enabled; }

  uint64_t ViewBytes() const override { return view_bytes_; }
  std::string ViewFallbackReason() const override { return view_fallback_; }

  uint64_t TensorBytes() const override {
    uint64_t total = 0;
    for (const auto& kv : entries_) total += kv.second.info.data_end - kv.second.info.data_begin;
    return total;
  }

  void SetReadObserver(std::function<void(uint64_t bytes)> observer) override { read_observer_ = std::move(observer); }

  at::Tensor Load(const std::string& name, c10::ScalarType dtype, c10::Device device,
                  const std::vector<int64_t>& expected_shape) const override {
    const Entry& entry = Find(name);
    if (!expected_shape.empty() && expected_shape != entry.info.shape) {
      throw std::runtime_error(name + ": expected shape " + ShapeString(expected_shape) + ", found " +
                               ShapeString(entry.info.shape) + " (" + dir_ + "/" + entry.info.file + ")");
    }
    at::Tensor raw = CopyOut(entry);
    const std::string scale_name = name + "_scale_inv";
    if (entry.stored == c10::ScalarType::Float8_e4m3fn && dtype != c10::ScalarType::Float8_e4m3fn && Has(scale_name)) {
      at::Tensor scale = CopyOut(Find(scale_name));
      if (!device.is_cpu()) {
        raw = raw.to(device);
        scale = scale.to(device);
      }
      return DequantizeFp8Blockwise(raw, scale, name).to(dtype);
    }
    return Convert(raw, dtype, device);
  }

 private:
  const Entry& Find(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) {
      throw std::runtime_error("safetensors: " + dir_ + ": no tensor '" + name + "'");
    }
    return it->second;
  }

  // A CPU tensor of the stored dtype that owns a copy of the bytes (the mmap may be unaligned for the dtype).
  at::Tensor CopyOut(const Entry& entry) const {
    const Shard& shard = shards_[entry.shard];
    at::Tensor out = at::empty(entry.info.shape, at::TensorOptions().dtype(entry.stored));
    const uint64_t bytes = entry.info.data_end - entry.info.data_begin;
    if (bytes > 0) shard.map->CopyTo(out.data_ptr(), shard.data_start + entry.info.data_begin, bytes);
    if (read_observer_) read_observer_(bytes);
    return out;
  }

  // Converts where the elements are smaller, so a host-to-device copy moves the fewer bytes.
  static at::Tensor Convert(const at::Tensor& raw, c10::ScalarType dtype, c10::Device device) {
    if (device.is_cpu()) return raw.to(dtype);
    if (c10::elementSize(dtype) < c10::elementSize(raw.scalar_type())) return raw.to(dtype).to(device);
    return raw.to(device).to(dtype);
  }

  std::string dir_;
  mutable MapViewOptions views_;  // .enabled turns false at the first failed lock
  mutable uint64_t view_bytes_ = 0;
  mutable std::string view_fallback_;
  std::vector<Shard> shards_;
  std::map<std::string, Entry> entries_;
  std::function<void(uint64_t)> read_observer_;
  mutable at::Tensor staging_;  // [bytes] uint8: LoadInto's conversion input, grown to the largest one
};

}  // namespace

c10::ScalarType StoredType(const TensorInfo& info) {
  const DtypeEntry* entry = FindDtype(info.dtype);
  return entry != nullptr ? entry->type : c10::ScalarType::Undefined;
}

bool IsCheckpointView(const at::Tensor& t) {
  return t.defined() && t.has_storage() && t.storage().data_ptr().get_deleter() == &ReleaseView;
}

std::unique_ptr<SafetensorsCheckpoint> SafetensorsCheckpoint::Open(const std::string& dir,
                                                                   const MapViewOptions& views) {
  return std::make_unique<SafetensorsCheckpointImpl>(dir, views);
}

}  // namespace inferd::model
