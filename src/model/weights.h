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
  // Per-item weights (items[j] = item j's fields, e.g. expert j's {gate, up} and {down}; a field's parts
  // concatenate along rows as in LoadRows) as strided views of one locked span of the mapping, no copy. Views
  // when every tensor is stored in the loader's dtype with the expected shape, each item's tensors fill one
  // contiguous block of the file in the same relative layout (a field's parts back to back in field order),
  // every block has the same size, the blocks are consecutive in some item order (the file's: lexical names
  // put expert 10 before expert 2) and the first block is kMapViewAlignment-aligned. Then fields[f] is
  // [items, rows of f, trailing dims...] with stride(0) = one block, items in file order (slots), each
  // fields[f][s] contiguous, and slot_of[j] = the slot of item j. Else `fields` is empty and nothing is consumed;
  // `reason` says why when the layout is the cause ("" when views are off, a dtype or shape differs, or a
  // lock failed: the copy is expected, or reports the error).
  struct Stacked {
    std::vector<at::Tensor> fields;
    std::vector<int64_t> slot_of;
    std::string reason;
  };
  Stacked TryViewStacked(const std::vector<std::vector<std::vector<Part>>>& items);
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
