// GEMV kernel microbenchmark on dense-270m's decode matrices (16 layers: qkv 3072x1024, o 1024x1024,
// gate_up 5632x1024, down 1024x2816; plus lm_head 32256x1024), all resident and together 8x larger than L3,
// so every pass reads its weights from memory.
//
//   bench_gemv [--dtype bf16|fp32] [--threads 2] [--reps 5] [--rows 1,4,16,64] [--json out.json]
//
// Part 1 (single thread, m = 1): read GB/s of each ISA path and weight_rows (W rows streamed together)
//   against the read bandwidth (bench_membw's loop, 1 thread) measured before and after, in the same process.
// Part 2 (--threads, on the ops pool): for each row count, one pass over all matrices through ops::Linear's
//   GEMV (GemvLinear) and through at::linear (oneDNN, OpenMP team of --threads), GFLOP/s and the ratio.
// Part 3 (--threads, on the ops pool): the best ISA path at each row count with weight_rows 1 / 2 / 4, read
//   GB/s and GFLOP/s, against bench_membw's loop on --threads threads.
// Medians of --reps passes after one untimed pass.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/model/read_bandwidth.h"
#include "kernels/cpu/gemv.h"
#include "ops/linear.h"
#include "ops/parallel.h"

namespace {

using inferd::kernels::cpu::GemvIsa;

struct Opts {
  std::string dtype = "bf16";
  int threads = 2;
  int reps = 5;
  std::vector<int64_t> rows = {1, 4, 16, 64};
  std::string json;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename Fn>
double MedianSeconds(int reps, Fn fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto s = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  return Median(t);
}

// y = x w^T over all of x's rows (x [m, k] contiguous, w [n, k], y [m, n]).
inferd::kernels::cpu::GemvArgs ArgsFor(const at::Tensor& x, const at::Tensor& w, const at::Tensor& y,
                                       inferd::kernels::cpu::GemvType type) {
  inferd::kernels::cpu::GemvArgs a;
  a.x = x.data_ptr();
  a.ldx = x.size(1);
  a.w = w.data_ptr();
  a.type = type;
  a.y = y.data_ptr();
  a.ldy = w.size(0);
  a.m = x.size(0);
  a.n = w.size(0);
  a.k = w.size(1);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--dtype") {
      o.dtype = v;
    } else if (f == "--threads") {
      o.threads = std::stoi(v);
    } else if (f == "--reps") {
      o.reps = std::stoi(v);
    } else if (f == "--json") {
      o.json = v;
    } else if (f == "--rows") {
      o.rows.clear();
      size_t p = 0;
      while (p < v.size()) {
        const size_t q = v.find(',', p);
        o.rows.push_back(std::stoll(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (o.dtype != "bf16" && o.dtype != "fp32") {
    std::fprintf(stderr, "--dtype: bf16 or fp32\n");
    return 2;
  }
  const auto dtype = o.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  const auto gtype =
      o.dtype == "bf16" ? inferd::kernels::cpu::GemvType::kBFloat16 : inferd::kernels::cpu::GemvType::kFloat32;
  at::manual_seed(0);
  std::vector<at::Tensor> ws;
  for (int l = 0; l < 16; ++l) {
    for (auto nk : {std::pair<int64_t, int64_t>{3072, 1024}, {1024, 1024}, {5632, 1024}, {1024, 2816}})
      ws.push_back((at::randn({nk.first, nk.second}) * 0.02).to(dtype));
  }
  ws.push_back((at::randn({32256, 1024}) * 0.02).to(dtype));
  double bytes = 0, macs = 0;
  for (const auto& w : ws) {
    bytes += static_cast<double>(w.numel() * w.element_size());
    macs += static_cast<double>(w.numel());
  }
  std::printf("# bench_gemv %s: %zu matrices, %.3f GB of weights; %s\n", o.dtype.c_str(), ws.size(), bytes / 1e9,
              inferd::kernels::cpu::GemvIsaName(inferd::kernels::cpu::GemvBestIsa(gtype)));

  std::string json = "{\"dtype\":\"" + o.dtype + "\",\"weight_gb\":" + std::to_string(bytes / 1e9) + ",\"single\":[";
  // Part 1: raw kernel, one thread, m = 1.
  const auto bw0 = inferd::bench::MeasureReadBandwidth(uint64_t{1} << 30, 1, 10);
  std::printf("\n## single thread, batch 1 (read bandwidth before: %.2f GB/s median)\n", bw0.median_gbps);
  std::printf("| isa | weight_rows | GB/s | / bandwidth |\n| --- | --- | --- | --- |\n");
  struct Single {
    GemvIsa isa;
    int wr;
    double gbps;
  };
  std::vector<Single> singles;
  for (GemvIsa isa : {GemvIsa::kAvx2, GemvIsa::kAvx512, GemvIsa::kAvx512Bf16}) {
    if (!inferd::kernels::cpu::GemvIsaSupported(isa)) continue;
    for (int wr : {1, 2, 4}) {
      at::Tensor x = (at::randn({1, 2816})).to(dtype);
      std::vector<at::Tensor> ys;
      for (const auto& w : ws) ys.push_back(at::empty({1, w.size(0)}, x.options()));
      const double s = MedianSeconds(o.reps, [&] {
        for (size_t i = 0; i < ws.size(); ++i) {
          const inferd::kernels::cpu::GemvArgs a = ArgsFor(x, ws[i], ys[i], gtype);
          inferd::kernels::cpu::GemvRangeIsa(a, isa, 0, a.n, wr);
        }
      });
      singles.push_back({isa, wr, bytes / s / 1e9});
    }
  }
  const auto bw1 = inferd::bench::MeasureReadBandwidth(uint64_t{1} << 30, 1, 10);
  const double bw = (bw0.median_gbps + bw1.median_gbps) / 2;
  for (size_t i = 0; i < singles.size(); ++i) {
    const auto& s = singles[i];
    std::printf("| %s | %d | %.2f | %.2f |\n", inferd::kernels::cpu::GemvIsaName(s.isa), s.wr, s.gbps, s.gbps / bw);
    json += std::string(i ? "," : "") + "{\"isa\":\"" + inferd::kernels::cpu::GemvIsaName(s.isa) +
            "\",\"weight_rows\":" + std::to_string(s.wr) + ",\"gbps\":" + std::to_string(s.gbps) + "}";
  }
  std::printf("read bandwidth after: %.2f GB/s median (mean of before/after %.2f)\n", bw1.median_gbps, bw);
  json += "],\"bandwidth_1t_gbps\":" + std::to_string(bw) + ",\"batched\":[";

  // Part 2: GemvLinear vs at::linear on `threads` threads.
  at::set_num_threads(o.threads);
  inferd::ops::SetPoolThreads(o.threads);
  std::printf("\n## %d threads: GemvLinear (ops pool) vs at::linear (OpenMP), one pass over all matrices\n", o.threads);
  std::printf("| rows | gemv ms | at::linear ms | gemv GFLOP/s | at::linear GFLOP/s | gemv / at::linear speed |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  for (size_t ri = 0; ri < o.rows.size(); ++ri) {
    const int64_t m = o.rows[ri];
    at::Tensor x1 = at::randn({m, 1024}).to(dtype), x2 = at::randn({m, 2816}).to(dtype);
    auto pass = [&](bool gemv) {
      for (const auto& w : ws) {
        const at::Tensor& x = w.size(1) == 1024 ? x1 : x2;
        at::Tensor y = gemv ? inferd::ops::GemvLinear(x, w) : at::linear(x, w);
      }
    };
    const double tg = MedianSeconds(o.reps, [&] { pass(true); });
    const double tl = MedianSeconds(o.reps, [&] { pass(false); });
    const double flop = 2 * macs * static_cast<double>(m);
    std::printf("| %lld | %.2f | %.2f | %.1f | %.1f | %.2f |\n", static_cast<long long>(m), tg * 1e3, tl * 1e3,
                flop / tg / 1e9, flop / tl / 1e9, tl / tg);
    json += std::string(ri ? "," : "") + "{\"rows\":" + std::to_string(m) + ",\"gemv_s\":" + std::to_string(tg) +
            ",\"linear_s\":" + std::to_string(tl) + "}";
  }
  json += "],\"weight_rows_batched\":[";

  // Part 3: the best ISA at every row count with each weight_rows, on the pool (x packed once, chunks of
  // ~64 KiB of weights as ops::GemvLinear cuts them), and 2-thread read bandwidth for the batch-1 rows.
  const auto bw2 = inferd::bench::MeasureReadBandwidth(uint64_t{1} << 30, o.threads, 10);
  const GemvIsa best = inferd::kernels::cpu::GemvBestIsa(gtype);
  std::printf("\n## %d threads, %s, by weight_rows (read bandwidth %d threads: %.2f GB/s median)\n", o.threads,
              inferd::kernels::cpu::GemvIsaName(best), o.threads, bw2.median_gbps);
  std::printf("| rows | weight_rows | ms | GB/s | GFLOP/s |\n| --- | --- | --- | --- | --- |\n");
  bool first = true;
  for (const int64_t m : o.rows) {
    at::Tensor x1 = at::randn({m, 1024}).to(dtype), x2 = at::randn({m, 2816}).to(dtype);
    for (int wr : {1, 2, 4}) {
      std::vector<at::Tensor> ys;
      for (const auto& w : ws) ys.push_back(at::empty({m, w.size(0)}, x1.options()));
      std::vector<float> packed;
      const double t = MedianSeconds(o.reps, [&] {
        for (size_t i = 0; i < ws.size(); ++i) {
          const at::Tensor& x = ws[i].size(1) == 1024 ? x1 : x2;
          inferd::kernels::cpu::GemvArgs a = ArgsFor(x, ws[i], ys[i], gtype);
          packed.resize(static_cast<size_t>(inferd::kernels::cpu::GemvPackedXSize(a, best)));
          if (!packed.empty()) {
            inferd::kernels::cpu::GemvPackX(a, best, packed.data());
            a.x_packed = packed.data();
          }
          const int64_t chunk = std::max<int64_t>(4, (int64_t{64} << 10) / (a.k * ws[i].element_size())) / 4 * 4;
          inferd::ops::ParallelChunks((a.n + chunk - 1) / chunk, [&](int64_t c) {
            inferd::kernels::cpu::GemvRangeIsa(a, best, c * chunk, std::min(a.n, (c + 1) * chunk), wr);
          });
        }
      });
      std::printf("| %lld | %d | %.2f | %.2f | %.1f |\n", static_cast<long long>(m), wr, t * 1e3, bytes / t / 1e9,
                  2 * macs * static_cast<double>(m) / t / 1e9);
      json += std::string(first ? "" : ",") + "{\"rows\":" + std::to_string(m) +
              ",\"weight_rows\":" + std::to_string(wr) + ",\"s\":" + std::to_string(t) + "}";
      first = false;
    }
  }
  json += "],\"bandwidth_threads_gbps\":" + std::to_string(bw2.median_gbps) + "}";
  if (!o.json.empty()) {
    FILE* f = std::fopen(o.json.c_str(), "w");
    if (f) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }
  return 0;
}
