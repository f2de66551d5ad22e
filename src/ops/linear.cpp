#include "ops/linear.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemv.h"
#include "ops/parallel.h"

namespace inferd::ops {
namespace {

kernels::cpu::GemvType GemvTypeOf(at::ScalarType t) {
  return t == at::kBFloat16 ? kernels::cpu::GemvType::kBFloat16 : kernels::cpu::GemvType::kFloat32;
}

bool GemvEligible(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!x.device().is_cpu() || x.dim() != 2 || w.dim() != 2 || x.size(0) > kGemvMaxRows || x.size(0) == 0) return false;
  const auto t = x.scalar_type();
  if (t != w.scalar_type() || (b.defined() && b.scalar_type() != t)) return false;
  if (t != at::kBFloat16 && t != at::kFloat) return false;
  if (!kernels::cpu::GemvFast(GemvTypeOf(t))) return false;
  return w.is_contiguous() && (!b.defined() || b.is_contiguous());
}

// Runs every product of `args` (each GemvLinear's contract, x already packed where the ISA packs) in one
// pool call: each product's output columns are cut into chunks of ~64 KiB of weights (they stay in L2 while
// every register block of rows reads them; a multiple of 4 rows), and the chunks of all products are claimed
// from one list, so a group of small products costs one pool hand-off instead of one each. Products marked
// in `amx` run the GEMM's AMX weights-in-place path instead (x packed here; a chunk is one 32-column group).
void RunGemvs(const std::vector<kernels::cpu::GemvArgs>& args, int64_t elem, const std::vector<bool>& amx = {}) {
  struct Chunk {
    int32_t product;
    int64_t begin, end;
  };
  thread_local std::vector<Chunk> chunks;
  thread_local std::vector<uint32_t> amx_x;
  thread_local std::vector<int64_t> amx_offset;
  chunks.clear();
  amx_offset.assign(args.size(), -1);
  int64_t amx_slots = 0;
  for (size_t p = 0; p < args.size(); ++p) {
    if (p < amx.size() && amx[p] && args[p].m > 0) {
      amx_offset[p] = amx_slots;
      amx_slots += kernels::cpu::GemmAmxStreamXSize(args[p]);
    }
  }
  if (amx_x.size() < static_cast<size_t>(amx_slots)) amx_x.resize(static_cast<size_t>(amx_slots));
  for (size_t p = 0; p < args.size(); ++p) {
    const kernels::cpu::GemvArgs& a = args[p];
    if (a.m == 0) continue;
    if (amx_offset[p] >= 0) {
      kernels::cpu::GemmAmxStreamPackX(a, amx_x.data() + amx_offset[p]);
      for (int64_t g = 0; g < kernels::cpu::GemmAmxStreamGroups(a); ++g)
        chunks.push_back({static_cast<int32_t>(p), g, g + 1});
      continue;
    }
    int64_t rows = std::max<int64_t>(4, (int64_t{64} << 10) / std::max<int64_t>(1, a.k * elem));
    rows = (rows + 3) / 4 * 4;
    for (int64_t b = 0; b < a.n; b += rows) chunks.push_back({static_cast<int32_t>(p), b, std::min(a.n, b + rows)});
  }
  const Chunk* list = chunks.data();
  const uint32_t* xs = amx_x.data();
  const int64_t* offsets = amx_offset.data();
  ParallelChunks(static_cast<int64_t>(chunks.size()), [&](int64_t c) {
    const size_t p = static_cast<size_t>(list[c].product);
    if (offsets[p] >= 0) {
      kernels::cpu::GemmAmxStreamRange(args[p], xs + offsets[p], list[c].begin, list[c].end);
    } else {
      kernels::cpu::GemvRange(args[p], list[c].begin, list[c].end);
    }
  });
}

kernels::cpu::GemvArgs ArgsFor(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& y) {
  kernels::cpu::GemvArgs a;
  a.x = x.data_ptr();
  a.ldx = x.stride(0);
  a.w = w.data_ptr();
  a.type = GemvTypeOf(x.scalar_type());
  a.y = y.data_ptr();
  a.ldy = y.stride(0);
  a.bias = b.defined() ? b.data_ptr() : nullptr;
  a.m = x.size(0);
  a.n = w.size(0);
  a.k = w.size(1);
  return a;
}

// x converted once for all chunks of the call: [m, padded k] float32 in a per-thread buffer (`slot` of them,
// one per product of a call) that lives until this thread's next call. Returns the packed row stride (0: the
// ISA reads x as it is).
int64_t PackX(kernels::cpu::GemvArgs& a, size_t slot = 0) {
  const kernels::cpu::GemvIsa isa = kernels::cpu::GemvBestIsa(a.type);
  const int64_t size = kernels::cpu::GemvPackedXSize(a, isa);
  if (size == 0) return 0;
  thread_local std::vector<std::vector<float>> packed;
  if (packed.size() <= slot) packed.resize(slot + 1);
  std::vector<float>& buffer = packed[slot];
  if (buffer.size() < static_cast<size_t>(size)) buffer.resize(static_cast<size_t>(size));
  kernels::cpu::GemvPackX(a, isa, buffer.data());
  a.x_packed = buffer.data();
  return size / a.m;
}

// Segments of a SegmentedProduct as GEMV arguments into y (x packed into buffer `slot`), with the AMX flag of
// each (SegmentedGemvLinear's contract).
void AppendSegments(const SegmentedProduct& p, const at::Tensor& x, const at::Tensor& y, size_t slot,
                    std::vector<kernels::cpu::GemvArgs>& args, std::vector<bool>& amx) {
  const std::vector<at::Tensor>& w = p.w;
  const int64_t weights = static_cast<int64_t>(w.size());
  TORCH_CHECK(weights > 0 && w[0].dim() == 2 && x.dim() == 2 && x.size(1) == w[0].size(1),
              "SegmentedGemvLinear: shapes");
  TORCH_CHECK(p.index.empty() ? p.rows.size() == w.size() : p.index.size() == p.rows.size(),
              "SegmentedGemvLinear: one row count per weight");
  if (x.size(0) == 0) return;
  const int64_t n = w[0].size(0);
  kernels::cpu::GemvArgs all = ArgsFor(x, w[0], {}, y);
  const int64_t kp = PackX(all, slot);
  const int64_t elem = static_cast<int64_t>(x.element_size());
  int64_t offset = 0;
  for (size_t s = 0; s < p.rows.size(); ++s) {
    if (p.rows[s] == 0) continue;
    kernels::cpu::GemvArgs a = all;
    a.x = static_cast<const char*>(x.data_ptr()) + offset * x.stride(0) * elem;
    const int64_t i = p.index.empty() ? static_cast<int64_t>(s) : p.index[s];
    TORCH_CHECK(i >= 0 && i < weights, "SegmentedGemvLinear: weight index ", i, " out of range");
    const at::Tensor& wi = w[static_cast<size_t>(i)];
    TORCH_CHECK(wi.sizes() == w[0].sizes() && wi.is_contiguous() && wi.scalar_type() == x.scalar_type() &&
                    wi.device() == x.device(),
                "SegmentedGemvLinear: weight ", i, " is not a contiguous ", w[0].sizes(), " ", x.scalar_type(),
                " CPU tensor");
    a.w = wi.data_ptr();
    a.y = static_cast<char*>(y.data_ptr()) + offset * n * elem;
    a.m = p.rows[s];
    if (kp > 0) a.x_packed = all.x_packed + offset * kp;
    args.push_back(a);
    // Segments of kGemmMinRowsAmx or more rows run on AMX where ops::Linear would (GemmAmxStreamTakes).
    amx.push_back(a.m >= kGemmMinRowsAmx && kernels::cpu::GemmAmxStreamTakes(a));
    offset += p.rows[s];
  }
  TORCH_CHECK(offset == x.size(0), "SegmentedGemvLinear: row counts do not sum to x's rows");
}

}  // namespace

