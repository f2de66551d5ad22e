// ops/ against naive torch references: attention (tiled, SDPA, paged decode), rope, MoE, sampling.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/paged_attention.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/moe.h"
#include "ops/norm.h"
#include "ops/parallel.h"
#include "ops/rope.h"
#include "ops/sampling.h"

namespace inferd::ops {
namespace {

double MaxDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

struct AttnCase {
  int64_t nq, q_start, hq, hkv, dk, dv;
};

TEST(Attention, TiledMatchesNaive) {
  at::manual_seed(0);
  for (const AttnCase& c : {AttnCase{37, 0, 4, 2, 16, 16}, AttnCase{20, 45, 4, 1, 24, 16}, AttnCase{1, 9, 8, 8, 32, 32},
                            AttnCase{64, 3, 6, 3, 192 / 8, 128 / 8}}) {
    at::Tensor q = at::randn({c.nq, c.hq, c.dk});
    at::Tensor k = at::randn({c.q_start + c.nq, c.hkv, c.dk});
    at::Tensor v = at::randn({c.q_start + c.nq, c.hkv, c.dv});
    at::Tensor ref = NaiveCausalAttention(q, k, v, c.q_start, 0.3);
    EXPECT_LT(MaxDiff(TiledCausalAttention(q, k, v, c.q_start, 0.3, 8, 16), ref), 1e-5);
    EXPECT_LT(MaxDiff(PrefillAttention(q, k, v, c.q_start, 0.3), ref), 1e-5);
  }
}

TEST(Attention, SdpaPathMatchesNaive) {
  at::manual_seed(1);
  at::Tensor q = at::randn({50, 4, 16}), k = at::randn({50, 2, 16}), v = at::randn({50, 2, 16});
  EXPECT_LT(MaxDiff(PrefillAttention(q, k, v, 0, 0.25), NaiveCausalAttention(q, k, v, 0, 0.25)), 1e-5);
}

// Scatters a contiguous [ctx, heads, dim] history into random cache blocks.
TEST(Attention, PagedDecodeMatchesContiguous) {
  at::manual_seed(2);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    const int64_t bs = 4, num_blocks = 40, hq = 8, hkv = 2, d = 32;
    const std::vector<int64_t> ctx = {1, 7, 33, 16};
    at::Tensor kc = at::zeros({num_blocks, bs, hkv, d}, dtype), vc = at::zeros({num_blocks, bs, hkv, d}, dtype);
    at::Tensor perm = at::randperm(num_blocks);
    at::Tensor tables = at::zeros({4, 9}, at::kInt);
    at::Tensor q = at::randn({4, hq, d}).to(dtype);
    std::vector<at::Tensor> refs;
    int64_t next = 0;
    for (int64_t s = 0; s < 4; ++s) {
      at::Tensor k = at::randn({ctx[s], hkv, d}).to(dtype), v = at::randn({ctx[s], hkv, d}).to(dtype);
      for (int64_t t = 0; t < ctx[s]; ++t) {
        if (t % bs == 0) tables[s][t / bs] = perm[next++].item<int>();
        const int64_t b = tables[s][t / bs].item<int>();
        kc[b][t % bs].copy_(k[t]);
        vc[b][t % bs].copy_(v[t]);
      }
      refs.push_back(NaiveCausalAttention(q.narrow(0, s, 1), k, v, ctx[s] - 1, 0.2));
    }
    at::Tensor out = PagedDecodeAttention(q, kc, vc, tables, at::tensor(std::vector<int>{1, 7, 33, 16}), 0.2);
    const double tol = dtype == at::kFloat ? 1e-5 : 2e-2;
    for (int64_t s = 0; s < 4; ++s) EXPECT_LT(MaxDiff(out.narrow(0, s, 1), refs[s]), tol) << "seq " << s;
  }
}

// MLA layout: V is the leading part of each K row of one cache buffer (strided view).
TEST(Attention, PagedDecodeStridedLatentView) {
  at::manual_seed(3);
  const int64_t bs = 8, r = 16, dr = 8, h = 4, ctx = 21;
  at::Tensor cache = at::randn({4, bs, 1, r + dr});
  at::Tensor table = at::tensor(std::vector<int>{2, 0, 3}).view({1, 3});
  at::Tensor q = at::randn({1, h, r + dr});
  at::Tensor rows = cache.index_select(0, table[0].to(at::kLong)).reshape({-1, 1, r + dr}).narrow(0, 0, ctx);
  at::Tensor ref = NaiveCausalAttention(q, rows, rows.narrow(2, 0, r), ctx - 1, 0.3);
  at::Tensor out = PagedDecodeAttention(q, cache, cache.narrow(3, 0, r), table, at::tensor(std::vector<int>{21}), 0.3);
  EXPECT_LT(MaxDiff(out, ref), 1e-5);
}

// Long MLA-layout contexts at batch 2 on a 2-thread pool: the op splits each context (split-K) and merges
// the partials; the result must equal the unsplit reference.
TEST(Attention, PagedDecodeSplitKMatchesNaive) {
  at::manual_seed(4);
  SetPoolThreads(2);
  const int64_t bs = 16, r = 64, dr = 16, h = 16;
  const std::vector<int> ctx = {300, 517};
  ASSERT_GT(kernels::cpu::PagedDecodeSplits(2, 1, 517, 2), 1) << "the case must take the split-K path";
  const int64_t per_seq = (517 + bs - 1) / bs;
  at::Tensor cache = at::randn({2 * per_seq, bs, 1, r + dr});
  at::Tensor tables = at::randperm(2 * per_seq).to(at::kInt).view({2, per_seq});
  at::Tensor q = at::randn({2, h, r + dr});
  at::Tensor out = PagedDecodeAttention(q, cache, cache.narrow(3, 0, r), tables, at::tensor(ctx), 0.1);
  for (int64_t s = 0; s < 2; ++s) {
    at::Tensor rows = cache.index_select(0, tables[s].to(at::kLong)).reshape({-1, 1, r + dr}).narrow(0, 0, ctx[s]);
    at::Tensor ref = NaiveCausalAttention(q.narrow(0, s, 1), rows, rows.narrow(2, 0, r), ctx[s] - 1, 0.1);
    EXPECT_LT(MaxDiff(out.narrow(0, s, 1), ref), 1e-5) << "seq " << s;
  }
}

TEST(Rope, NeoxMatchesFormula) {
  RopeParams p;
  p.rotary_dim = 8;
  RopeTable t = MakeRopeTable(p, at::kCPU);
  at::Tensor expect_inv = 1.0 / at::pow(10000.0, at::arange(0, 8, 2).to(at::kFloat) / 8);
  EXPECT_LT(MaxDiff(t.inv_freq, expect_inv), 1e-7);
  at::Tensor x = at::randn({5, 2, 8});
  at::Tensor pos = at::arange(5, at::kLong) * 3;
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(1) * expect_inv.unsqueeze(0);
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);
  at::Tensor rot = at::cat({-x.narrow(-1, 4, 4), x.narrow(-1, 0, 4)}, -1);
  EXPECT_LT(MaxDiff(ApplyRope(x, pos, t, false), x * emb.cos() + rot * emb.sin()), 1e-5);
  p.kind = RopeKind::kLinear;
  p.factor = 2.0;
  EXPECT_LT(MaxDiff(MakeRopeTable(p, at::kCPU).inv_freq, expect_inv / 2), 1e-7);
}

