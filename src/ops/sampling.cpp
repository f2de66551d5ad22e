#include "ops/sampling.h"

#include <ATen/ATen.h>

namespace inferd::ops {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

double SeededUniform(uint64_t seed, uint64_t index) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ (index * 0xd1b54a32d192ed03ULL));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

at::Tensor ApplyPenalties(const at::Tensor& logits, const at::Tensor& history_rows, const at::Tensor& history_ids,
                          const at::Tensor& repetition, const at::Tensor& presence, const at::Tensor& frequency) {
  if (history_ids.numel() == 0) return logits;
  at::Tensor counts = at::zeros_like(logits);
  counts.index_put_({history_rows, history_ids}, at::ones({history_ids.numel()}, logits.options()),
                    /*accumulate=*/true);
  at::Tensor seen = counts > 0;
  at::Tensor rep = repetition.unsqueeze(1);
  at::Tensor penalised = at::where(logits > 0, logits / rep, logits * rep);
  at::Tensor out = at::where(seen, penalised, logits);
  out = out - frequency.unsqueeze(1) * counts - presence.unsqueeze(1) * seen.to(at::kFloat);
  return out;
}

at::Tensor SampleFromLogits(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                            const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  at::Tensor greedy_ids = logits.argmax(-1);
  at::Tensor greedy = temperature <= 0;
  if (greedy.all().item<bool>()) return greedy_ids;
  if (greedy.any().item<bool>()) {
    // Only the sampling rows pay for the full-vocabulary sort; greedy rows keep their argmax.
    at::Tensor rows = greedy.logical_not().nonzero().squeeze(1);
    at::Tensor sampled = SampleFromLogits(logits.index_select(0, rows), temperature.index_select(0, rows),
                                          top_k.index_select(0, rows), top_p.index_select(0, rows),
                                          min_p.index_select(0, rows), uniform.index_select(0, rows));
    return greedy_ids.index_copy(0, rows, sampled);
  }
  const int64_t vocab = logits.size(1);
  at::Tensor temp = temperature.unsqueeze(1);
  at::Tensor probs = (logits / temp).softmax(-1);
  auto [sorted, sorted_idx] = probs.sort(-1, /*descending=*/true);
  at::Tensor rank = at::arange(vocab, logits.options().dtype(at::kLong)).unsqueeze(0);
  at::Tensor k = at::where(top_k > 0, top_k, at::full_like(top_k, vocab)).unsqueeze(1);
  at::Tensor keep = rank < k;
  at::Tensor before = sorted.cumsum(-1) - sorted;  // mass strictly before each rank
  keep = keep.logical_and(before < top_p.unsqueeze(1));
  keep = keep.logical_and(sorted >= min_p.unsqueeze(1) * sorted.narrow(1, 0, 1));
  keep.narrow(1, 0, 1).fill_(true);
  at::Tensor kept = sorted * keep.to(at::kFloat);
  at::Tensor cdf = kept.cumsum(-1);
  at::Tensor threshold = uniform.unsqueeze(1) * cdf.narrow(1, vocab - 1, 1);
  at::Tensor pick = (cdf <= threshold).sum(-1).clamp_max(vocab - 1);
  return sorted_idx.gather(1, pick.unsqueeze(1)).squeeze(1);
}

}  // namespace inferd::ops
