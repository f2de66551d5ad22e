// kernels/cpu/paged_attention.*: every ISA path this CPU supports (forced through
// PagedDecodeAttentionRangeIsa) against a double-precision softmax(q k^T) v over the same stored K/V, and
// against the scalar path. Covers MHA, GQA and MLA-shaped groups (one kv head, 16 query heads, dk 288 /
// dv 256), head dims that are not a multiple of the vector width (masked / scalar tails), bf16 and float32
// caches scattered over non-contiguous blocks, context lengths at and around block and tile boundaries,
// and split-K (kv_splits > 1, merged by PagedDecodeMergeRange).
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
  std::vector<int32_t> lens = {};  // context lengths; empty: random in [1, 70]
};

uint16_t TruncBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}

// One problem's stored cache and queries; Run computes it on a path, Reference in double precision.
class Problem {
 public:
  explicit Problem(const Case& c) : c_(c) {
    std::mt19937 gen(static_cast<uint32_t>(c.seqs * 131 + c.dk + c.hq * 7 + c.lens.size()));
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::uniform_int_distribution<int> len(1, 70);
    ctx_.resize(static_cast<size_t>(c.seqs));
    int64_t total_blocks = 0;
    for (size_t s = 0; s < ctx_.size(); ++s) {
      ctx_[s] = c.lens.empty() ? len(gen) : c.lens[s % c.lens.size()];
      const int64_t nb = (ctx_[s] + c.block_size - 1) / c.block_size;
      max_blocks_ = std::max(max_blocks_, nb);
      total_blocks += nb;
    }
    // Blocks handed out in reverse so each sequence's blocks are not in cache order.
    tables_.assign(static_cast<size_t>(c.seqs * max_blocks_), 0);
    int32_t next = static_cast<int32_t>(total_blocks) - 1;
    for (int64_t s = 0; s < c.seqs; ++s) {
      for (int64_t b = 0; b * c.block_size < ctx_[static_cast<size_t>(s)]; ++b) tables_[s * max_blocks_ + b] = next--;
    }
    kw_ = c.hkv * c.dk;
    vw_ = c.hkv * c.dv;
    const size_t kn = static_cast<size_t>(total_blocks * c.block_size * kw_);
    const size_t vn = static_cast<size_t>(total_blocks * c.block_size * vw_);
    kf_.resize(kn);
    vf_.resize(vn);
    qf_.resize(static_cast<size_t>(c.seqs * c.hq * c.dk));
    kh_.resize(kn);
    vh_.resize(vn);
    qh_.resize(qf_.size());
    const bool bf = c.type == ElemType::kBFloat16;
    auto fill = [&](std::vector<float>& f, std::vector<uint16_t>& h) {
      for (size_t i = 0; i < f.size(); ++i) {
        const float v = dist(gen);
        h[i] = TruncBf16(v);
        f[i] = bf ? Bf16ToFloat(h[i]) : v;
      }
    };
    fill(kf_, kh_);
    fill(vf_, vh_);
    fill(qf_, qh_);
  }

  std::vector<float> Run(AttentionIsa isa, int64_t kv_splits) const {
    const bool bf = c_.type == ElemType::kBFloat16;
    PagedDecodeArgs a;
    a.q = bf ? static_cast<const void*>(qh_.data()) : qf_.data();
    a.q_type = c_.type;
    a.k_cache = bf ? static_cast<const void*>(kh_.data()) : kf_.data();
    a.v_cache = bf ? static_cast<const void*>(vh_.data()) : vf_.data();
    a.kv_type = c_.type;
    a.k_block_stride = c_.block_size * kw_;
    a.k_token_stride = kw_;
    a.k_head_stride = c_.dk;
    a.v_block_stride = c_.block_size * vw_;
    a.v_token_stride = vw_;
    a.v_head_stride = c_.dv;
    a.block_tables = tables_.data();
    a.block_table_stride = max_blocks_;
    a.context_lens = ctx_.data();
    std::vector<float> out(static_cast<size_t>(c_.seqs * c_.hq * c_.dv), -1.0f);
    a.out = out.data();
    a.num_seqs = c_.seqs;
    a.num_q_heads = c_.hq;
    a.num_kv_heads = c_.hkv;
    a.head_dim_k = c_.dk;
    a.head_dim_v = c_.dv;
    a.block_size = c_.block_size;
    a.scale = Scale();
    a.kv_splits = kv_splits;
    std::vector<float> part_out(static_cast<size_t>(c_.seqs * c_.hq * kv_splits * c_.dv), NAN);
    std::vector<float> part_ml(static_cast<size_t>(c_.seqs * c_.hq * kv_splits * 2), NAN);
    a.part_out = part_out.data();
    a.part_ml = part_ml.data();
    // Two ranges, as two pool threads would run them.
    const int64_t items = PagedDecodeItems(a);
    EXPECT_EQ(items, c_.seqs * c_.hkv * kv_splits);
    PagedDecodeAttentionRangeIsa(a, isa, 0, items / 2);
    PagedDecodeAttentionRangeIsa(a, isa, items / 2, items);
    if (kv_splits > 1) {
      const int64_t rows = c_.seqs * c_.hq;
      PagedDecodeMergeRange(a, 0, rows / 3);
      PagedDecodeMergeRange(a, rows / 3, rows);
    }
    return out;
  }

