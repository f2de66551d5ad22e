// Paged decode attention on CUDA against the CPU kernel (kernels/cpu/paged_attention via
// ops::PagedDecodeAttention) on the same cache, block tables and context lengths: MHA, GQA and the absorbed
// MLA layout (one latent+rope row per token, V = its latent prefix). fp16 inputs are compared against the
// CPU kernel run on the same values widened to fp32 (the CPU kernel reads fp32 and bf16 only).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "ops/attention.h"

namespace inferd::ops {
namespace {

using testing::ExpectClose;
using testing::TolFor;

struct Shape {
  const char* name;
  int64_t q_heads, kv_heads, dk, dv;  // dv < dk with kv_heads == 1: MLA (V is the latent prefix of K)
  bool mla;
};

struct Paged {
  at::Tensor cache_k, cache_v, tables, lens;
};

// Blocks are handed out in a shuffled order so every sequence's table is non-contiguous.
Paged MakeCache(const Shape& s, at::ScalarType dt, const std::vector<int32_t>& ctx, int64_t block_size) {
  int64_t max_blocks = 0, total = 0;
  for (int32_t c : ctx) {
    max_blocks = std::max<int64_t>(max_blocks, (c + block_size - 1) / block_size);
    total += (c + block_size - 1) / block_size;
  }
  const int64_t num_blocks = total + 3;
  std::vector<int32_t> ids(num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937 rng(5);
  std::shuffle(ids.begin(), ids.end(), rng);
  at::Tensor tables = at::zeros({static_cast<int64_t>(ctx.size()), max_blocks}, at::kInt);
  size_t next = 0;
  for (size_t b = 0; b < ctx.size(); ++b) {
    for (int64_t j = 0; j < (ctx[b] + block_size - 1) / block_size; ++j) tables[b][j].fill_(ids[next++]);
  }
  Paged p;
  p.cache_k = at::randn({num_blocks, block_size, s.kv_heads, s.dk}).to(dt);
  p.cache_v = s.mla ? p.cache_k.narrow(3, 0, s.dv) : at::randn({num_blocks, block_size, s.kv_heads, s.dv}).to(dt);
  p.tables = tables;
  p.lens = at::tensor(std::vector<int32_t>(ctx), at::kInt);
  return p;
}

class CudaPagedDecode : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override {
    INFERD_REQUIRE_CUDA();
    at::manual_seed(3);
  }
};

TEST_P(CudaPagedDecode, MatchesCpuKernel) {
  const at::ScalarType dt = GetParam();
  const Shape shapes[] = {
      {"mha", 16, 16, 128, 128, false},         {"gqa", 32, 8, 128, 128, false},
      {"mqa_d64", 8, 1, 64, 64, false},         {"mla_v2_lite", 16, 1, 576, 512, true},
      {"mla_v3_heads", 128, 1, 576, 512, true},
  };
  const std::vector<int32_t> ctx = {1, 17, 300, 16, 1029};
  for (const Shape& s : shapes) {
    for (int64_t block_size : {16, 7}) {
      Paged p = MakeCache(s, dt, ctx, block_size);
      at::Tensor q = at::randn({static_cast<int64_t>(ctx.size()), s.q_heads, s.dk}).to(dt);
      const double scale = 1.0 / std::sqrt(static_cast<double>(s.dk));
      // CPU reference in the dtype when the CPU kernel has it, else on the fp32-widened values.
      const at::ScalarType ref_dt = dt == at::kHalf ? at::kFloat : dt;
      at::Tensor ck = p.cache_k.to(ref_dt);
      at::Tensor cv = s.mla ? ck.narrow(3, 0, s.dv) : p.cache_v.to(ref_dt);
      at::Tensor cpu = PagedDecodeAttention(q.to(ref_dt), ck, cv, p.tables, p.lens, scale).to(dt);
      at::Tensor gk = p.cache_k.cuda();
      at::Tensor gv = s.mla ? gk.narrow(3, 0, s.dv) : p.cache_v.cuda();
      at::Tensor cuda = PagedDecodeAttention(q.cuda(), gk, gv, p.tables.cuda(), p.lens.cuda(), scale);
      ExpectClose(cuda, cpu, TolFor(dt), std::string(s.name) + " block_size " + std::to_string(block_size));
    }
  }
}

// Softmax of a single token is 1: the output is that token's V row exactly (up to the output rounding).
TEST_P(CudaPagedDecode, SingleTokenReturnsItsValueRow) {
  const at::ScalarType dt = GetParam();
  const Shape s{"gqa", 4, 2, 64, 64, false};
  Paged p = MakeCache(s, dt, {1, 1}, 16);
  at::Tensor q = at::randn({2, 4, 64}).to(dt);
  at::Tensor out =
      PagedDecodeAttention(q.cuda(), p.cache_k.cuda(), p.cache_v.cuda(), p.tables.cuda(), p.lens.cuda(), 0.125).cpu();
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t block = p.tables[b][0].item<int64_t>();
    for (int64_t h = 0; h < 4; ++h) {
      ExpectClose(out[b][h], p.cache_v[block][0][h / 2], TolFor(dt), "seq " + std::to_string(b));
    }
  }
}

TEST_P(CudaPagedDecode, RejectsMismatchedDtypes) {
  const Shape s{"mha", 2, 2, 64, 64, false};
  Paged p = MakeCache(s, at::kFloat, {4}, 16);
  at::Tensor q = at::randn({1, 2, 64}).to(GetParam() == at::kFloat ? at::kBFloat16 : at::kFloat);
  EXPECT_THROW(PagedDecodeAttention(q.cuda(), p.cache_k.cuda(), p.cache_v.cuda(), p.tables.cuda(), p.lens.cuda(), 1.0),
               c10::Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaPagedDecode, ::testing::Values(at::kFloat, at::kBFloat16, at::kHalf),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

}  // namespace
}  // namespace inferd::ops