at::Tensor GemvLinear(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b) {
  TORCH_CHECK(x_in.dim() == 2 && w.dim() == 2 && x_in.size(1) == w.size(1), "GemvLinear: shapes");
  TORCH_CHECK(w.is_contiguous(), "GemvLinear: weight must be contiguous");
  const at::Tensor x = x_in.stride(1) == 1 ? x_in : x_in.contiguous();
  at::Tensor y = at::empty({x.size(0), w.size(0)}, x.options());
  if (x.size(0) == 0) return y;
  std::vector<kernels::cpu::GemvArgs> args{ArgsFor(x, w, b, y)};
  PackX(args[0]);
  RunGemvs(args, static_cast<int64_t>(x.element_size()));
  return y;
}

std::vector<at::Tensor> SegmentedGemvLinears(const std::vector<SegmentedProduct>& products) {
  std::vector<at::Tensor> ys;
  std::vector<kernels::cpu::GemvArgs> args;
  std::vector<bool> amx;
  for (size_t p = 0; p < products.size(); ++p) {
    const at::Tensor& x_in = products[p].x;
    const at::Tensor x = x_in.dim() == 2 && x_in.stride(1) != 1 ? x_in.contiguous() : x_in;
    TORCH_CHECK(x.dim() == 2 && !products[p].w.empty() && products[p].w[0].dim() == 2, "SegmentedGemvLinear: shapes");
    TORCH_CHECK(x.scalar_type() == products[0].x.scalar_type(), "SegmentedGemvLinears: one dtype");
    ys.push_back(at::empty({x.size(0), products[p].w[0].size(0)}, x.options()));
    AppendSegments(products[p], x, ys.back(), p, args, amx);
  }
  if (!args.empty()) RunGemvs(args, static_cast<int64_t>(products[0].x.element_size()), amx);
  return ys;
}