  // Largest absolute difference of `out` from softmax(q k^T * scale) v in double precision.
  double WorstError(const std::vector<float>& out) const {
    const int64_t group = c_.hq / c_.hkv;
    double worst = 0;
    for (int64_t s = 0; s < c_.seqs; ++s) {
      const int64_t n = ctx_[static_cast<size_t>(s)];
      for (int64_t h = 0; h < c_.hq; ++h) {
        const int64_t kvh = h / group;
        std::vector<double> sc(static_cast<size_t>(n));
        double m = -1e300, sum = 0;
        for (int64_t t = 0; t < n; ++t) {
          const int64_t base = tables_[s * max_blocks_ + t / c_.block_size] * c_.block_size + t % c_.block_size;
          double d = 0;
          for (int64_t i = 0; i < c_.dk; ++i)
            d += static_cast<double>(qf_[(s * c_.hq + h) * c_.dk + i]) * kf_[base * kw_ + kvh * c_.dk + i];
          sc[t] = d * Scale();
          m = std::max(m, sc[t]);
        }
        for (auto& v : sc) sum += (v = std::exp(v - m));
        for (int64_t i = 0; i < c_.dv; ++i) {
          double o = 0;
          for (int64_t t = 0; t < n; ++t) {
            const int64_t base = tables_[s * max_blocks_ + t / c_.block_size] * c_.block_size + t % c_.block_size;
            o += sc[t] / sum * vf_[base * vw_ + kvh * c_.dv + i];
          }
          worst = std::max(worst, std::fabs(o - out[(s * c_.hq + h) * c_.dv + i]));
        }
      }
    }
    return worst;
  }

  std::string Name() const {
    return "seqs " + std::to_string(c_.seqs) + " hq " + std::to_string(c_.hq) + " hkv " + std::to_string(c_.hkv) +
           " dk " + std::to_string(c_.dk) + " dv " + std::to_string(c_.dv) + " block " + std::to_string(c_.block_size) +
           (c_.type == ElemType::kBFloat16 ? " bf16" : " fp32");
  }

 private:
  float Scale() const { return 1.0f / std::sqrt(static_cast<float>(c_.dk)); }

  Case c_;
  std::vector<int32_t> ctx_, tables_;
  int64_t max_blocks_ = 0, kw_ = 0, vw_ = 0;
  std::vector<float> kf_, vf_, qf_;
  std::vector<uint16_t> kh_, vh_, qh_;
};

std::vector<AttentionIsa> Isas() {
  std::vector<AttentionIsa> v;
  for (AttentionIsa isa : {AttentionIsa::kScalar, AttentionIsa::kAvx2, AttentionIsa::kAvx512}) {
    if (AttentionIsaSupported(isa)) v.push_back(isa);
  }
  return v;
}

TEST(PagedDecodeAttention, EveryIsaMatchesDoubleReference) {
  for (AttentionIsa isa : Isas()) {
    for (ElemType t : {ElemType::kFloat32, ElemType::kBFloat16}) {
      for (const Case& c : {Case{3, 4, 4, 64, 64, 16, t}, Case{24, 8, 2, 64, 64, 16, t}, Case{5, 6, 1, 72, 40, 4, t},
                            Case{2, 4, 1, 288, 256, 16, t}, Case{4, 2, 2, 7, 9, 3, t}, Case{3, 16, 1, 288, 256, 16, t},
                            Case{2, 12, 4, 33, 17, 5, t}}) {
        const Problem p(c);
        // float32 accumulation over <= 70 tokens of N(0, 1) values: well under 1e-4 absolute.
        EXPECT_LT(p.WorstError(p.Run(isa, 1)), 1e-4) << AttentionIsaName(isa) << " " << p.Name();
      }
    }
  }
  EXPECT_GE(Isas().size(), 1u);
}

