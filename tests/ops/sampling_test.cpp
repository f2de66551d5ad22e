// O(vocab) sampler (kernels/cpu/sampling.cpp through ops::SampleFromLogits) against an exact reference
// distribution computed here in float64 by sorting: the kept set must match exactly and the draws over many
// seeds must follow the renormalised probabilities (chi-square). The sorted torch path is checked the same way.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "ops/sampling.h"

namespace inferd::ops {
namespace {

struct Filter {
  float temperature = 1.0f;
  int64_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
};

// Exact distribution of one row: softmax(x / T) in float64, sorted most probable first (lower id on ties),
// prefix L = max(1, min(top_k, n_top_p, n_min_p)), renormalised. Returns [vocab] probabilities.
std::vector<double> ExactDistribution(const std::vector<float>& x, const Filter& f) {
  const size_t v = x.size();
  const double m = *std::max_element(x.begin(), x.end());
  std::vector<double> p(v);
  double z = 0;
  for (size_t i = 0; i < v; ++i) z += p[i] = std::exp((x[i] - m) / f.temperature);
  for (double& q : p) q /= z;
  std::vector<size_t> order(v);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  size_t keep = v;
  if (f.top_k > 0) keep = std::min<size_t>(keep, static_cast<size_t>(f.top_k));
  double before = 0;
  for (size_t r = 0; r < v; ++r) {
    const double q = p[order[r]];
    if (!(before < f.top_p) || q < f.min_p * p[order[0]]) {
      keep = std::min(keep, r);
      break;
    }
    before += q;
  }
  keep = std::max<size_t>(keep, 1);
  std::vector<double> out(v, 0.0);
  double kept = 0;
  for (size_t r = 0; r < keep; ++r) kept += p[order[r]];
  for (size_t r = 0; r < keep; ++r) out[order[r]] = p[order[r]] / kept;
  return out;
}

using Sampler = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                               const at::Tensor&, const at::Tensor&);

// Draws n tokens from one row (seeded draws 0..n-1), 256 rows per call.
std::vector<int64_t> Draw(Sampler sampler, const std::vector<float>& x, const Filter& f, int64_t n, uint64_t seed) {
  const int64_t v = static_cast<int64_t>(x.size());
  std::vector<int64_t> out;
  for (int64_t j0 = 0; j0 < n; j0 += 256) {
    const int64_t b = std::min<int64_t>(256, n - j0);
    at::Tensor logits = at::tensor(x).view({1, v}).repeat({b, 1});
    std::vector<float> u;
    for (int64_t j = j0; j < j0 + b; ++j) u.push_back(static_cast<float>(SeededUniform(seed, static_cast<uint64_t>(j))));
    at::Tensor got = sampler(logits, at::full({b}, f.temperature), at::full({b}, f.top_k, at::kLong),
                             at::full({b}, f.top_p), at::full({b}, f.min_p), at::tensor(u));
    out.insert(out.end(), got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + b);
  }
  return out;
}

// Chi-square of the draws against `expect`, bins with expected count < 5 merged into one. Every draw must
// land on a token of nonzero probability. Returns chi2 / (dof + 6 sqrt(2 dof)): above 1 is a failure
// (about a 1e-8 chance for a correct sampler at these sizes, and draws are seeded, so it is deterministic).
double ChiSquareRatio(const std::vector<int64_t>& draws, const std::vector<double>& expect) {
  std::vector<double> count(expect.size(), 0.0);
  for (int64_t t : draws) {
    EXPECT_GT(expect[static_cast<size_t>(t)], 0.0) << "drew token " << t << " outside the kept set";
    count[static_cast<size_t>(t)] += 1;
  }
  const double n = static_cast<double>(draws.size());
  double chi2 = 0, small_obs = 0, small_exp = 0;
  int bins = 0;
  for (size_t i = 0; i < expect.size(); ++i) {
    const double e = expect[i] * n;
    if (e == 0) continue;
    if (e < 5) {
      small_obs += count[i];
      small_exp += e;
      continue;
    }
    chi2 += (count[i] - e) * (count[i] - e) / e;
    ++bins;
  }
  if (small_exp > 0) {
    chi2 += (small_obs - small_exp) * (small_obs - small_exp) / small_exp;
    ++bins;
  }
  const double dof = std::max(1, bins - 1);
  return chi2 / (dof + 6 * std::sqrt(2 * dof));
}

std::vector<float> RandomLogits(int64_t vocab, double scale, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor t = at::randn({vocab}) * scale;
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + vocab);
}