// Interleaved rope must give the same q.k as the complex-pair rotation (DeepSeek's reference form).
TEST(Rope, InterleavedPreservesComplexDotProducts) {
  RopeParams p;
  p.rotary_dim = 8;
  p.kind = RopeKind::kYarn;
  p.factor = 4.0;
  p.original_max_position = 64;
  p.mscale = 0.707;
  p.mscale_all_dim = 0.707;
  RopeTable t = MakeRopeTable(p, at::kCPU);
  at::Tensor q = at::randn({6, 1, 8}), k = at::randn({6, 1, 8});
  at::Tensor pos = at::arange(6, at::kLong) * 11;
  auto complex_rot = [&](const at::Tensor& x) {
    at::Tensor freqs = pos.to(at::kFloat).unsqueeze(1) * t.inv_freq.unsqueeze(0);
    at::Tensor xr = x.reshape({6, 4, 2});
    at::Tensor a = xr.select(-1, 0), b = xr.select(-1, 1);
    return at::stack({a * freqs.cos() - b * freqs.sin(), b * freqs.cos() + a * freqs.sin()}, -1).reshape({6, 8}) *
           t.attention_scaling;
  };
  at::Tensor ref = at::mm(complex_rot(q), complex_rot(k).t());
  at::Tensor got = at::mm(ApplyRope(q, pos, t, true).view({6, 8}), ApplyRope(k, pos, t, true).view({6, 8}).t());
  EXPECT_LT(MaxDiff(got, ref), 1e-4);
}

TEST(Moe, GroupedMatchesPerTokenLoop) {
  at::manual_seed(4);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    const int64_t t = 13, h = 16, inter = 8, e = 6, k = 2;
    at::Tensor x = at::randn({t, h}).to(dtype);
    at::Tensor gu = (at::randn({e, 2 * inter, h}) * 0.3).to(dtype), down = (at::randn({e, h, inter}) * 0.3).to(dtype);
    auto [ids, w] = MoeRoute(at::randn({t, e}), {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, k});
    const double tol = dtype == at::kFloat ? 1e-5 : 3e-2;
    EXPECT_LT(MaxDiff(MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w), MoeExpertsNaive(x, gu, down, ids, w)), tol);
  }
}

// More than kGemvMaxRows tokens on one expert: the per-expert Linear path (the test above takes the
// segmented GEMV path); both against the per-token loop.
TEST(Moe, LargeExpertGroupsMatchPerTokenLoop) {
  at::manual_seed(6);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    const int64_t t = 2 * kGemvMaxRows + 9, h = 16, inter = 8, e = 2, k = 1;
    at::Tensor x = at::randn({t, h}).to(dtype);
    at::Tensor gu = (at::randn({e, 2 * inter, h}) * 0.3).to(dtype), down = (at::randn({e, h, inter}) * 0.3).to(dtype);
    auto [ids, w] = MoeRoute(at::randn({t, e}), {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, k});
    ASSERT_GT(at::bincount(ids.reshape({-1})).max().item<int64_t>(), kGemvMaxRows);
    const double tol = dtype == at::kFloat ? 1e-5 : 3e-2;
    EXPECT_LT(MaxDiff(MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w), MoeExpertsNaive(x, gu, down, ids, w)), tol);
  }
}

