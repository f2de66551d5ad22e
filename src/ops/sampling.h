// Vectorised sampling primitives: every op works on the whole batch [num_rows, vocab] at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace inferd::ops {

// Counter-based uniform draw in [0, 1): the same (seed, index) always gives the same value.
double SeededUniform(uint64_t seed, uint64_t index);

// Penalties over each row's history (OpenAI presence/frequency, HF-style repetition).
// history_rows[i] is the row of token history_ids[i]; a token counts once per occurrence.
at::Tensor ApplyPenalties(const at::Tensor& logits,        // [rows, vocab] float32
                          const at::Tensor& history_rows,  // [n] int64
                          const at::Tensor& history_ids,   // [n] int64
                          const at::Tensor& repetition,    // [rows] float32, 1 = off
                          const at::Tensor& presence,      // [rows] float32, 0 = off
                          const at::Tensor& frequency);    // [rows] float32, 0 = off
// -> [rows, vocab] float32

// Greedy rows (temperature <= 0) take the argmax; the others sample from softmax(logits / temperature)
// restricted by top_k (0 = off), top_p (1 = off) and min_p (0 = off), by inverse CDF on `uniform`.
// float32 rows on the CPU take the O(vocab) kernel (kernels/cpu/sampling.h); other devices the sorted path.
at::Tensor SampleFromLogits(const at::Tensor& logits,       // [rows, vocab] float32
                            const at::Tensor& temperature,  // [rows] float32
                            const at::Tensor& top_k,        // [rows] int64
                            const at::Tensor& top_p,        // [rows] float32
                            const at::Tensor& min_p,        // [rows] float32
                            const at::Tensor& uniform);     // [rows] float32 in [0, 1)
// -> [rows] int64

// The same distribution by sorting the whole vocabulary (any device). The inverse CDF runs in sorted order,
// so a given draw can pick a different token than SampleFromLogits; the distribution is the same.
at::Tensor SampleFromLogitsSorted(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                                  const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform);

// log(sum(exp(logits))) per row: the normaliser of log_softmax, without writing a [rows, vocab] result.
at::Tensor RowLogSumExp(const at::Tensor& logits);  // [rows, vocab] float32 -> [rows] float32

// at::isfinite(logits).all(): on CPU float32 one pass over the rows on the ops pool, with no [rows, vocab]
// temporaries (the at:: form materialises three: abs, two compares).
bool AllFinite(const at::Tensor& logits);  // [rows, vocab]

}  // namespace inferd::ops