TEST(SamplingDistribution, MatchesExactReferenceForEveryFilter) {
  const std::vector<float> x = RandomLogits(48, 1.5, 11);
  const std::vector<Filter> filters = {
      {1.0f, 0, 1.0f, 0.0f},  {0.7f, 0, 1.0f, 0.0f},  {1.3f, 10, 1.0f, 0.0f}, {1.0f, 0, 0.8f, 0.0f},
      {1.0f, 0, 1.0f, 0.05f}, {0.8f, 20, 0.9f, 0.02f}, {1.0f, 3, 0.5f, 0.0f},  {2.0f, 47, 0.99f, 0.0f},
  };
  for (const Filter& f : filters) {
    const std::vector<double> expect = ExactDistribution(x, f);
    for (Sampler s : {&SampleFromLogits, &SampleFromLogitsSorted}) {
      const std::vector<int64_t> draws = Draw(s, x, f, 40000, 5);
      EXPECT_LT(ChiSquareRatio(draws, expect), 1.0)
          << (s == &SampleFromLogits ? "O(vocab)" : "sorted") << " T=" << f.temperature << " k=" << f.top_k
          << " p=" << f.top_p << " min_p=" << f.min_p;
    }
  }
}

// A realistic vocabulary: the quickselect rounds of top_p run (more than 64 candidates), and the kept set is
// compared token for token with the exact one (no token outside it is ever drawn, every kept one can be).
TEST(SamplingDistribution, LargeVocabularyKeptSetAndRankBuckets) {
  const int64_t vocab = 32000;
  const std::vector<float> x = RandomLogits(vocab, 4.0, 12);
  for (const Filter& f : {Filter{1.0f, 0, 0.9f, 0.0f}, Filter{0.9f, 2000, 0.95f, 0.0f}, Filter{1.0f, 0, 1.0f, 0.001f},
                          Filter{1.0f, 500, 1.0f, 0.0f}}) {
    const std::vector<double> expect = ExactDistribution(x, f);
    const std::vector<int64_t> draws = Draw(&SampleFromLogits, x, f, 10000, 9);
    // Ten buckets of equal expected mass over the kept tokens in rank order.
    std::vector<int64_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return expect[a] > expect[b]; });
    std::vector<int> bucket(vocab, -1);
    double acc = 0;
    for (int64_t t : order) {
      if (expect[t] == 0) break;
      bucket[t] = std::min(9, static_cast<int>(acc * 10));
      acc += expect[t];
    }
    std::vector<double> bucket_expect(10, 0.0);
    for (int64_t t = 0; t < vocab; ++t) {
      if (bucket[t] >= 0) bucket_expect[bucket[t]] += expect[t];
    }
    std::vector<int64_t> bucket_draws;
    for (int64_t t : draws) {
      ASSERT_GE(bucket[t], 0) << "drew token " << t << " outside the kept set, top_p=" << f.top_p;
      bucket_draws.push_back(bucket[t]);
    }
    EXPECT_LT(ChiSquareRatio(bucket_draws, bucket_expect), 1.0) << "top_k=" << f.top_k << " top_p=" << f.top_p;
  }
}

TEST(SamplingDistribution, ReproduciblePerSeedAndGreedyRowsTakeTheArgmax) {
  const std::vector<float> x = RandomLogits(1000, 2.0, 13);
  const Filter f{0.8f, 40, 0.9f, 0.0f};
  EXPECT_EQ(Draw(&SampleFromLogits, x, f, 200, 3), Draw(&SampleFromLogits, x, f, 200, 3));
  EXPECT_NE(Draw(&SampleFromLogits, x, f, 200, 3), Draw(&SampleFromLogits, x, f, 200, 4));
  const int64_t argmax = std::max_element(x.begin(), x.end()) - x.begin();
  for (int64_t t : Draw(&SampleFromLogits, x, Filter{0.0f, 0, 1.0f, 0.0f}, 20, 3)) EXPECT_EQ(t, argmax);
  for (int64_t t : Draw(&SampleFromLogits, x, Filter{1.0f, 1, 1.0f, 0.0f}, 20, 3)) EXPECT_EQ(t, argmax);
  for (int64_t t : Draw(&SampleFromLogits, x, Filter{1.0f, 0, 1e-6f, 0.0f}, 20, 3)) EXPECT_EQ(t, argmax);
  // Ties: the lower id wins, as argmax does.
  std::vector<float> tie(10, 0.0f);
  tie[3] = tie[7] = 5.0f;
  EXPECT_EQ(Draw(&SampleFromLogits, tie, Filter{0.0f, 0, 1.0f, 0.0f}, 1, 1)[0], 3);
  EXPECT_EQ(Draw(&SampleFromLogits, tie, Filter{1.0f, 1, 1.0f, 0.0f}, 1, 1)[0], 3);
}