// Experts as a sharded checkpoint stores them: one block per expert [down | gate | up | pad], blocks in the
// lexical order of the expert ids (0, 1, 10, 11, 2, ...), split over two buffers (two shards), the second
// one element off its allocation's alignment; each expert's weights views into its block. Against the
// per-token loop over contiguous stacks, on the segmented GEMV path (13 tokens, top 3) and the per-expert
// Linear path (one expert with more than kGemvMaxRows rows); and bit for bit against MoeExperts over the
// contiguous stacks.
TEST(Moe, ExpertViewsSpreadOverShardsMatchPerTokenLoop) {
  at::manual_seed(8);
  const int64_t h = 16, inter = 8, e = 12, pad = 4, first_shard = 7;
  std::vector<int64_t> file_order(e);  // file position -> expert id
  for (int64_t j = 0; j < e; ++j) file_order[j] = j;
  std::sort(file_order.begin(), file_order.end(),
            [](int64_t a, int64_t b) { return std::to_string(a) < std::to_string(b); });
  ASSERT_EQ(file_order[2], 10);
  const int64_t block = h * inter + 2 * inter * h + pad;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor gu = (at::randn({e, 2 * inter, h}) * 0.3).to(dtype), down = (at::randn({e, h, inter}) * 0.3).to(dtype);
    // Pads poison any read outside the experts.
    at::Tensor shards[2] = {
        at::full({first_shard * block}, 1e6, dtype),
        at::full({1 + (e - first_shard) * block}, 1e6, dtype).narrow(0, 1, (e - first_shard) * block)};
    std::vector<at::Tensor> gu_views(e), down_views(e);
    for (int64_t f = 0; f < e; ++f) {
      const int64_t id = file_order[f];
      at::Tensor& file = shards[f < first_shard ? 0 : 1];
      const int64_t at = (f < first_shard ? f : f - first_shard) * block;
      file.narrow(0, at, h * inter).copy_(down[id].reshape({-1}));
      file.narrow(0, at + h * inter, 2 * inter * h).copy_(gu[id].reshape({-1}));
      down_views[id] = file.narrow(0, at, h * inter).view({h, inter});
      gu_views[id] = file.narrow(0, at + h * inter, 2 * inter * h).view({2 * inter, h});
    }
    for (const int64_t t : {int64_t{13}, 2 * kGemvMaxRows + 9}) {
      const int64_t k = t == 13 ? 3 : 1;
      at::Tensor x = at::randn({t, h}).to(dtype);
      at::Tensor logits = at::randn({t, e});
      if (k == 1) logits.narrow(0, 0, kGemvMaxRows + 10).select(1, 10).add_(10.0);  // expert 10 gets > 64 rows
      auto [ids, w] = MoeRoute(logits, {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, k});
      const int64_t most = at::bincount(ids.reshape({-1})).max().item<int64_t>();
      EXPECT_EQ(most > kGemvMaxRows, k == 1);
      at::Tensor got = MoeExperts(x, gu_views, down_views, ids, w);
      const double tol = dtype == at::kFloat ? 1e-5 : 3e-2;
      EXPECT_LT(MaxDiff(got, MoeExpertsNaive(x, gu, down, ids, w)), tol) << t << " tokens";
      EXPECT_TRUE(at::equal(got, MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w))) << t << " tokens";
    }
  }
  at::Tensor x = at::randn({2, h});
  auto [ids, w] = MoeRoute(at::randn({2, e}), {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, 1});
  at::Tensor gu = at::randn({e, 2 * inter, h}), down = at::randn({e, h, inter});
  std::vector<at::Tensor> one_down_short = down.unbind(0);
  one_down_short.pop_back();
  EXPECT_THROW(MoeExperts(x, gu.unbind(0), one_down_short, ids, w), c10::Error);  // one down per expert
}

// Decode-sized steps (every expert at most kGemvMaxRows rows) with shared experts: MoeExperts runs all
// products in two pool calls and sums per token. Bit for bit against the general path written out here with
// torch ops (stable argsort grouping, the segmented products, dtype-rounded weighted rows index_add_-ed into
// zeros, then + Linear's shared MLP), and against the per-token loop within the dtype's tolerance.
TEST(Moe, FewTokenStepsWithSharedExpertsMatchTheComposedPath) {
  at::manual_seed(21);
  const int64_t h = 64, inter = 32, shared_inter = 96, e = 8, k = 4;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor gu = (at::randn({e, 2 * inter, h}) * 0.2).to(dtype), down = (at::randn({e, h, inter}) * 0.2).to(dtype);
    at::Tensor sgu = (at::randn({2 * shared_inter, h}) * 0.2).to(dtype);
    at::Tensor sdown = (at::randn({h, shared_inter}) * 0.2).to(dtype);
    for (const int64_t t : {int64_t{1}, int64_t{3}, int64_t{5}, int64_t{13}, int64_t{40}}) {
      at::Tensor x = at::randn({t, h}).to(dtype);
      auto [ids, w] =
          MoeRoute(at::randn({t, e}), {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, k});
      ASSERT_LE(at::bincount(ids.reshape({-1})).max().item<int64_t>(), kGemvMaxRows);
      at::Tensor got = MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w, sgu, sdown);
      ASSERT_EQ(got.scalar_type(), dtype);

      at::Tensor order = std::get<1>(ids.reshape({-1}).sort(std::optional<bool>(true), -1, false));
      at::Tensor token_of = at::floor_divide(order, k);
      at::Tensor counts = at::bincount(ids.reshape({-1}), {}, e);
      const std::vector<int64_t> rows(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + e);
      at::Tensor xs = x.index_select(0, token_of);
      at::Tensor ys =
          SegmentedGemvLinear(SiluAndMul(SegmentedGemvLinear(xs, gu.unbind(0), rows)), down.unbind(0), rows);
      at::Tensor weighted = (ys * w.reshape({-1}).index_select(0, order).unsqueeze(1)).to(dtype);
      at::Tensor ref = at::zeros_like(x).index_add_(0, token_of, weighted) + Linear(SiluAndMul(Linear(x, sgu)), sdown);
      EXPECT_TRUE(at::equal(got, ref)) << t << " tokens, max diff " << MaxDiff(got, ref);

      at::Tensor naive =
          MoeExpertsNaive(x, gu, down, ids, w) + at::linear(SiluAndMul(at::linear(x, sgu)), sdown).to(dtype);
      // bf16: intermediates rounded at different points; a few ulps of the largest output.
      const double tol = dtype == at::kFloat ? 1e-5 : 2e-2 * (naive.abs().max().item<double>() + 1);
      EXPECT_LT(MaxDiff(got, naive), tol) << t << " tokens";
    }
    // One expert over kGemvMaxRows rows: the general path, shared MLP added the same way.
    const int64_t t = kGemvMaxRows + 7;
    at::Tensor x = at::randn({t, h}).to(dtype);
    at::Tensor logits = at::randn({t, e});
    logits.select(1, 2).add_(10.0);
    auto [ids, w] = MoeRoute(logits, {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, k});
    at::Tensor got = MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w, sgu, sdown);
    at::Tensor naive =
        MoeExpertsNaive(x, gu, down, ids, w) + at::linear(SiluAndMul(at::linear(x, sgu)), sdown).to(dtype);
    EXPECT_LT(MaxDiff(got, naive), dtype == at::kFloat ? 1e-5 : 2e-2 * (naive.abs().max().item<double>() + 1));
  }
  at::Tensor x = at::randn({2, h});
  auto [ids, w] = MoeRoute(at::randn({2, e}), {}, MoeRoutingParams{MoeScoring::kSoftmax, MoeTopkMethod::kGreedy, 1});
  at::Tensor gu = at::randn({e, 2 * inter, h}), down = at::randn({e, h, inter});
  EXPECT_THROW(MoeExperts(x, gu.unbind(0), down.unbind(0), ids, w, at::randn({2 * shared_inter, h}), {}), c10::Error);
  EXPECT_THROW(MoeExperts(x, gu.unbind(0), down.unbind(0), at::full({2, 1}, e, at::kLong), w),
               c10::Error);  // id out of range
}

