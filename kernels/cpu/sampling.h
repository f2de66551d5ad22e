// Token sampling for one row of logits in O(vocab): no sort of the vocabulary. Raw pointers, no torch;
// the wrapper is src/ops/sampling.cpp.
//
// Distribution (the same as sorting the softmax and filtering the sorted list): p = softmax(logits / T);
// keep the L most probable tokens, L = max(1, min(top_k, n_top_p, n_min_p)) where n_top_p is the shortest
// prefix (most probable first) whose mass reaches top_p and n_min_p counts tokens with p >= min_p * p_max;
// draw from the kept tokens renormalised. Selection is by partial selection (nth_element, and a
// mass-weighted quickselect for top_p); ties rank the lower token id first. Two passes over the row, plus
// O(vocab) expected work only when top_k or top_p is on.
#pragma once

#include <cstdint>

namespace inferd::kernels::cpu {

struct SampleRowArgs {
  const float* logits = nullptr;  // [vocab]
  int64_t vocab = 0;
  float temperature = 1.0f;  // > 0
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  double uniform = 0.0;      // the row's draw in [0, 1)
};

// The sampled token id in [0, vocab). Thread-safe (scratch is per thread).
int64_t SampleRow(const SampleRowArgs& args);

// log(sum(exp(x))) over x[0, n) in float32 with a float64 sum: the normaliser of an exact log-softmax.
float LogSumExp(const float* x, int64_t n);

// Index of the largest value (the first one on ties), as argmax does.
int64_t ArgMax(const float* x, int64_t n);

// True when no x[0, n) is NaN or +-inf (exponent bits all ones), as at::isfinite(x).all() says.
bool AllFinite(const float* x, int64_t n);

}  // namespace inferd::kernels::cpu
