#include "ops/cuda_ops.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda/moe_routing.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rope.h"
#include "ops/paged_decode_args.h"

namespace inferd::ops {
namespace {

using kernels::DType;

DType KernelType(const at::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DType::kF32;
    case at::kBFloat16:
      return DType::kBF16;
    case at::kHalf:
      return DType::kF16;
    default:
      break;
  }
  TORCH_CHECK(false, op, ": dtype ", t.scalar_type(), " is not float32, bfloat16 or float16");
  return DType::kF32;
}

void CheckOnDevice(const at::Tensor& t, const at::Tensor& like, const char* op, const char* name) {
  TORCH_CHECK(t.device() == like.device(), op, ": ", name, " is on ", t.device(), ", expected ", like.device());
}

void Check(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

cudaStream_t Stream(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

}  // namespace

at::Tensor CudaRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const char* op = "RmsNorm(cuda)";
  c10::cuda::CUDAGuard guard(x.device());
  CheckOnDevice(weight, x, op, "weight");
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), op, ": weight dtype differs from x");
  const int64_t hidden = x.size(-1);
  TORCH_CHECK(weight.numel() == hidden, op, ": weight has ", weight.numel(), " values, x rows have ", hidden);
  at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor out = at::empty_like(xc);
  Check(kernels::RmsNorm(xc.data_ptr(), wc.data_ptr(), out.data_ptr(), xc.numel() / hidden, hidden,
                         static_cast<float>(eps), KernelType(x, op), Stream(x)),
        op);
  return out;
}

at::Tensor CudaAddRmsNorm(at::Tensor& residual, const at::Tensor& x, const at::Tensor& weight, double eps) {
  const char* op = "AddRmsNorm(cuda)";
  c10::cuda::CUDAGuard guard(residual.device());
  CheckOnDevice(x, residual, op, "x");
  CheckOnDevice(weight, residual, op, "weight");
  TORCH_CHECK(residual.is_contiguous(), op, ": residual must be contiguous (it is updated in place)");
  TORCH_CHECK(x.sizes() == residual.sizes(), op, ": x and residual shapes differ");
  TORCH_CHECK(x.scalar_type() == residual.scalar_type() && weight.scalar_type() == residual.scalar_type(), op,
              ": x, residual and weight dtypes differ");
  const int64_t hidden = residual.size(-1);
  TORCH_CHECK(weight.numel() == hidden, op, ": weight has ", weight.numel(), " values, rows have ", hidden);
  at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor out = at::empty_like(residual);
  Check(kernels::FusedAddRmsNorm(xc.data_ptr(), residual.data_ptr(), wc.data_ptr(), out.data_ptr(),
                                 residual.numel() / hidden, hidden, static_cast<float>(eps), KernelType(x, op),
                                 Stream(x)),
        op);
  return out;
}

at::Tensor CudaSiluAndMul(const at::Tensor& gate_up) {
  const char* op = "SiluAndMul(cuda)";
  c10::cuda::CUDAGuard guard(gate_up.device());
  TORCH_CHECK(gate_up.size(-1) % 2 == 0, op, ": last dim ", gate_up.size(-1), " is odd");
  const int64_t inter = gate_up.size(-1) / 2;
  at::Tensor gc = gate_up.contiguous();
  std::vector<int64_t> shape = gc.sizes().vec();
  shape.back() = inter;
  at::Tensor out = at::empty(shape, gc.options());
  if (inter == 0) return out;
  Check(kernels::SiluAndMul(gc.data_ptr(), out.data_ptr(), gc.numel() / (2 * inter), inter, KernelType(gc, op),
                            Stream(gc)),
        op);
  return out;
}