TEST(Moe, NoauxRoutingMatchesReference) {
  at::manual_seed(5);
  const int64_t t = 9, e = 16, groups = 4;
  at::Tensor logits = at::randn({t, e}), bias = at::randn({e}) * 0.5;
  MoeRoutingParams p{MoeScoring::kSigmoid, MoeTopkMethod::kNoauxTc, 3, groups, 2, true, 2.5};
  auto [ids, w] = MoeRoute(logits, bias, p);
  for (int64_t i = 0; i < t; ++i) {
    at::Tensor s = logits[i].sigmoid(), c = s + bias;
    at::Tensor gs = std::get<0>(c.view({groups, e / groups}).topk(2, -1)).sum(-1);
    at::Tensor keep_groups = std::get<1>(gs.topk(2));
    at::Tensor masked = at::zeros({e});
    for (int64_t g = 0; g < 2; ++g) {
      const int64_t gi = keep_groups[g].item<int64_t>();
      masked.narrow(0, gi * 4, 4).copy_(c.narrow(0, gi * 4, 4));
    }
    at::Tensor ref_ids = std::get<0>(std::get<1>(masked.topk(3)).sort());
    auto got_sorted = ids[i].sort();
    EXPECT_TRUE(at::equal(std::get<0>(got_sorted), ref_ids));
    at::Tensor ref_w = s.index_select(0, ref_ids);
    ref_w = ref_w / ref_w.sum() * 2.5;
    EXPECT_LT(MaxDiff(w[i].index_select(0, std::get<1>(got_sorted)), ref_w), 1e-6);
  }
}

TEST(Sampling, GreedyAndDegenerateFiltersPickArgmax) {
  at::manual_seed(6);
  at::Tensor logits = at::randn({4, 50});
  at::Tensor argmax = logits.argmax(-1);
  auto f = [](std::vector<float> v) { return at::tensor(v); };
  auto i = [](std::vector<int64_t> v) { return at::tensor(v); };
  at::Tensor u = f({0.99f, 0.5f, 0.7f, 0.3f});
  // greedy, top_k=1, top_p tiny, min_p=1
  at::Tensor got = SampleFromLogits(logits, f({0, 1, 1, 1}), i({0, 1, 0, 0}), f({1, 1, 1e-6f, 1}), f({0, 0, 0, 1}), u);
  EXPECT_TRUE(at::equal(got, argmax));
}

TEST(Sampling, SeededDrawsAreReproducibleAndFollowTheDistribution) {
  EXPECT_EQ(SeededUniform(42, 7), SeededUniform(42, 7));
  EXPECT_NE(SeededUniform(42, 7), SeededUniform(42, 8));
  at::Tensor logits = at::log(at::tensor(std::vector<float>{0.5f, 0.3f, 0.2f})).unsqueeze(0).repeat({3000, 1});
  std::vector<float> u;
  for (int j = 0; j < 3000; ++j) u.push_back(static_cast<float>(SeededUniform(1, j)));
  at::Tensor ones = at::ones({3000}), zeros = at::zeros({3000});
  at::Tensor got = SampleFromLogits(logits, ones, zeros.to(at::kLong), ones, zeros, at::tensor(u));
  at::Tensor freq = at::bincount(got, {}, 3).to(at::kFloat) / 3000;
  EXPECT_LT(MaxDiff(freq, at::tensor(std::vector<float>{0.5f, 0.3f, 0.2f})), 0.03);
  // top_p 0.6 keeps tokens 0 and 1 only, renormalised 0.625 / 0.375.
  at::Tensor got_p = SampleFromLogits(logits, ones, zeros.to(at::kLong), ones * 0.6, zeros, at::tensor(u));
  EXPECT_EQ((got_p == 2).sum().item<int64_t>(), 0);
  EXPECT_NEAR((got_p == 0).sum().item<double>() / 3000, 0.625, 0.03);
}