// Long contexts whose lengths sit on and around block (16) and tile (8 / 16 tokens) boundaries, with and
// without split-K, including splits that leave trailing ranges empty (1-token contexts with 8 splits).
TEST(PagedDecodeAttention, LongContextsAndSplitsMatchDoubleReference) {
  const std::vector<int32_t> lens = {1, 15, 16, 17, 255, 256, 257, 301, 513};
  for (AttentionIsa isa : Isas()) {
    for (ElemType t : {ElemType::kFloat32, ElemType::kBFloat16}) {
      for (const Case& c : {Case{9, 16, 16, 64, 64, 16, t, lens}, Case{9, 8, 2, 64, 64, 16, t, lens},
                            Case{9, 16, 1, 288, 256, 16, t, lens}, Case{9, 3, 1, 23, 19, 7, t, lens}}) {
        const Problem p(c);
        for (int64_t splits : {1, 3, 8}) {
          EXPECT_LT(p.WorstError(p.Run(isa, splits)), 1e-4)
              << AttentionIsaName(isa) << " splits " << splits << " " << p.Name();
        }
      }
    }
  }
}

// Each SIMD path against the scalar path on the same inputs (same algorithm, different summation trees).
TEST(PagedDecodeAttention, SimdPathsMatchScalarPath) {
  const std::vector<int32_t> lens = {3, 16, 33, 200};
  for (AttentionIsa isa : Isas()) {
    if (isa == AttentionIsa::kScalar) continue;
    for (ElemType t : {ElemType::kFloat32, ElemType::kBFloat16}) {
      for (const Case& c : {Case{4, 16, 16, 64, 64, 16, t, lens}, Case{4, 32, 4, 128, 128, 16, t, lens},
                            Case{4, 16, 1, 576, 512, 16, t, lens}, Case{4, 5, 5, 13, 11, 16, t, lens}}) {
        const Problem p(c);
        for (int64_t splits : {1, 4}) {
          const std::vector<float> want = p.Run(AttentionIsa::kScalar, splits), got = p.Run(isa, splits);
          double worst = 0;
          for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(double{want[i]} - got[i]));
          EXPECT_LT(worst, 2e-5) << AttentionIsaName(isa) << " splits " << splits << " " << p.Name();
        }
      }
    }
  }
}

TEST(PagedDecodeAttention, SplitsKeepThreadsBusyOnlyWhenItemsAreFew) {
  // 2 threads want 8 items: one MLA sequence of 512 tokens gets 8 splits of 64 tokens.
  EXPECT_EQ(PagedDecodeSplits(1, 1, 512, 2), 8);
  EXPECT_EQ(PagedDecodeSplits(1, 1, 200, 2), 3);  // at least 64 tokens per split
  EXPECT_EQ(PagedDecodeSplits(4, 1, 4096, 2), 2);
  EXPECT_EQ(PagedDecodeSplits(1, 1, 100, 2), 1);
  EXPECT_EQ(PagedDecodeSplits(16, 1, 4096, 2), 1);  // enough sequences
  EXPECT_EQ(PagedDecodeSplits(1, 16, 4096, 2), 1);  // enough kv heads
  EXPECT_EQ(PagedDecodeSplits(1, 1, 4096, 1), 1);   // one thread
  EXPECT_EQ(PagedDecodeSplitTokens(512, 8), 64);
  EXPECT_EQ(PagedDecodeSplitTokens(17, 3), 16);
  EXPECT_EQ(PagedDecodeSplitTokens(513, 8), 80);
}

TEST(PagedDecodeAttention, BestIsaIsSupported) {
  EXPECT_TRUE(AttentionIsaSupported(AttentionBestIsa()));
  std::printf("best decode-attention path here: %s\n", AttentionIsaName(AttentionBestIsa()));
}

}  // namespace
}  // namespace inferd::kernels::cpu
