#include "model/weights.h"

#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace inferd::model {

at::Tensor WeightLoader::Load(const std::string& name, const std::vector<int64_t>& shape) {
  return Load(name, shape, dtype_);
}

void WeightLoader::Consume(const std::string& name, const std::vector<int64_t>& shape) {
  if (!ckpt_.Has(name)) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    throw std::runtime_error("checkpoint: missing tensor " + name + " (expected shape " + s + "])");
  }
  consumed_.insert(name);
  if (ckpt_.Has(name + "_scale_inv")) consumed_.insert(name + "_scale_inv");
}

at::Tensor WeightLoader::Load(const std::string& name, const std::vector<int64_t>& shape, c10::ScalarType dtype) {
  Consume(name, shape);
  if (at::Tensor view = ckpt_.TryView({name}, {shape}, dtype, device_); view.defined()) return view;
  return ckpt_.Load(name, dtype, device_, shape);
}

void WeightLoader::LoadInto(const std::string& name, at::Tensor out) {
  const std::vector<int64_t> shape = out.sizes().vec();
  Consume(name, shape);
  ckpt_.LoadInto(name, out);
}

at::Tensor WeightLoader::LoadRows(const std::vector<Part>& parts) {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const Part& p : parts) {
    Consume(p.name, p.shape);
    names.push_back(p.name);
    shapes.push_back(p.shape);
  }
  if (at::Tensor view = ckpt_.TryView(names, shapes, dtype_, device_); view.defined()) return view;
  std::vector<int64_t> shape = parts.at(0).shape;
  shape[0] = 0;
  for (const Part& p : parts) shape[0] += p.shape.at(0);
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype_).device(device_));
  int64_t row = 0;
  for (const Part& p : parts) {
    LoadInto(p.name, out.narrow(0, row, p.shape[0]));
    row += p.shape[0];
  }
  return out;
}