TEST(Sampling, Penalties) {
  at::Tensor logits = at::tensor(std::vector<float>{2, -2, 1, 0}).unsqueeze(0);
  at::Tensor rows = at::zeros({3}, at::kLong), ids = at::tensor(std::vector<int64_t>{0, 1, 0});
  auto one = [](float v) { return at::tensor(std::vector<float>{v}); };
  at::Tensor rep = ApplyPenalties(logits, rows, ids, one(2), one(0), one(0));
  EXPECT_LT(MaxDiff(rep, at::tensor(std::vector<float>{1, -4, 1, 0}).unsqueeze(0)), 1e-6);
  at::Tensor pf = ApplyPenalties(logits, rows, ids, one(1), one(0.5), one(0.25));
  EXPECT_LT(MaxDiff(pf, at::tensor(std::vector<float>{2 - 0.5f - 0.5f, -2 - 0.5f - 0.25f, 1, 0}).unsqueeze(0)), 1e-6);
}

TEST(Norm, RmsNormMatchesFormula) {
  at::Tensor x = at::randn({3, 16}), w = at::randn({16});
  at::Tensor ref = w * (x / at::sqrt(x.pow(2).mean(-1, true) + 1e-6));
  EXPECT_LT(MaxDiff(RmsNorm(x, w, 1e-6), ref), 1e-5);
}

// The CPU row kernels (kernels/cpu/rowwise.*) against the at:: formulation written out here, with its
// intermediate roundings to the tensor's dtype. Shapes: odd dims, strided rows (a view into wider rows).
// bf16: float32 summation order may flip a rounding, so one bf16 step (2^-8 relative) is allowed.
double RowTol(at::ScalarType dtype, const at::Tensor& ref) {
  return dtype == at::kFloat ? 1e-5 * (ref.abs().max().item<double>() + 1)
                             : std::ldexp(ref.abs().max().item<double>() + 1e-3, -7);
}

at::Tensor RmsNormFormula(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor xf = x.to(at::kFloat);
  return w * (xf / at::sqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

TEST(Norm, RowKernelsMatchAtenFormulation) {
  at::manual_seed(11);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t dim : {1, 16, 1000, 1024}) {
      for (int64_t rows : {1, 3}) {
        at::Tensor wide = at::randn({rows, dim + 5}).to(dtype);
        at::Tensor x = wide.narrow(1, 3, dim);  // row stride dim + 5
        at::Tensor w = at::randn({dim}).to(dtype);
        at::Tensor ref = RmsNormFormula(x, w, 1e-6);
        at::Tensor got = RmsNorm(x, w, 1e-6);
        ASSERT_EQ(got.scalar_type(), dtype);
        EXPECT_LE(MaxDiff(got, ref), RowTol(dtype, ref)) << dim << " x " << rows;

        at::Tensor hidden = at::randn({rows, dim}).to(dtype), delta = at::randn({rows, dim}).to(dtype);
        at::Tensor sum = (hidden.to(at::kFloat) + delta.to(at::kFloat)).to(dtype);
        at::Tensor normed = AddRmsNorm(hidden, delta, w, 1e-5);
        EXPECT_EQ(MaxDiff(hidden, sum), 0.0) << "residual add, " << dim << " x " << rows;
        at::Tensor nref = RmsNormFormula(sum, w, 1e-5);
        EXPECT_LE(MaxDiff(normed, nref), RowTol(dtype, nref)) << dim << " x " << rows;

        at::Tensor gu_wide = at::randn({rows, 2 * dim + 3}).to(dtype);
        at::Tensor gu = gu_wide.narrow(1, 0, 2 * dim);
        at::Tensor g = gu.narrow(1, 0, dim).to(at::kFloat), u = gu.narrow(1, dim, dim).to(at::kFloat);
        at::Tensor sref = ((g / (1 + at::exp(-g))).to(dtype).to(at::kFloat) * u).to(dtype);
        at::Tensor sgot = SiluAndMul(gu);
        ASSERT_EQ(sgot.sizes(), sref.sizes());
        EXPECT_LE(MaxDiff(sgot, sref), RowTol(dtype, sref)) << dim << " x " << rows;
      }
    }
  }
}

// Rope on a strided [tokens, heads, dim] view (q inside a fused qkv row), both layouts, against the formula.
TEST(Rope, RowKernelMatchesFormulaOnStridedViews) {
  at::manual_seed(12);
  RopeParams p;
  p.rotary_dim = 32;
  p.kind = RopeKind::kYarn;
  p.factor = 4.0;
  p.original_max_position = 64;
  p.mscale = 0.707;
  p.mscale_all_dim = 0.707;
  RopeTable table = MakeRopeTable(p, at::kCPU);
  const int64_t t = 5, heads = 3, dim = 32, half = 16;
  at::Tensor pos = at::arange(t, at::kLong) * 7 + 2;
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(1) * table.inv_freq.unsqueeze(0);  // [t, half]
  at::Tensor cos = (freqs.cos() * table.attention_scaling).unsqueeze(1),
             sin = (freqs.sin() * table.attention_scaling).unsqueeze(1);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    for (bool interleaved : {false, true}) {
      at::Tensor qkv = at::randn({t, 2 * heads * dim + 8}).to(dtype);
      at::Tensor x = qkv.narrow(1, heads * dim, heads * dim).view({t, heads, dim});
      at::Tensor xf = x.to(at::kFloat);
      at::Tensor x1 = interleaved ? xf.reshape({t, heads, half, 2}).select(-1, 0) : xf.narrow(-1, 0, half);
      at::Tensor x2 = interleaved ? xf.reshape({t, heads, half, 2}).select(-1, 1) : xf.narrow(-1, half, half);
      at::Tensor ref = at::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1).to(dtype);
      at::Tensor got = ApplyRope(x, pos, table, interleaved);
      ASSERT_EQ(got.sizes(), ref.sizes());
      EXPECT_LE(MaxDiff(got, ref), RowTol(dtype, ref)) << (interleaved ? "interleaved" : "neox");
    }
  }
}

