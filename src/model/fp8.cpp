#include "model/fp8.h"

#include <ATen/ops/repeat_interleave.h>

#include <sstream>
#include <stdexcept>

namespace inferd::model {

namespace {

std::string ShapeString(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

at::Tensor DequantizeFp8Blockwise(const at::Tensor& weight, const at::Tensor& scale_inv,
                                  const std::string& name, int64_t block) {
  if (weight.dim() != 2) {
    throw std::runtime_error(name + ": blockwise fp8 weight must be 2-D, found shape " +
                             ShapeString(weight.sizes()));
  }
  const int64_t rows = weight.size(0);
  const int64_t cols = weight.size(1);
  const std::vector<int64_t> want = {CeilDiv(rows, block), CeilDiv(cols, block)};
  if (scale_inv.sizes() != at::IntArrayRef(want)) {
    throw std::runtime_error(name + "_scale_inv: expected shape " + ShapeString(want) + " for weight " +
                             ShapeString(weight.sizes()) + " with " + std::to_string(block) + "x" +
                             std::to_string(block) + " blocks, found " + ShapeString(scale_inv.sizes()));
  }
  at::Tensor scale = scale_inv.to(at::kFloat)
                         .repeat_interleave(block, 0)
                         .repeat_interleave(block, 1)
                         .slice(0, 0, rows)
                         .slice(1, 0, cols);
  return weight.to(at::kFloat).mul(scale);
}

}  // namespace inferd::model
