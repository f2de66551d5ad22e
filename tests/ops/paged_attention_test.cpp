// kernels/cpu/paged_attention.*: every ISA path this CPU supports (forced through
// PagedDecodeAttentionRangeIsa) against a double-precision softmax(q k^T) v over the same stored K/V.
// Covers MHA and GQA groups, head dims that are not a multiple of the vector width (masked / scalar tails),
// bf16 and float32 caches scattered over non-contiguous blocks, and a batch of 24 sequences.
#include "kernels/cpu/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace inferd::kernels::cpu {
namespace {

struct Case {
  int64_t seqs, hq, hkv, dk, dv, block_size;
  ElemType type;
};

uint16_t TruncBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}

void Check(const Case& c, AttentionIsa isa) {
  std::mt19937 gen(static_cast<uint32_t>(c.seqs * 131 + c.dk));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::uniform_int_distribution<int> len(1, 70);
  std::vector<int32_t> ctx(static_cast<size_t>(c.seqs));
  int64_t max_blocks = 0, total_blocks = 0;
  for (auto& l : ctx) {
    l = len(gen);
    const int64_t nb = (l + c.block_size - 1) / c.block_size;
    max_blocks = std::max(max_blocks, nb);
    total_blocks += nb;
  }
  // Blocks handed out in reverse so each sequence's blocks are not in cache order.
  std::vector<int32_t> tables(static_cast<size_t>(c.seqs * max_blocks), 0);
  int32_t next = static_cast<int32_t>(total_blocks) - 1;
  for (int64_t s = 0; s < c.seqs; ++s) {
    for (int64_t b = 0; b * c.block_size < ctx[static_cast<size_t>(s)]; ++b) tables[s * max_blocks + b] = next--;
  }
  const int64_t kw = c.hkv * c.dk, vw = c.hkv * c.dv;  // values per token
  const size_t kn = static_cast<size_t>(total_blocks * c.block_size * kw);
  const size_t vn = static_cast<size_t>(total_blocks * c.block_size * vw);
  std::vector<float> kf(kn), vf(vn), qf(static_cast<size_t>(c.seqs * c.hq * c.dk));
  std::vector<uint16_t> kh(kn), vh(vn), qh(qf.size());
  auto fill = [&](std::vector<float>& f, std::vector<uint16_t>& h) {
    for (size_t i = 0; i < f.size(); ++i) {
      const float v = dist(gen);
      h[i] = TruncBf16(v);
      f[i] = c.type == ElemType::kBFloat16 ? Bf16ToFloat(h[i]) : v;
    }
  };
  fill(kf, kh);
  fill(vf, vh);
  fill(qf, qh);
  const bool bf = c.type == ElemType::kBFloat16;
  PagedDecodeArgs a;
  a.q = bf ? static_cast<const void*>(qh.data()) : qf.data();
  a.q_type = c.type;
  a.k_cache = bf ? static_cast<const void*>(kh.data()) : kf.data();
  a.v_cache = bf ? static_cast<const void*>(vh.data()) : vf.data();
  a.kv_type = c.type;
  a.k_block_stride = c.block_size * kw;
  a.k_token_stride = kw;
  a.k_head_stride = c.dk;
  a.v_block_stride = c.block_size * vw;
  a.v_token_stride = vw;
  a.v_head_stride = c.dv;
  a.block_tables = tables.data();
  a.block_table_stride = max_blocks;
  a.context_lens = ctx.data();
  std::vector<float> out(static_cast<size_t>(c.seqs * c.hq * c.dv), -1.0f);
  a.out = out.data();
  a.num_seqs = c.seqs;
  a.num_q_heads = c.hq;
  a.num_kv_heads = c.hkv;
  a.head_dim_k = c.dk;
  a.head_dim_v = c.dv;
  a.block_size = c.block_size;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.dk));
  // Two ranges, as two pool threads would run them.
  const int64_t items = c.seqs * c.hkv;
  PagedDecodeAttentionRangeIsa(a, isa, 0, items / 2);
  PagedDecodeAttentionRangeIsa(a, isa, items / 2, items);

  const int64_t group = c.hq / c.hkv;
  double worst = 0;
  for (int64_t s = 0; s < c.seqs; ++s) {
    const int64_t n = ctx[static_cast<size_t>(s)];
    for (int64_t h = 0; h < c.hq; ++h) {
      const int64_t kvh = h / group;
      std::vector<double> sc(static_cast<size_t>(n));
      double m = -1e300, sum = 0;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t base = tables[s * max_blocks + t / c.block_size] * c.block_size + t % c.block_size;
        double d = 0;
        for (int64_t i = 0; i < c.dk; ++i)
          d += static_cast<double>(qf[(s * c.hq + h) * c.dk + i]) * kf[base * kw + kvh * c.dk + i];
        sc[t] = d * a.scale;
        m = std::max(m, sc[t]);
      }
      for (auto& v : sc) sum += (v = std::exp(v - m));
      for (int64_t i = 0; i < c.dv; ++i) {
        double o = 0;
        for (int64_t t = 0; t < n; ++t) {
          const int64_t base = tables[s * max_blocks + t / c.block_size] * c.block_size + t % c.block_size;
          o += sc[t] / sum * vf[base * vw + kvh * c.dv + i];
        }
        worst = std::max(worst, std::fabs(o - out[(s * c.hq + h) * c.dv + i]));
      }
    }
  }
  // float32 accumulation over <= 70 tokens of N(0, 1) values: well under 1e-4 absolute.
  EXPECT_LT(worst, 1e-4) << AttentionIsaName(isa) << " seqs " << c.seqs << " hq " << c.hq << " hkv " << c.hkv << " dk "
                         << c.dk << " dv " << c.dv << (bf ? " bf16" : " fp32");
}

TEST(PagedDecodeAttention, EveryIsaMatchesDoubleReference) {
  int ran = 0;
  for (AttentionIsa isa : {AttentionIsa::kScalar, AttentionIsa::kAvx2, AttentionIsa::kAvx512}) {
    if (!AttentionIsaSupported(isa)) continue;
    ++ran;
    for (ElemType t : {ElemType::kFloat32, ElemType::kBFloat16}) {
      for (const Case& c : {Case{3, 4, 4, 64, 64, 16, t}, Case{24, 8, 2, 64, 64, 16, t}, Case{5, 6, 1, 72, 40, 4, t},
                            Case{2, 4, 1, 288, 256, 16, t}, Case{4, 2, 2, 7, 9, 3, t}}) {
        Check(c, isa);
      }
    }
  }
  EXPECT_GE(ran, 1);
}

TEST(PagedDecodeAttention, BestIsaIsSupported) {
  EXPECT_TRUE(AttentionIsaSupported(AttentionBestIsa()));
  std::printf("best decode-attention path here: %s\n", AttentionIsaName(AttentionBestIsa()));
}

}  // namespace
}  // namespace inferd::kernels::cpu