// Segments of rows against per-segment float64 products; empty segments; each segment's rows equal the
// same rows through the kernel it ran alone (GemvLinear, or GemmLinear on AMX; the per-row invariance).
TEST(Linear, SegmentedGemvMatchesPerSegmentProducts) {
  at::manual_seed(13);
  const int64_t n = 40, k = 100;
  const std::vector<int64_t> rows = {3, 0, 1, 17, 0, 5};
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor x = at::randn({total, k + 3}).to(dtype).narrow(1, 1, k);
    at::Tensor w = at::randn({static_cast<int64_t>(rows.size()), n, k}).to(dtype);
    ASSERT_TRUE(SegmentedGemvEligible(x, w.unbind(0)));
    at::Tensor got = SegmentedGemvLinear(x, w.unbind(0), rows);
    ASSERT_EQ(got.scalar_type(), dtype);
    ASSERT_EQ(got.size(0), total);
    int64_t off = 0;
    for (size_t s = 0; s < rows.size(); ++s) {
      if (rows[s] == 0) continue;
      at::Tensor xs = x.narrow(0, off, rows[s]);
      at::Tensor ref = xs.to(at::kDouble).matmul(w[static_cast<int64_t>(s)].to(at::kDouble).t());
      const double tol = dtype == at::kFloat ? 1e-5 * std::sqrt(k) : 1e-2 * (ref.abs().max().item<double>() + 1);
      EXPECT_LT((got.narrow(0, off, rows[s]).to(at::kDouble) - ref).abs().max().item<double>(), tol) << "segment " << s;
      // bf16 segments of kGemmMinRowsAmx or more rows take the GEMM's AMX path where the CPU has it.
      const bool amx = dtype == at::kBFloat16 && rows[s] >= kGemmMinRowsAmx &&
                       kernels::cpu::GemmIsaSupported(kernels::cpu::GemvIsa::kAmxBf16);
      const at::Tensor alone =
          amx ? GemmLinear(xs, w[static_cast<int64_t>(s)]) : GemvLinear(xs, w[static_cast<int64_t>(s)]);
      EXPECT_EQ(MaxDiff(got.narrow(0, off, rows[s]), alone), 0.0) << "segment " << s << (amx ? " (amx)" : "");
      off += rows[s];
    }
  }
  at::Tensor x = at::randn({4, k});
  EXPECT_THROW(SegmentedGemvLinear(x, at::randn({2, n, k}).unbind(0), {1, 2}), c10::Error);  // rows do not sum to 4
  // Weights of unlike shapes, or one not contiguous: not eligible, and refused naming the weight.
  const std::vector<at::Tensor> mixed = {at::randn({n, k}), at::randn({n + 1, k})};
  EXPECT_FALSE(SegmentedGemvEligible(x, mixed));
  EXPECT_THROW(SegmentedGemvLinear(x, mixed, {2, 2}), c10::Error);
  const std::vector<at::Tensor> strided = {at::randn({n, k}), at::randn({n, 2 * k}).narrow(1, 0, k)};
  EXPECT_FALSE(SegmentedGemvEligible(x, strided));
  EXPECT_THROW(SegmentedGemvLinear(x, strided, {2, 2}), c10::Error);
}

// Products of different shapes in one SegmentedGemvLinears call: each result has the bits of its own
// SegmentedGemvLinear call.
TEST(Linear, SegmentedGemvProductsInOneCallMatchSeparateCalls) {
  at::manual_seed(14);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor x1 = at::randn({9, 100}).to(dtype), w1 = at::randn({3, 40, 100}).to(dtype);
    at::Tensor x2 = at::randn({5, 72}).to(dtype), w2 = at::randn({1, 130, 72}).to(dtype);
    const std::vector<int64_t> rows1 = {4, 0, 5};
    std::vector<at::Tensor> got =
        SegmentedGemvLinears({{x1, w1.unbind(0), rows1, {2, 0, 1}}, {x2, w2.unbind(0), {5}, {}}});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(at::equal(got[0], SegmentedGemvLinear(x1, w1.unbind(0), rows1, {2, 0, 1})));
    EXPECT_TRUE(at::equal(got[1], SegmentedGemvLinear(x2, w2.unbind(0), {5})));
    EXPECT_EQ(SegmentedMatchesLinear(x2, w2[0]), true);
    EXPECT_TRUE(at::equal(got[1], Linear(x2, w2[0])));
  }
  at::Tensor x = at::randn({4, 8});
  EXPECT_THROW(SegmentedGemvLinears({{x, {at::randn({3, 8})}, {4}, {}},
                                     {x.to(at::kBFloat16), {at::randn({3, 8}).to(at::kBFloat16)}, {4}, {}}}),
               c10::Error);  // one dtype per call
}