at::Tensor CudaApplyRope(const at::Tensor& x, const RopeCosSin& cs, bool interleaved) {
  const char* op = "ApplyRope(cuda)";
  c10::cuda::CUDAGuard guard(x.device());
  TORCH_CHECK(x.dim() == 3, op, ": x must be [num_tokens, heads, dim]");
  const int64_t t = x.size(0), heads = x.size(1), dim = x.size(2);
  TORCH_CHECK(dim % 2 == 0 && cs.cos.size(-1) == dim / 2, op, ": rotary dim ", dim, " does not match table ",
              2 * cs.cos.size(-1));
  CheckOnDevice(cs.cos, x, op, "cos");
  at::Tensor xs = x.stride(2) == 1 ? x : x.contiguous();
  at::Tensor cos = cs.cos.to(at::kFloat).reshape({-1, dim / 2}).contiguous();
  at::Tensor sin = cs.sin.to(at::kFloat).reshape({-1, dim / 2}).contiguous();
  TORCH_CHECK(cos.size(0) == t && sin.size(0) == t, op, ": cos/sin rows ", cos.size(0), " != tokens ", t);
  at::Tensor out = at::empty({t, heads, dim}, x.options());
  kernels::RopeArgs a;
  a.x = xs.data_ptr();
  a.token_stride = xs.stride(0);
  a.head_stride = xs.stride(1);
  a.cos = cos.data_ptr<float>();
  a.sin = sin.data_ptr<float>();
  a.out = out.data_ptr();
  a.num_tokens = t;
  a.heads = heads;
  a.dim = dim;
  a.interleaved = interleaved;
  a.dtype = KernelType(x, op);
  Check(kernels::Rope(a, Stream(x)), op);
  return out;
}

at::Tensor CudaPagedDecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                    const at::Tensor& block_tables, const at::Tensor& context_lens, double scale) {
  const char* op = "PagedDecodeAttention(cuda)";
  c10::cuda::CUDAGuard guard(q.device());
  TORCH_CHECK(q.dim() == 3 && k_cache.dim() == 4 && v_cache.dim() == 4, op, ": bad ranks");
  TORCH_CHECK(k_cache.stride(3) == 1 && v_cache.stride(3) == 1, op, ": cache last dim not contiguous");
  TORCH_CHECK(q.scalar_type() == k_cache.scalar_type() && v_cache.scalar_type() == k_cache.scalar_type(), op,
              ": q, k_cache and v_cache dtypes differ");
  CheckOnDevice(k_cache, q, op, "k_cache");
  CheckOnDevice(v_cache, q, op, "v_cache");
  at::Tensor qc = q.contiguous();
  at::Tensor bt = block_tables.to(q.device(), at::kInt).contiguous();
  at::Tensor cl = context_lens.to(q.device(), at::kInt).contiguous();
  TORCH_CHECK(bt.dim() == 2 && bt.size(0) == q.size(0) && cl.numel() == q.size(0), op,
              ": block_tables / context_lens do not have one row per sequence");
  at::Tensor out = at::empty({q.size(0), q.size(1), v_cache.size(3)}, q.options().dtype(at::kFloat));
  kernels::PagedDecodeArgs a;
  FillPagedDecodeArgs(qc, k_cache, v_cache, bt, cl, out, scale, a);
  a.dtype = KernelType(q, op);
  TORCH_CHECK(a.num_q_heads % a.num_kv_heads == 0, op, ": q heads not a multiple of kv heads");
  TORCH_CHECK(k_cache.size(3) == a.head_dim_k, op, ": q/k head dims differ");
  TORCH_CHECK(a.head_dim_k <= kernels::kPagedMaxHeadDim && a.head_dim_v <= kernels::kPagedMaxHeadDim, op,
              ": head dims above ", kernels::kPagedMaxHeadDim);
  Check(kernels::PagedDecodeAttention(a, Stream(q)), op);
  return out.to(q.scalar_type());
}