at::Tensor SegmentedGemvLinear(const at::Tensor& x, const std::vector<at::Tensor>& w, const std::vector<int64_t>& rows,
                               const std::vector<int64_t>& index) {
  return SegmentedGemvLinears({SegmentedProduct{x, w, rows, index}})[0];
}

bool SegmentedMatchesLinear(const at::Tensor& x, const at::Tensor& w) {
  if (!SegmentedGemvEligible(x, {w})) return false;
  switch (LinearPathFor(x, w, {})) {
    case LinearPath::kGemv:
      return true;
    case LinearPath::kGemm:
      return x.size(0) >= kGemmMinRowsAmx && x.scalar_type() == at::kBFloat16 &&
             kernels::cpu::GemmAmxStreamTakes(ArgsFor(x, w, {}, x));
    case LinearPath::kAtLinear:
      break;
  }
  return false;
}

bool SegmentedGemvEligible(const at::Tensor& x, const std::vector<at::Tensor>& w) {
  if (x.dim() != 2 || x.size(0) == 0 || w.empty() || !GemvEligible(x.narrow(0, 0, 1), w[0], {})) return false;
  return std::all_of(w.begin() + 1, w.end(), [&](const at::Tensor& wi) {
    return wi.sizes() == w[0].sizes() && wi.is_contiguous() && wi.scalar_type() == w[0].scalar_type() &&
           wi.device() == w[0].device();
  });
}

at::Tensor HeadLinear(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 3 && w.dim() == 3 && x.size(1) == w.size(0) && x.size(2) == w.size(2), "HeadLinear: shapes");
  if (!GemvEligible(x.select(1, 0), w[0], {}) || x.stride(2) != 1) {
    return at::bmm(x.transpose(0, 1), w.transpose(1, 2)).transpose(0, 1);
  }
  const int64_t m = x.size(0), heads = x.size(1), n = w.size(1), k = w.size(2);
  at::Tensor y = at::empty({m, heads, n}, x.options());
  const int64_t elem = static_cast<int64_t>(x.element_size());
  ParallelChunks(heads, [&](int64_t h) {
    kernels::cpu::GemvArgs a;
    a.x = static_cast<const char*>(x.data_ptr()) + h * x.stride(1) * elem;
    a.ldx = x.stride(0);
    a.w = static_cast<const char*>(w.data_ptr()) + h * n * k * elem;
    a.type = GemvTypeOf(x.scalar_type());
    a.y = static_cast<char*>(y.data_ptr()) + h * n * elem;
    a.ldy = heads * n;
    a.m = m;
    a.n = n;
    a.k = k;
    kernels::cpu::GemvRange(a, 0, n);
  });
  return y;
}

std::string CpuIsaEnvError() {
  return kernels::cpu::GemvIsaEnvError();
}

LinearPath LinearPathFor(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (GemvEligible(x, w, b)) {
    const kernels::cpu::GemvIsa isa = kernels::cpu::GemmBestIsa();
    const bool avx512_tile = isa == kernels::cpu::GemvIsa::kAvx512 || isa == kernels::cpu::GemvIsa::kAvx512Bf16 ||
                             isa == kernels::cpu::GemvIsa::kAmxBf16;
    const bool amx = isa == kernels::cpu::GemvIsa::kAmxBf16 && x.scalar_type() == at::kBFloat16;
    const bool gemm = x.size(0) >= (amx ? kGemmMinRowsAmx : kGemmMinRows) && avx512_tile;
    return gemm ? LinearPath::kGemm : LinearPath::kGemv;
  }
  return GemmEligible(x, w, b) ? LinearPath::kGemm : LinearPath::kAtLinear;
}

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  switch (LinearPathFor(x, w, b)) {
    case LinearPath::kGemv:
      return GemvLinear(x, w, b);
    case LinearPath::kGemm:
      return GemmLinear(x, w, b);
    case LinearPath::kAtLinear:
      break;
  }
  return at::linear(x, w, b);
}

}  // namespace inferd::ops