// GEMV kernel against a float64 matmul of the same (dtype-rounded) inputs. Shapes cover K not a multiple of
// the 32/16-lane step, N not a multiple of the 4-row block, 1..17 rows, strided x rows and a bias.
TEST(Linear, GemvMatchesMatmul) {
  at::manual_seed(3);
  struct Shape {
    int64_t m, n, k;
  };
  for (const Shape& s : {Shape{1, 7, 5}, Shape{1, 129, 1024}, Shape{3, 67, 100}, Shape{4, 64, 96}, Shape{5, 33, 47},
                         Shape{16, 40, 64}, Shape{17, 9, 33}}) {
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor xw = at::randn({s.m, s.k + 3}).to(dtype);
      at::Tensor x = xw.narrow(1, 2, s.k);  // row stride k + 3
      at::Tensor w = at::randn({s.n, s.k}).to(dtype);
      at::Tensor b = at::randn({s.n}).to(dtype);
      at::Tensor ref = (x.to(at::kDouble).matmul(w.to(at::kDouble).t()) + b.to(at::kDouble));
      at::Tensor got = GemvLinear(x, w, b);
      ASSERT_EQ(got.scalar_type(), dtype);
      ASSERT_EQ(got.sizes(), ref.sizes());
      const double scale = std::sqrt(static_cast<double>(s.k));
      // float32: summation order only; bfloat16: the output rounding (8-bit mantissa) dominates.
      const double tol = dtype == at::kFloat ? 1e-5 * scale : 1e-2 * (ref.abs().max().item<double>() + 1);
      EXPECT_LT((got.to(at::kDouble) - ref).abs().max().item<double>(), tol) << s.m << "x" << s.n << "x" << s.k;
      EXPECT_LT(MaxDiff(GemvLinear(x, w), x.to(at::kDouble).matmul(w.to(at::kDouble).t())), tol);
      // Each row's result does not depend on the other rows in the call.
      EXPECT_EQ(MaxDiff(GemvLinear(x.narrow(0, 0, 1), w, b), got.narrow(0, 0, 1)), 0.0);
      // Linear picks GEMV or at::linear; either way the same product.
      EXPECT_LT((Linear(x, w, b).to(at::kDouble) - ref).abs().max().item<double>(), tol);
    }
  }
}

TEST(Parallel, EveryChunkRunsExactlyOnce) {
  SetPoolThreads(2);
  for (int64_t n : {0, 1, 2, 3, 100, 5000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    for (int rep = 0; rep < 20; ++rep) {
      ParallelChunks(n, [&](int64_t c) { hits[static_cast<size_t>(c)].fetch_add(1); });
    }
    for (int64_t c = 0; c < n; ++c) ASSERT_EQ(hits[static_cast<size_t>(c)].load(), 20) << "chunk " << c << " of " << n;
  }
  // A nested call runs inline.
  std::atomic<int> inner{0};
  ParallelChunks(4, [&](int64_t) { ParallelChunks(3, [&](int64_t) { inner.fetch_add(1); }); });
  EXPECT_EQ(inner.load(), 12);
}

TEST(Parallel, AnInlineOnlyThreadRunsEveryChunkItself) {
  SetPoolThreads(2);
  std::thread t([] {
    EXPECT_FALSE(SetThreadRunsInline(true));
    const std::thread::id self = std::this_thread::get_id();
    std::atomic<int> elsewhere{0}, ran{0};
    for (int rep = 0; rep < 20; ++rep) {
      ParallelChunks(64, [&](int64_t) {
        ran.fetch_add(1);
        if (std::this_thread::get_id() != self) elsewhere.fetch_add(1);
      });
    }
    EXPECT_EQ(ran.load(), 20 * 64);
    EXPECT_EQ(elsewhere.load(), 0);
    EXPECT_TRUE(SetThreadRunsInline(false));
  });
  t.join();
}

// The row kernels split over the 2-thread pool (ParallelRows: row counts with tails, several ranges per
// call) against the same at:: formulation as above; and bitwise equal to the one-call result of a 1-thread
// pool (each row's result depends only on that row).
TEST(Norm, RowKernelsOnThePoolMatchAtenFormulation) {
  at::manual_seed(21);
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t dim : {1000, 1024}) {
      for (int64_t rows : {17, 64, 67}) {
        SetPoolThreads(2);
        at::Tensor wide = at::randn({rows, dim + 5}).to(dtype);
        at::Tensor x = wide.narrow(1, 3, dim);
        at::Tensor w = at::randn({dim}).to(dtype);
        at::Tensor ref = RmsNormFormula(x, w, 1e-6);
        at::Tensor got = RmsNorm(x, w, 1e-6);
        EXPECT_LE(MaxDiff(got, ref), RowTol(dtype, ref)) << dim << " x " << rows;

        at::Tensor hidden0 = at::randn({rows, dim}).to(dtype), delta = at::randn({rows, dim}).to(dtype);
        at::Tensor hidden = hidden0.clone();
        at::Tensor sum = (hidden.to(at::kFloat) + delta.to(at::kFloat)).to(dtype);
        at::Tensor normed = AddRmsNorm(hidden, delta, w, 1e-5);
        EXPECT_EQ(MaxDiff(hidden, sum), 0.0) << "residual add, " << dim << " x " << rows;
        at::Tensor nref = RmsNormFormula(sum, w, 1e-5);
        EXPECT_LE(MaxDiff(normed, nref), RowTol(dtype, nref)) << dim << " x " << rows;

        at::Tensor gu = at::randn({rows, 2 * dim + 3}).to(dtype).narrow(1, 0, 2 * dim);
        at::Tensor g = gu.narrow(1, 0, dim).to(at::kFloat), u = gu.narrow(1, dim, dim).to(at::kFloat);
        at::Tensor sref = ((g / (1 + at::exp(-g))).to(dtype).to(at::kFloat) * u).to(dtype);
        at::Tensor sgot = SiluAndMul(gu);
        EXPECT_LE(MaxDiff(sgot, sref), RowTol(dtype, sref)) << dim << " x " << rows;

        SetPoolThreads(1);
        EXPECT_TRUE(at::equal(RmsNorm(x, w, 1e-6), got)) << dim << " x " << rows;
        at::Tensor hidden1 = hidden0.clone();
        EXPECT_TRUE(at::equal(AddRmsNorm(hidden1, delta, w, 1e-5), normed)) << dim << " x " << rows;
        EXPECT_TRUE(at::equal(SiluAndMul(gu), sgot)) << dim << " x " << rows;
      }
    }
  }
  SetPoolThreads(2);
}

