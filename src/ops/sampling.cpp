#include "ops/sampling.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/sampling.h"
#include "ops/parallel.h"

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
  if (logits.device().is_cpu() && logits.scalar_type() == at::kFloat) {
    // Touches only the history's tokens: O(history) after the copy.
    at::Tensor out = logits.contiguous().clone();
    const int64_t vocab = out.size(1);
    float* o = out.data_ptr<float>();
    const at::Tensor hr = history_rows.to(at::kLong).contiguous(), hi = history_ids.to(at::kLong).contiguous();
    const at::Tensor rep_c = repetition.to(at::kFloat).contiguous(), pres_c = presence.to(at::kFloat).contiguous(),
                     freq_c = frequency.to(at::kFloat).contiguous();
    const int64_t* rows = hr.data_ptr<int64_t>();
    const int64_t* ids = hi.data_ptr<int64_t>();
    std::unordered_map<int64_t, int32_t> counts;  // row * vocab + id -> occurrences
    counts.reserve(static_cast<size_t>(hi.numel()));
    for (int64_t i = 0; i < hi.numel(); ++i) {
      TORCH_CHECK(ids[i] >= 0 && ids[i] < vocab, "ApplyPenalties: history id ", ids[i], " out of range");
      ++counts[rows[i] * vocab + ids[i]];
    }
    for (const auto& [flat, count] : counts) {
      const int64_t row = flat / vocab;
      const float rep = rep_c.data_ptr<float>()[row];
      float v = o[flat];
      v = v > 0 ? v / rep : v * rep;
      o[flat] = v - freq_c.data_ptr<float>()[row] * static_cast<float>(count) - pres_c.data_ptr<float>()[row];
    }
    return out;
  }
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
  if (!logits.device().is_cpu() || logits.scalar_type() != at::kFloat) {
    return SampleFromLogitsSorted(logits, temperature, top_k, top_p, min_p, uniform);
  }
  const at::Tensor x = logits.contiguous();
  const int64_t rows = x.size(0), vocab = x.size(1);
  const at::Tensor t = temperature.to(at::kFloat).contiguous(), k = top_k.to(at::kLong).contiguous(),
                   p = top_p.to(at::kFloat).contiguous(), mp = min_p.to(at::kFloat).contiguous(),
                   u = uniform.to(at::kDouble).contiguous();
  at::Tensor out = at::empty({rows}, at::TensorOptions().dtype(at::kLong));
  int64_t* o = out.data_ptr<int64_t>();
  const float* xp = x.data_ptr<float>();
  ParallelChunks(rows, [&](int64_t r) {
    const float* row = xp + r * vocab;
    const float temp = t.data_ptr<float>()[r];
    if (!(temp > 0.0f)) {
      o[r] = kernels::cpu::ArgMax(row, vocab);
      return;
    }
    kernels::cpu::SampleRowArgs a;
    a.logits = row;
    a.vocab = vocab;
    a.temperature = temp;
    a.top_k = static_cast<int32_t>(std::min<int64_t>(k.data_ptr<int64_t>()[r], vocab));
    a.top_p = p.data_ptr<float>()[r];
    a.min_p = mp.data_ptr<float>()[r];
    a.uniform = u.data_ptr<double>()[r];
    o[r] = kernels::cpu::SampleRow(a);
  });
  return out;
}

at::Tensor RowLogSumExp(const at::Tensor& logits) {
  if (!logits.device().is_cpu() || logits.scalar_type() != at::kFloat) return logits.logsumexp(-1);
  const at::Tensor x = logits.contiguous();
  const int64_t rows = x.size(0), vocab = x.size(1);
  at::Tensor out = at::empty({rows}, x.options());
  float* o = out.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  ParallelChunks(rows, [&](int64_t r) { o[r] = kernels::cpu::LogSumExp(xp + r * vocab, vocab); });
  return out;
}

bool AllFinite(const at::Tensor& logits) {
  if (!logits.device().is_cpu() || logits.scalar_type() != at::kFloat || logits.dim() != 2) {
    return at::isfinite(logits).all().item<bool>();
  }
  const at::Tensor x = logits.contiguous();
  const int64_t rows = x.size(0), vocab = x.size(1);
  const float* xp = x.data_ptr<float>();
  std::atomic<bool> finite{true};
  ParallelRows(rows, vocab, [&](int64_t begin, int64_t end) {
    if (!kernels::cpu::AllFinite(xp + begin * vocab, (end - begin) * vocab)) finite.store(false);
  });
  return finite.load();
}

at::Tensor SampleFromLogitsSorted(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                                  const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  at::Tensor greedy_ids = logits.argmax(-1);
  at::Tensor greedy = temperature <= 0;
  if (greedy.all().item<bool>()) return greedy_ids;
  if (greedy.any().item<bool>()) {
    // Only the sampling rows pay for the full-vocabulary sort; greedy rows keep their argmax.
    at::Tensor rows = greedy.logical_not().nonzero().squeeze(1);
    at::Tensor sampled = SampleFromLogitsSorted(logits.index_select(0, rows), temperature.index_select(0, rows),
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