WeightLoader::Stacked WeightLoader::TryViewStacked(const std::vector<std::vector<std::vector<Part>>>& items) {
  Stacked out;
  if (items.empty() || !ckpt_.ViewsEnabled() || !device_.is_cpu()) return out;
  const uint64_t elem = c10::elementSize(dtype_);
  // Per item: the block's first byte; per part (item-major, in field order): its byte offset in the block.
  std::vector<uint64_t> block_begin;
  std::vector<std::vector<uint64_t>> offsets(items.size());
  uint64_t block_bytes = 0;
  std::string shard;
  for (size_t j = 0; j < items.size(); ++j) {
    uint64_t begin = UINT64_MAX, end = 0, bytes = 0;
    std::vector<const TensorInfo*> infos;
    for (const std::vector<Part>& field : items[j]) {
      for (size_t i = 0; i < field.size(); ++i) {
        if (!ckpt_.Has(field[i].name)) return out;
        const TensorInfo& info = ckpt_.Info(field[i].name);
        if (info.shape != field[i].shape || ckpt_.Has(field[i].name + "_scale_inv")) return out;
        if (StoredType(info) != dtype_) return out;
        if (i > 0 && info.data_begin != infos.back()->data_end) {
          out.reason = field[i].name + " does not follow " + field[i - 1].name + " in the file";
          return out;
        }
        if (shard.empty()) shard = info.file;
        if (info.file != shard) {
          out.reason = field[i].name + " is in " + info.file + ", " + items[0][0][0].name + " in " + shard;
          return out;
        }
        begin = std::min(begin, info.data_begin);
        end = std::max(end, info.data_end);
        bytes += info.data_end - info.data_begin;
        infos.push_back(&info);
      }
    }
    if (end - begin != bytes) {
      out.reason = "the tensors of " + items[j][0][0].name + "'s item are not one block in the file";
      return out;
    }
    if (j == 0) block_bytes = bytes;
    if (bytes != block_bytes) {
      out.reason = items[j][0][0].name + "'s item takes " + std::to_string(bytes) + " bytes, the first " +
                   std::to_string(block_bytes);
      return out;
    }
    for (const TensorInfo* info : infos) offsets[j].push_back(info->data_begin - begin);
    if (offsets[j] != offsets[0]) {
      out.reason = items[j][0][0].name + "'s item is laid out unlike " + items[0][0][0].name + "'s";
      return out;
    }
    block_begin.push_back(begin);
  }
  std::vector<int64_t> slot_item(items.size());  // slot -> item
  for (size_t j = 0; j < items.size(); ++j) slot_item[j] = static_cast<int64_t>(j);
  std::sort(slot_item.begin(), slot_item.end(), [&](int64_t a, int64_t b) { return block_begin[a] < block_begin[b]; });
  const uint64_t base = block_begin[slot_item[0]];
  for (size_t s = 0; s < slot_item.size(); ++s) {
    if (block_begin[slot_item[s]] != base + s * block_bytes) {
      out.reason = "the blocks of " + items[slot_item[s]][0][0].name + " and its file neighbour are not consecutive";
      return out;
    }
  }
  // Every tensor in file order, for the one span view.
  std::vector<std::pair<uint64_t, std::string>> ordered;
  for (const auto& item : items) {
    for (const auto& field : item) {
      for (const Part& p : field) ordered.emplace_back(ckpt_.Info(p.name).data_begin, p.name);
    }
  }
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> names;
  for (auto& [begin, name] : ordered) names.push_back(std::move(name));
  at::Tensor span = ckpt_.TryViewSpan(names, dtype_, device_);
  if (!span.defined()) {
    if (ckpt_.ViewsEnabled()) {  // not a failed lock: the span's alignment
      out.reason = "the block of " + names.front() + " is not " + std::to_string(kMapViewAlignment) + "-byte aligned";
    }
    return out;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t block = static_cast<int64_t>(block_bytes / elem);
  size_t part = 0;
  for (const std::vector<Part>& field : items[0]) {
    std::vector<int64_t> shape = field[0].shape;
    for (size_t i = 1; i < field.size(); ++i) shape[0] += field[i].shape[0];
    std::vector<int64_t> strides(shape.size() + 1, 1);
    for (size_t d = shape.size() - 1; d > 0; --d) strides[d] = strides[d + 1] * shape[d];
    strides[0] = block;
    shape.insert(shape.begin(), n);
    const int64_t offset = static_cast<int64_t>(offsets[slot_item[0]][part] / elem);
    out.fields.push_back(span.as_strided(shape, strides, offset));
    part += field.size();
  }
  out.slot_of.assign(items.size(), 0);
  for (size_t s = 0; s < slot_item.size(); ++s) out.slot_of[slot_item[s]] = static_cast<int64_t>(s);
  for (const auto& item : items) {
    for (const auto& field : item) {
      for (const Part& p : field) Consume(p.name, p.shape);
    }
  }
  return out;
}

void WeightLoader::CheckAllConsumed(const std::function<bool(const std::string&)>& skip) const {
  std::vector<std::string> extra;
  for (const std::string& name : ckpt_.Names()) {
    if (consumed_.count(name) == 0 && !skip(name)) extra.push_back(name);
  }
  if (extra.empty()) return;
  std::string msg = "checkpoint: unexpected tensor";
  msg += extra.size() > 1 ? "s " : " ";
  for (size_t i = 0; i < extra.size() && i < 5; ++i) {
    const auto& info = ckpt_.Info(extra[i]);
    std::string s = "[";
    for (size_t d = 0; d < info.shape.size(); ++d) s += (d ? ", " : "") + std::to_string(info.shape[d]);
    msg += (i ? ", " : "") + extra[i] + " " + s + "]";
  }
  if (extra.size() > 5) msg += ", ... (" + std::to_string(extra.size()) + " in all)";
  throw std::runtime_error(msg);
}

}  // namespace inferd::model
