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