std::pair<at::Tensor, at::Tensor> CudaMoeRoute(const at::Tensor& router_logits, const at::Tensor& bias,
                                               const MoeRoutingParams& p) {
  const char* op = "MoeRoute(cuda)";
  c10::cuda::CUDAGuard guard(router_logits.device());
  TORCH_CHECK(router_logits.scalar_type() == at::kFloat && router_logits.dim() == 2, op,
              ": router logits must be [num_tokens, num_experts] float32");
  at::Tensor logits = router_logits.contiguous();
  const int64_t t = logits.size(0), e = logits.size(1);
  TORCH_CHECK(e <= kernels::kMoeMaxExperts, op, ": ", e, " experts, at most ", kernels::kMoeMaxExperts);
  TORCH_CHECK(p.top_k >= 1 && p.top_k <= e, op, ": top_k ", p.top_k, " outside [1, ", e, "]");
  at::Tensor b;
  kernels::MoeRouteArgs a;
  a.select = p.method == MoeTopkMethod::kGreedy               ? kernels::MoeSelectKind::kGreedy
             : p.method == MoeTopkMethod::kGroupLimitedGreedy ? kernels::MoeSelectKind::kGroupLimited
                                                              : kernels::MoeSelectKind::kNoauxTc;
  if (a.select != kernels::MoeSelectKind::kGreedy) {
    TORCH_CHECK(p.n_group > 0 && e % p.n_group == 0, op, ": n_group must divide the expert count");
    TORCH_CHECK(p.topk_group >= 1 && p.topk_group <= p.n_group, op, ": topk_group outside [1, n_group]");
    TORCH_CHECK(p.top_k <= p.topk_group * (e / p.n_group), op, ": top_k above the experts in topk_group groups");
  }
  if (a.select == kernels::MoeSelectKind::kNoauxTc) {
    TORCH_CHECK(e / p.n_group >= 2, op, ": noaux_tc needs at least 2 experts per group");
    if (bias.defined()) {
      CheckOnDevice(bias, logits, op, "bias");
      TORCH_CHECK(bias.numel() == e, op, ": bias has ", bias.numel(), " values, expected ", e);
      b = bias.to(at::kFloat).contiguous();
    }
  }
  at::Tensor ids = at::empty({t, p.top_k}, logits.options().dtype(at::kLong));
  at::Tensor weights = at::empty({t, p.top_k}, logits.options());
  a.logits = logits.data_ptr<float>();
  a.bias = b.defined() ? b.data_ptr<float>() : nullptr;
  a.topk_ids = ids.data_ptr<int64_t>();
  a.topk_weights = weights.data_ptr<float>();
  a.num_tokens = t;
  a.num_experts = e;
  a.top_k = p.top_k;
  a.n_group = p.n_group;
  a.topk_group = p.topk_group;
  a.scoring = p.scoring == MoeScoring::kSoftmax ? kernels::MoeScoringKind::kSoftmax : kernels::MoeScoringKind::kSigmoid;
  a.norm_topk_prob = p.norm_topk_prob;
  a.routed_scaling_factor = static_cast<float>(p.routed_scaling_factor);
  Check(kernels::MoeRoute(a, Stream(logits)), op);
  return {ids, weights};
}

std::pair<at::Tensor, at::Tensor> CudaGroupByExpert(const at::Tensor& flat_ids, int64_t num_experts) {
  const char* op = "GroupByExpert(cuda)";
  c10::cuda::CUDAGuard guard(flat_ids.device());
  TORCH_CHECK(num_experts > 0, op, ": num_experts must be positive");
  at::Tensor ids = flat_ids.reshape({-1}).to(at::kLong).contiguous();
  const auto opts = ids.options();
  at::Tensor counts = at::empty({num_experts}, opts);
  at::Tensor offsets = at::empty({num_experts + 1}, opts);
  at::Tensor order = at::empty({ids.numel()}, opts);
  Check(kernels::GroupByExpert(ids.data_ptr<int64_t>(), ids.numel(), num_experts, counts.data_ptr<int64_t>(),
                               offsets.data_ptr<int64_t>(), order.data_ptr<int64_t>(), Stream(ids)),
        op);
  return {order, counts};
}

}  // namespace inferd::ops
