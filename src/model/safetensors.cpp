// SafetensorsCheckpoint: POSIX mmap of every shard, header validation at Open, copy-out at Load.
//
// File layout (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes of
// JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// data section; offsets are relative to the start of the data section.
//
// Decisions beyond the header's contract:
//  - `dir`/model.safetensors wins over the index when both exist (transformers' order).
//  - A sharded checkpoint holds the union of the shards' tensors; a tensor in two shards is an error, and
//    every weight_map entry must name the shard that holds it. Shard names must be plain relative paths.
//  - Gaps between tensors in the data section are allowed; overlaps are not.
//  - No std::filesystem calls: the torch wheel's libtorch.so exports its own copies of them (remove_all, status,
//    ...) which interpose on libstdc++'s and have crashed; plain POSIX calls are used instead.
//  - Load(F8_E4M3 weight, dtype = Float8_e4m3fn) returns the raw fp8 values without applying `_scale_inv`
//    (the caller wants the quantised form); any other dtype dequantises first, in float32.
#include "model/safetensors.h"

#include "model/fp8.h"

#include <ATen/ops/empty.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
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
#include <sstream>
#include <stdexcept>
#include <utility>

namespace inferd::model {

namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

[[noreturn]] void Fail(const std::string& file, const std::string& what) {
  throw std::runtime_error("safetensors: " + file + ": " + what);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

struct DtypeEntry {
  const char* name;
  c10::ScalarType type;
  uint64_t bytes;
};

constexpr DtypeEntry kDtypes[] = {
    {"BOOL", c10::ScalarType::Bool, 1},
    {"U8", c10::ScalarType::Byte, 1},
    {"I8", c10::ScalarType::Char, 1},
    {"I16", c10::ScalarType::Short, 2},
    {"U16", c10::ScalarType::UInt16, 2},
    {"I32", c10::ScalarType::Int, 4},
    {"U32", c10::ScalarType::UInt32, 4},
    {"I64", c10::ScalarType::Long, 8},
    {"U64", c10::ScalarType::UInt64, 8},
    {"F16", c10::ScalarType::Half, 2},
    {"BF16", c10::ScalarType::BFloat16, 2},
    {"F32", c10::ScalarType::Float, 4},
    {"F64", c10::ScalarType::Double, 8},
    {"F8_E4M3", c10::ScalarType::Float8_e4m3fn, 1},
    {"F8_E5M2", c10::ScalarType::Float8_e5m2, 1},
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
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

struct Shard {
  std::string file;                   // relative to the checkpoint dir
  std::string path;                   // dir/file, for messages
  std::unique_ptr<MappedFile> map;
  uint64_t data_start = 0;            // 8 + header length
  uint64_t data_size = 0;             // file size - data_start
};

struct Entry {
  TensorInfo info;
  size_t shard = 0;
  c10::ScalarType stored = c10::ScalarType::Undefined;
};

uint64_t ReadU64Le(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Parses and validates one shard's header; appends its tensors to `entries`.
void ParseShard(const Shard& shard, size_t shard_index, std::map<std::string, Entry>* entries) {
  const std::string& file = shard.path;
  const uint64_t file_size = shard.map->size();
  if (file_size < 8) {
    Fail(file, "truncated: " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  const uint64_t header_len = ReadU64Le(shard.map->data());
  if (header_len > kMaxHeaderBytes) {
    Fail(file, "header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kMaxHeaderBytes) + "-byte limit (file " + std::to_string(file_size) +
                   " bytes)");
  }
  if (8 + header_len > file_size) {
    Fail(file, "truncated: header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  }
  const char* header_begin = reinterpret_cast<const char*>(shard.map->data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len);
  } catch (const nlohmann::json::exception& e) {
    Fail(file, std::string("bad header JSON: ") + e.what());
  }
  if (!header.is_object()) Fail(file, "bad header JSON: top level is not an object");

  const uint64_t data_size = file_size - 8 - header_len;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
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
    Entry entry;
    entry.shard = shard_index;
    entry.info.name = name;
    entry.info.file = shard.file;
    entry.info.dtype = dtype_it->get<std::string>();
    const DtypeEntry* dtype = FindDtype(entry.info.dtype);
    if (dtype == nullptr) Fail(file, where + ": unknown dtype \"" + entry.info.dtype + "\"");
    entry.stored = dtype->type;

    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned()) Fail(file, where + ": shape entries must be non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d)) {
        Fail(file, where + ": shape overflows");
      }
      numel *= d;
      entry.info.shape.push_back(static_cast<int64_t>(d));
    }
    if (numel > std::numeric_limits<uint64_t>::max() / dtype->bytes) Fail(file, where + ": shape overflows");
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    const std::string offsets = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) Fail(file, where + ": " + offsets + " has begin after end");
    if (end > data_size) {
      Fail(file, where + ": " + offsets + " runs past the end of the data section (" +
                     std::to_string(data_size) + " bytes at file offset " + std::to_string(8 + header_len) +
                     "; file " + std::to_string(file_size) + " bytes): file truncated or header corrupt");
    }
    if (end - begin != numel * dtype->bytes) {
      Fail(file, where + ": " + offsets + " holds " + std::to_string(end - begin) + " bytes but " +
                     entry.info.dtype + " " + ShapeString(entry.info.shape) + " needs " +
                     std::to_string(numel * dtype->bytes));
    }
    entry.info.data_begin = begin;
    entry.info.data_end = end;
    spans.push_back({begin, end, name});

    const auto [it, inserted] = entries->emplace(name, std::move(entry));
    if (!inserted) {
      Fail(file, where + " is also in " + it->second.info.file + " (tensor names must be unique)");
    }
  }

  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    const Span& prev = spans[i - 1];
    const Span& cur = spans[i];
    if (cur.begin < prev.end && cur.begin != cur.end && prev.begin != prev.end) {
      Fail(file, "tensors '" + prev.name + "' [" + std::to_string(prev.begin) + ", " + std::to_string(prev.end) +
                     ") and '" + cur.name + "' [" + std::to_string(cur.begin) + ", " +
                     std::to_string(cur.end) + ") overlap");
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

class SafetensorsCheckpointImpl final : public SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpointImpl(const std::string& dir) : dir_(dir) {
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
          const auto it = std::find_if(weight_map.begin(), weight_map.end(),
                                       [&](const auto& kv) { return kv.second == f; });
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
      shard.map = std::make_unique<MappedFile>(shard.path, shard.path);
      shards_.push_back(std::move(shard));
      ParseShard(shards_.back(), i, &entries_);
      const uint64_t file_size = shards_.back().map->size();
      shards_.back().data_start = 8 + ReadU64Le(shards_.back().map->data());
      shards_.back().data_size = file_size - shards_.back().data_start;
    }
    for (const auto& [name, file] : weight_map) {
      const auto it = entries_.find(name);
      if (it == entries_.end()) {
        Fail(index_display, "weight_map names tensor '" + name + "' but " + file + " does not contain it");
      }
      if (it->second.info.file != file) {
        Fail(index_display, "weight_map puts tensor '" + name + "' in " + file + " but it is in " +
                             it->second.info.file);
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

  at::Tensor Load(const std::string& name, c10::ScalarType dtype, c10::Device device,
                  const std::vector<int64_t>& expected_shape) const override {
    const Entry& entry = Find(name);
    if (!expected_shape.empty() && expected_shape != entry.info.shape) {
      throw std::runtime_error(name + ": expected shape " + ShapeString(expected_shape) + ", found " +
                               ShapeString(entry.info.shape) + " (" + dir_ + "/" + entry.info.file + ")");
    }
    at::Tensor raw = CopyOut(entry);
    const std::string scale_name = name + "_scale_inv";
    if (entry.stored == c10::ScalarType::Float8_e4m3fn && dtype != c10::ScalarType::Float8_e4m3fn &&
        Has(scale_name)) {
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
    if (bytes > 0) {
      std::memcpy(out.data_ptr(), shard.map->data() + shard.data_start + entry.info.data_begin, bytes);
    }
    return out;
  }

  // Converts where the elements are smaller, so a host-to-device copy moves the fewer bytes.
  static at::Tensor Convert(const at::Tensor& raw, c10::ScalarType dtype, c10::Device device) {
    if (device.is_cpu()) return raw.to(dtype);
    if (c10::elementSize(dtype) < c10::elementSize(raw.scalar_type())) return raw.to(dtype).to(device);
    return raw.to(device).to(dtype);
  }

  std::string dir_;
  std::vector<Shard> shards_;
  std::map<std::string, Entry> entries_;
};

}  // namespace

std::unique_ptr<SafetensorsCheckpoint> SafetensorsCheckpoint::Open(const std::string& dir) {
  return std::make_unique<SafetensorsCheckpointImpl>(dir);
}

}  // namespace inferd::model