TEST(SamplingDistribution, MixedBatchRowsAreIndependent) {
  const int64_t vocab = 5000;
  at::Tensor logits = at::randn({4, vocab}) * 3;
  at::Tensor t = at::tensor(std::vector<float>{0.0f, 0.7f, 1.0f, 0.0f});
  at::Tensor k = at::tensor(std::vector<int64_t>{0, 50, 0, 0});
  at::Tensor p = at::tensor(std::vector<float>{1.0f, 0.9f, 0.8f, 1.0f});
  at::Tensor mp = at::zeros({4});
  at::Tensor u = at::tensor(std::vector<float>{0.1f, 0.5f, 0.9f, 0.3f});
  at::Tensor all = SampleFromLogits(logits, t, k, p, mp, u);
  for (int64_t r = 0; r < 4; ++r) {
    at::Tensor one = SampleFromLogits(logits.narrow(0, r, 1), t.narrow(0, r, 1), k.narrow(0, r, 1), p.narrow(0, r, 1),
                                      mp.narrow(0, r, 1), u.narrow(0, r, 1));
    EXPECT_EQ(one[0].item<int64_t>(), all[r].item<int64_t>()) << "row " << r;
  }
  EXPECT_EQ(all[0].item<int64_t>(), logits[0].argmax().item<int64_t>());
  EXPECT_EQ(all[3].item<int64_t>(), logits[3].argmax().item<int64_t>());
}

TEST(SamplingLogprobs, RowLogSumExpEqualsFloat64) {
  at::manual_seed(14);
  for (double scale : {1.0, 30.0}) {
    at::Tensor x = at::randn({5, 129280}) * scale;
    x[2][100] = -std::numeric_limits<float>::infinity();
    at::Tensor ref = x.to(at::kDouble).logsumexp(-1);
    at::Tensor got = RowLogSumExp(x);
    EXPECT_LT((got.to(at::kDouble) - ref).abs().max().item<double>(), 2e-5 * std::max(1.0, scale)) << scale;
    // log_softmax at any entry = x - lse, as log_softmax computes it.
    at::Tensor lsm = x.log_softmax(-1);
    at::Tensor finite = x.isfinite();
    EXPECT_LT((x - got.unsqueeze(1) - lsm).masked_select(finite).abs().max().item<double>(), 2e-5 * std::max(1.0, scale));
  }
}

TEST(SamplingPenalties, SparseCpuPathEqualsDenseFormula) {
  at::manual_seed(15);
  const int64_t rows = 3, vocab = 300;
  at::Tensor logits = at::randn({rows, vocab}) * 2;
  std::vector<int64_t> hr, hi;
  for (int64_t r = 0; r < rows; ++r) {
    for (int j = 0; j < 40; ++j) {
      hr.push_back(r);
      hi.push_back((j * 37 + r * 11) % 23 + (j % 3) * 100);  // repeats, so counts > 1
    }
  }
  at::Tensor rep = at::tensor(std::vector<float>{1.3f, 1.0f, 0.8f});
  at::Tensor pres = at::tensor(std::vector<float>{0.0f, 0.5f, 0.2f});
  at::Tensor freq = at::tensor(std::vector<float>{0.1f, 0.0f, 0.3f});
  const at::Tensor before = logits.clone();
  at::Tensor got = ApplyPenalties(logits, at::tensor(hr), at::tensor(hi), rep, pres, freq);
  EXPECT_TRUE(at::equal(logits, before));  // input untouched
  at::Tensor counts = at::zeros({rows, vocab});
  for (size_t i = 0; i < hr.size(); ++i) counts[hr[i]][hi[i]] += 1;
  at::Tensor seen = counts > 0;
  at::Tensor r1 = rep.unsqueeze(1);
  at::Tensor ref = at::where(seen, at::where(logits > 0, logits / r1, logits * r1), logits) -
                   freq.unsqueeze(1) * counts - pres.unsqueeze(1) * seen.to(at::kFloat);
  EXPECT_LT((got - ref).abs().max().item<double>(), 1e-6);
}

}  // namespace
}  // namespace inferd::ops