// RoPE over enough tokens to be split on the pool (odd token count: a short last range), on the strided q
// view of a fused qkv row, against the formula.
TEST(Rope, RowKernelOnThePoolMatchesFormula) {
  at::manual_seed(22);
  SetPoolThreads(2);
  RopeParams p;
  p.rotary_dim = 64;
  RopeTable table = MakeRopeTable(p, at::kCPU);
  const int64_t heads = 16, dim = 64, half = 32;
  for (int64_t t : {33, 67}) {
    at::Tensor pos = at::arange(t, at::kLong) * 3 + 1;
    at::Tensor freqs = pos.to(at::kFloat).unsqueeze(1) * table.inv_freq.unsqueeze(0);
    at::Tensor cos = freqs.cos().unsqueeze(1), sin = freqs.sin().unsqueeze(1);
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor qkv = at::randn({t, 3 * heads * dim}).to(dtype);
      at::Tensor x = qkv.narrow(1, 0, heads * dim).view({t, heads, dim});
      at::Tensor xf = x.to(at::kFloat);
      at::Tensor x1 = xf.narrow(-1, 0, half), x2 = xf.narrow(-1, half, half);
      at::Tensor ref = at::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1).to(dtype);
      at::Tensor got = ApplyRope(x, pos, table, false);
      EXPECT_LE(MaxDiff(got, ref), RowTol(dtype, ref)) << t;
    }
  }
}

// The step's K/V rows into their cache slots against index_copy_: contiguous and strided rows (V as a view
// into the fused qkv row), float32 and bfloat16, slots in any order; rows of another dtype (converted);
// an out-of-range slot is an error that names it, and leaves the cache as it was.
TEST(Attention, WriteCacheRowsMatchesIndexCopy) {
  at::manual_seed(23);
  const int64_t slots_n = 40, hkv = 3, d = 5, t = 7;
  at::Tensor slots = at::tensor(std::vector<int64_t>{39, 0, 17, 5, 22, 1, 38});
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor qkv = at::randn({t, 4 * hkv * d}).to(dtype);
    at::Tensor strided = qkv.narrow(1, 2 * hkv * d, hkv * d).view({t, hkv, d});
    at::Tensor contiguous = at::randn({t, hkv, d}).to(dtype);
    at::Tensor other = at::randn({t, hkv, d}).to(dtype == at::kFloat ? at::kBFloat16 : at::kFloat);
    for (const at::Tensor& rows : {strided, contiguous, other}) {
      at::Tensor cache = at::randn({slots_n, hkv, d}).to(dtype);
      at::Tensor want = cache.clone();
      want.index_copy_(0, slots, rows.to(dtype));
      WriteCacheRows(cache, slots, rows);
      EXPECT_TRUE(at::equal(cache, want)) << rows.scalar_type() << " into " << dtype;
    }
    at::Tensor cache = at::randn({slots_n, hkv, d}).to(dtype);
    at::Tensor before = cache.clone();
    at::Tensor bad = slots.clone();
    bad[3] = slots_n;
    try {
      WriteCacheRows(cache, bad, contiguous);
      ADD_FAILURE() << "no error for slot " << slots_n;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("slot 40 of token 3 out of range"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(at::equal(cache, before));
    EXPECT_THROW(WriteCacheRows(cache, slots.narrow(0, 0, 6), contiguous), c10::Error);
  }
}

// AllFinite against std::isfinite over every value: rows that the pool splits (64 x 32256) and odd sizes,
// a NaN / +inf / -inf at the first value, inside a middle row and at the last value (the vector loop's tail).
TEST(Sampling, AllFiniteMatchesIsfinitePerValue) {
  SetPoolThreads(2);
  at::manual_seed(24);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (auto [rows, vocab] : {std::pair<int64_t, int64_t>{64, 32256}, {3, 1001}, {1, 1}, {5, 17}}) {
    for (float bad : {nan, inf, -inf, 3.0f}) {
      for (int64_t where : {int64_t{0}, rows * vocab / 2, rows * vocab - 1}) {
        at::Tensor x = at::randn({rows, vocab}) * 30;
        x.view({-1})[where] = bad;
        bool want = true;
        const float* p = x.data_ptr<float>();
        for (int64_t i = 0; i < x.numel(); ++i) want = want && std::isfinite(p[i]);
        EXPECT_EQ(AllFinite(x), want) << rows << " x " << vocab << " value " << bad << " at " << where;
      }
    }
  }
  // Non-contiguous rows (copied first) and a bfloat16 tensor (the at:: form) agree too.
  at::Tensor wide = at::randn({4, 40});
  wide[2][35] = inf;
  EXPECT_TRUE(AllFinite(wide.narrow(1, 0, 30)));
  EXPECT_FALSE(AllFinite(wide.narrow(1, 10, 30)));
  EXPECT_FALSE(AllFinite(wide.to(at::kBFloat16)));
}

}  // namespace
}  // namespace inferd::ops
