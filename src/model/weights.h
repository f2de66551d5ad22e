// Weight loading with bookkeeping: every checkpoint tensor must be consumed exactly by the model
// (ignoring the names an architecture declares as skippable), so stray or missing tensors are errors.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace inferd::model {

class WeightLoader {
 public:
  WeightLoader(const SafetensorsCheckpoint& ckpt, c10::ScalarType dtype, c10::Device device)
      : ckpt_(ckpt), dtype_(dtype), device_(device) {}

  bool Has(const std::string& name) const { return ckpt_.Has(name); }
  // Loads `name` with the expected shape: a view into the checkpoint's mapping where TryView gives one (no
  // conversion needed), else a copy. Throws "<name>: missing" or the checkpoint's shape error.
  at::Tensor Load(const std::string& name, const std::vector<int64_t>& shape);
  at::Tensor Load(const std::string& name, const std::vector<int64_t>& shape, c10::ScalarType dtype);
  // Tensors `parts` (name, expected shape; equal trailing dims) as one tensor [sum of first dims, trailing
  // dims...] of the loader's dtype: one view when the parts lie back to back in the file (TryView), else read
  // straight into consecutive row ranges of a new tensor (no second copy through at::cat). Throws as Load does.
  struct Part {
    std::string name;
    std::vector<int64_t> shape;
  };
  at::Tensor LoadRows(const std::vector<Part>& parts);
  // Reads `name` (expected shape = out's) into `out`, e.g. a slice of a stacked tensor. Throws as Load does.
  void LoadInto(const std::string& name, at::Tensor out);
  // Throws naming the first checkpoint tensors no Load consumed and `skip` does not accept.
  void CheckAllConsumed(const std::function<bool(const std::string&)>& skip) const;

 private:
  // Marks `name` (and its fp8 scale) consumed; throws "<name>: missing" naming `shape` when absent.
  void Consume(const std::string& name, const std::vector<int64_t>& shape);
  const SafetensorsCheckpoint& ckpt_;
  c10::ScalarType dtype_;
  c10::Device device_;
  std::set<std::string> consumed_;
};

}  // namespace inferd::model
