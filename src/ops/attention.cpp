#include "ops/attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rowwise.h"
#include "ops/cuda_ops.h"
#include "ops/paged_decode_args.h"
#include "ops/parallel.h"

namespace inferd::ops {
namespace {

void CheckShapes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_start) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "attention: q, k, v must be 3-D");
  TORCH_CHECK(q.size(2) == k.size(2), "attention: q/k head dims differ");
  TORCH_CHECK(k.size(0) == v.size(0) && k.size(1) == v.size(1), "attention: k/v shapes differ");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "attention: q heads not a multiple of kv heads");
  TORCH_CHECK(k.size(0) >= q_start + q.size(0), "attention: fewer keys than q_start + num_q");
}

}  // namespace

at::Tensor TiledCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_start,
                                double scale, int64_t q_tile, int64_t k_tile) {
  CheckShapes(q, k, v, q_start);
  const int64_t nq = q.size(0), hq = q.size(1), dk = q.size(2);
  const int64_t hkv = k.size(1), dv = v.size(2);
  const int64_t group = hq / hkv;
  const auto f32 = q.options().dtype(at::kFloat);
  // [hkv, group, nq, dk]
  at::Tensor qh = q.to(at::kFloat).view({nq, hkv, group, dk}).permute({1, 2, 0, 3});
  at::Tensor kh = k.to(at::kFloat).permute({1, 0, 2});  // [hkv, nk, dk]
  at::Tensor vh = v.to(at::kFloat).permute({1, 0, 2});  // [hkv, nk, dv]
  at::Tensor out = at::empty({hkv, group, nq, dv}, f32);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  for (int64_t q0 = 0; q0 < nq; q0 += q_tile) {
    const int64_t qn = std::min(q_tile, nq - q0);
    at::Tensor qt = qh.narrow(2, q0, qn).reshape({hkv, group * qn, dk});
    at::Tensor row_pos = (at::arange(qn, q.options().dtype(at::kLong)) + (q_start + q0)).repeat({group});
    at::Tensor m = at::full({hkv, group * qn, 1}, neg_inf, f32);
    at::Tensor l = at::zeros({hkv, group * qn, 1}, f32);
    at::Tensor acc = at::zeros({hkv, group * qn, dv}, f32);
    const int64_t k_end = q_start + q0 + qn;  // keys beyond the tile's last query are never visible
    for (int64_t k0 = 0; k0 < k_end; k0 += k_tile) {
      const int64_t kn = std::min(k_tile, k_end - k0);
      at::Tensor s = at::bmm(qt, kh.narrow(1, k0, kn).transpose(1, 2)) * scale;  // [hkv, group*qn, kn]
      if (k0 + kn - 1 > q_start + q0) {
        at::Tensor key_pos = at::arange(k0, k0 + kn, q.options().dtype(at::kLong));
        s.masked_fill_(key_pos.unsqueeze(0) > row_pos.unsqueeze(1), neg_inf);
      }
      at::Tensor m_new = at::maximum(m, std::get<0>(s.max(-1, /*keepdim=*/true)));
      at::Tensor p = at::exp(s - m_new);
      at::Tensor corr = at::exp(m - m_new);
      l = l * corr + p.sum(-1, /*keepdim=*/true);
      acc = acc * corr + at::bmm(p, vh.narrow(1, k0, kn));
      m = m_new;
    }
    out.narrow(2, q0, qn).copy_((acc / l).view({hkv, group, qn, dv}));
  }
  return out.permute({2, 0, 1, 3}).reshape({nq, hq, dv}).to(q.scalar_type());
}

at::Tensor PrefillAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_start,
                            double scale) {
  CheckShapes(q, k, v, q_start);
  const bool whole = q_start == 0 && k.size(0) == q.size(0);
  if (whole && q.size(2) == v.size(2)) {
    // SDPA's CPU flash kernel is tiled; is_causal is top-left aligned, which is right only for whole prompts.
    // Heads are expanded here so the flash kernel is eligible (its GQA support varies by version).
    const int64_t group = q.size(1) / k.size(1);
    at::Tensor kk = group == 1 ? k : k.repeat_interleave(group, 1);
    at::Tensor vv = group == 1 ? v : v.repeat_interleave(group, 1);
    at::Tensor out =
        at::scaled_dot_product_attention(q.transpose(0, 1).unsqueeze(0), kk.transpose(0, 1).unsqueeze(0),
                                         vv.transpose(0, 1).unsqueeze(0), {}, 0.0, /*is_causal=*/true, scale);
    return out.squeeze(0).transpose(0, 1).contiguous();
  }
  return TiledCausalAttention(q, k, v, q_start, scale);
}

at::Tensor NaiveCausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_start,
                                double scale) {
  CheckShapes(q, k, v, q_start);
  const int64_t group = q.size(1) / k.size(1);
  at::Tensor kk = k.to(at::kFloat).repeat_interleave(group, 1).permute({1, 0, 2});
  at::Tensor vv = v.to(at::kFloat).repeat_interleave(group, 1).permute({1, 0, 2});
  at::Tensor qq = q.to(at::kFloat).permute({1, 0, 2});
  at::Tensor s = at::bmm(qq, kk.transpose(1, 2)) * scale;
  at::Tensor qpos = at::arange(q.size(0), q.options().dtype(at::kLong)) + q_start;
  at::Tensor kpos = at::arange(k.size(0), q.options().dtype(at::kLong));
  s.masked_fill_(kpos.unsqueeze(0) > qpos.unsqueeze(1), -std::numeric_limits<double>::infinity());
  return at::bmm(s.softmax(-1), vv).permute({1, 0, 2}).to(q.scalar_type());
}

void WriteCacheRows(at::Tensor& cache_rows, const at::Tensor& slots, const at::Tensor& rows) {
  TORCH_CHECK(rows.dim() == cache_rows.dim() && rows.size(0) == slots.numel() &&
                  rows.sizes().slice(1) == cache_rows.sizes().slice(1),
              "WriteCacheRows: rows ", rows.sizes(), " do not match cache rows ", cache_rows.sizes(), " and ",
              slots.numel(), " slots");
  const int64_t t = rows.size(0);
  if (t == 0) return;
  const bool raw = cache_rows.device().is_cpu() && rows.device().is_cpu() && slots.device().is_cpu() &&
                   slots.scalar_type() == at::kLong && rows.scalar_type() == cache_rows.scalar_type() &&
                   rows[0].is_contiguous() && cache_rows[0].is_contiguous();
  if (!raw) {
    cache_rows.index_copy_(0, slots, rows.to(cache_rows.scalar_type()));
    return;
  }
  const at::Tensor s = slots.contiguous();
  const int64_t* sp = s.data_ptr<int64_t>();
  const int64_t n = cache_rows.size(0);
  for (int64_t i = 0; i < t; ++i) {
    TORCH_CHECK(sp[i] >= 0 && sp[i] < n, "WriteCacheRows: slot ", sp[i], " of token ", i, " out of range [0, ", n, ")");
  }
  const int64_t es = static_cast<int64_t>(rows.element_size());
  kernels::cpu::CopyRowsToSlots(rows.data_ptr(), rows.stride(0) * es, cache_rows.data_ptr(), cache_rows.stride(0) * es,
                                sp, t, rows[0].numel() * es);
}

at::Tensor PagedDecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                const at::Tensor& block_tables, const at::Tensor& context_lens, double scale) {
  using kernels::cpu::ElemType;
  if (q.is_cuda()) return CudaPagedDecodeAttention(q, k_cache, v_cache, block_tables, context_lens, scale);
  TORCH_CHECK(q.dim() == 3 && k_cache.dim() == 4 && v_cache.dim() == 4, "PagedDecodeAttention: bad ranks");
  TORCH_CHECK(k_cache.stride(3) == 1 && v_cache.stride(3) == 1, "PagedDecodeAttention: cache last dim not contiguous");
  TORCH_CHECK(k_cache.scalar_type() == v_cache.scalar_type(), "PagedDecodeAttention: k/v dtypes differ");
  auto elem = [](at::ScalarType t) {
    TORCH_CHECK(t == at::kFloat || t == at::kBFloat16, "PagedDecodeAttention: dtype must be float32 or bfloat16");
    return t == at::kFloat ? ElemType::kFloat32 : ElemType::kBFloat16;
  };
  at::Tensor qc = q.contiguous();
  at::Tensor bt = block_tables.to(at::kInt).contiguous();
  at::Tensor cl = context_lens.to(at::kInt).contiguous();
  at::Tensor out = at::empty({q.size(0), q.size(1), v_cache.size(3)}, q.options().dtype(at::kFloat));
  kernels::cpu::PagedDecodeArgs args;
  FillPagedDecodeArgs(qc, k_cache, v_cache, bt, cl, out, scale, args);
  args.q_type = elem(qc.scalar_type());
  args.kv_type = elem(k_cache.scalar_type());
  TORCH_CHECK(args.num_q_heads % args.num_kv_heads == 0, "PagedDecodeAttention: q heads not a multiple of kv heads");
  TORCH_CHECK(k_cache.size(3) == args.head_dim_k, "PagedDecodeAttention: q/k head dims differ");
  // Split-K when (sequence, kv head) items are too few to keep the pool busy (MLA's one latent head at small
  // batches); the partials are merged by their log-sum-exp weights.
  int64_t max_ctx = 0;
  for (int64_t i = 0; i < args.num_seqs; ++i) max_ctx = std::max<int64_t>(max_ctx, args.context_lens[i]);
  args.kv_splits = kernels::cpu::PagedDecodeSplits(args.num_seqs, args.num_kv_heads, max_ctx, PoolThreads());
  at::Tensor part_out, part_ml;
  if (args.kv_splits > 1) {
    part_out = at::empty({args.num_seqs * args.num_q_heads, args.kv_splits, args.head_dim_v}, out.options());
    part_ml = at::empty({args.num_seqs * args.num_q_heads, args.kv_splits, 2}, out.options());
    args.part_out = part_out.data_ptr<float>();
    args.part_ml = part_ml.data_ptr<float>();
  }
  ParallelChunks(kernels::cpu::PagedDecodeItems(args),
                 [&](int64_t item) { kernels::cpu::PagedDecodeAttentionRange(args, item, item + 1); });
  if (args.kv_splits > 1) {
    ParallelChunks(args.num_seqs, [&](int64_t seq) {
      kernels::cpu::PagedDecodeMergeRange(args, seq * args.num_q_heads, (seq + 1) * args.num_q_heads);
    });
  }
  return out.to(q.scalar_type());
}

}  // namespace inferd::ops
