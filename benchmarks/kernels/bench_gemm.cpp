// GEMM kernel microbenchmark at prefill shapes: kernels/cpu/gemm.* (on the ops pool, as ops::Linear runs it
// for more than kGemvMaxRows rows) against at::linear (oneDNN/MKL, OpenMP team of --threads), and
// optionally the GEMV kernel (ops::GemvLinear), on the products of dense-270m and moe-700m
// (../shared/bench-models/*.json) at --rows rows. --layers distinct copies of every weight, all resident,
// so a pass reads them from memory as a forward does (4 layers: 100-200 MB, beyond the 48 MB L3).
// The machine's peak multiply-add rate (peak_fma.h, 1 and --threads threads) is measured before and after
// in the same process; the kernel's GFLOP/s is reported as a fraction of it.
//
//   bench_gemm [--dtype bf16,fp32] [--threads 2] [--reps 3] [--rows 128,512] [--models dense-270m,moe-700m]
//              [--layers 4] [--mc N] [--kc N] [--nc N] [--mr N] [--gemv 1] [--linear 0] [--peak 0] [--json out.json]
//              [--isa avx2|avx512|avx512bf16]
//
// --isa forces both kernels' path (GemmIsa; the GEMV as ops::GemvLinear runs it: x packed once, ~64 KiB
// column chunks on the ops pool, through GemvRangeIsa), so that a CPU's slower paths can be measured on it.
//
// Per product: median over --reps passes (after one untimed pass) of the summed time of its --layers
// calls; the total is the median of the whole passes. GFLOP/s = 2 m n k / s, by wall time and per CPU
// second of the process (user + system, all threads: the rate while scheduled, which is what a loaded
// machine's wall time hides; spin-waiting at a barrier counts as CPU time). The fraction of peak is the
// per-CPU-second rate over the one-thread peak kernel's per-CPU-second rate, and wall over wall; the peak kernel
// is vdpbf16ps for bf16 products on the avx512bf16 path, float32 FMA otherwise.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "benchmarks/kernels/peak_fma.h"
#include "kernels/cpu/gemm.h"
#include "ops/linear.h"
#include "ops/parallel.h"

namespace {

namespace cpu = inferd::kernels::cpu;

struct Product {
  std::string name;
  int64_t n, k;
};

// Prefill products per layer (routed experts listed as if one expert got all m rows: the shape an expert
// with many rows runs; the router gate is float32 and left out).
std::vector<Product> ModelProducts(const std::string& model) {
  if (model == "dense-270m")
    return {{"qkv", 3072, 1024}, {"o", 1024, 1024}, {"gate_up", 5632, 1024}, {"down", 1024, 2816}};
  if (model == "moe-700m")
    return {{"q", 1536, 1024},
            {"kv_a", 288, 1024},
            {"kv_b", 2048, 256},
            {"o", 1024, 1024},
            {"shared gate_up", 2048, 1024},
            {"shared down", 1024, 1024},
            {"expert gate_up", 1024, 1024},
            {"expert down", 1024, 512}};
  return {};
}

std::vector<std::string> Split(const std::string& v) {
  std::vector<std::string> out;
  for (size_t p = 0; p < v.size();) {
    const size_t q = v.find(',', p);
    out.push_back(v.substr(p, q - p));
    p = q == std::string::npos ? v.size() : q + 1;
  }
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string LoadAvg() {
  std::string s;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof(buf), f)) s = buf;
    std::fclose(f);
  }
  return s.substr(0, s.find(' ', s.find(' ', s.find(' ') + 1) + 1));
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

cpu::GemvArgs ArgsOf(const at::Tensor& x, const at::Tensor& w, const at::Tensor& y) {
  cpu::GemvArgs a;
  a.x = x.data_ptr();
  a.ldx = x.stride(0);
  a.w = w.data_ptr();
  a.type = x.scalar_type() == at::kBFloat16 ? cpu::GemvType::kBFloat16 : cpu::GemvType::kFloat32;
  a.y = y.data_ptr();
  a.ldy = w.size(0);
  a.m = x.size(0);
  a.n = w.size(0);
  a.k = w.size(1);
  return a;
}

at::Tensor GemmCall(const at::Tensor& x, const at::Tensor& w, const cpu::GemmBlocking& blocking, cpu::GemvIsa isa) {
  at::Tensor y = at::empty({x.size(0), w.size(0)}, x.options());
  cpu::GemmIsa(ArgsOf(x, w, y), isa, inferd::ops::ParallelChunks, blocking);
  return y;
}

// ops::GemvLinear's scheme on a forced path: x packed once, chunks of about 64 KiB of weights (a multiple of
// 4 rows) claimed from the pool.
at::Tensor GemvCall(const at::Tensor& x, const at::Tensor& w, cpu::GemvIsa isa) {
  at::Tensor y = at::empty({x.size(0), w.size(0)}, x.options());
  cpu::GemvArgs a = ArgsOf(x, w, y);
  thread_local std::vector<float> packed;
  packed.resize(static_cast<size_t>(cpu::GemvPackedXSize(a, isa)));
  if (!packed.empty()) {
    cpu::GemvPackX(a, isa, packed.data());
    a.x_packed = packed.data();
  }
  int64_t rows = std::max<int64_t>(4, (int64_t{64} << 10) / (a.k * static_cast<int64_t>(x.element_size())));
  rows = (rows + 3) / 4 * 4;
  inferd::ops::ParallelChunks((a.n + rows - 1) / rows,
                              [&](int64_t c) { cpu::GemvRangeIsa(a, isa, c * rows, std::min(a.n, (c + 1) * rows)); });
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dtypes = {"bf16", "fp32"}, models = {"dense-270m", "moe-700m"};
  std::vector<int64_t> rows = {128, 512};
  int threads = 2, reps = 3, layers = 4;
  bool gemv = false, linear = true, peak = true;
  cpu::GemmBlocking blocking;
  std::string json_path;
  bool forced = false;
  cpu::GemvIsa isa = cpu::GemmBestIsa();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--dtype") {
      dtypes = Split(v);
    } else if (f == "--models") {
      models = Split(v);
    } else if (f == "--rows") {
      rows.clear();
      for (const auto& s : Split(v)) rows.push_back(std::stoll(s));
    } else if (f == "--threads") {
      threads = std::stoi(v);
    } else if (f == "--reps") {
      reps = std::stoi(v);
    } else if (f == "--layers") {
      layers = std::stoi(v);
    } else if (f == "--mc") {
      blocking.mc = std::stoll(v);
    } else if (f == "--kc") {
      blocking.kc = std::stoll(v);
    } else if (f == "--nc") {
      blocking.nc = std::stoll(v);
    } else if (f == "--mr") {
      blocking.mr = std::stoll(v);
    } else if (f == "--isa") {
      forced = true;
      if (v == "avx2") {
        isa = cpu::GemvIsa::kAvx2;
      } else if (v == "avx512") {
        isa = cpu::GemvIsa::kAvx512;
      } else if (v == "avx512bf16") {
        isa = cpu::GemvIsa::kAvx512Bf16;
      } else if (v == "amxbf16") {
        isa = cpu::GemvIsa::kAmxBf16;
      } else {
        std::fprintf(stderr, "--isa: avx2, avx512, avx512bf16 or amxbf16, not %s\n", v.c_str());
        return 2;
      }
      if (!cpu::GemmIsaSupported(isa)) {
        std::fprintf(stderr, "--isa %s: not supported by this CPU\n", v.c_str());
        return 2;
      }
    } else if (f == "--gemv") {
      gemv = v != "0";
    } else if (f == "--peak") {
      peak = v != "0";
    } else if (f == "--linear") {
      linear = v != "0";
    } else if (f == "--json") {
      json_path = v;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  for (const auto& d : dtypes)
    if (d != "bf16" && d != "fp32") {
      std::fprintf(stderr, "--dtype: bf16 and/or fp32, not %s\n", d.c_str());
      return 2;
    }
  for (const auto& m : models)
    if (ModelProducts(m).empty()) {
      std::fprintf(stderr, "--models: dense-270m and/or moe-700m, not %s\n", m.c_str());
      return 2;
    }
  at::set_num_threads(threads);
  inferd::ops::SetPoolThreads(threads);
  const std::vector<int> peak_threads = threads == 1 ? std::vector<int>{1} : std::vector<int>{1, threads};

  std::printf(
      "# bench_gemm: isa %s, %d threads, %d layers per product, median of %d; blocking mc %lld kc %lld nc %lld "
      "mr %lld (0 = default)\n",
      cpu::GemvIsaName(cpu::GemmBestIsa()), threads, layers, reps, static_cast<long long>(blocking.mc),
      static_cast<long long>(blocking.kc), static_cast<long long>(blocking.nc), static_cast<long long>(blocking.mr));
  const auto peak0 = peak ? inferd::bench::MeasurePeak(peak_threads) : std::vector<inferd::bench::PeakRow>{};
  std::string json = "{\"peak_before\":[";
  std::printf(
      "\n## peak multiply-add rate (before)\n| kernel | threads | GFLOP/s | GFLOP per CPU s |\n| --- | --- | --- | --- "
      "|\n");
  for (size_t i = 0; i < peak0.size(); ++i) {
    std::printf("| %s | %d | %.1f | %.1f |\n", peak0[i].kernel.c_str(), peak0[i].threads, peak0[i].gflops,
                peak0[i].gflops_cpu);
    json += std::string(i ? "," : "") + "{\"kernel\":\"" + peak0[i].kernel +
            "\",\"threads\":" + std::to_string(peak0[i].threads) + ",\"gflops\":" + std::to_string(peak0[i].gflops) +
            "}";
  }
  json += "],\"runs\":[";
  bool first_run = true;
  std::vector<std::pair<std::string, std::pair<double, double>>>
      totals;  // "model dtype m" -> gemm GFLOP/s wall, per CPU s

  at::manual_seed(0);
  for (const auto& model : models) {
    const std::vector<Product> products = ModelProducts(model);
    for (const auto& dname : dtypes) {
      const auto dtype = dname == "bf16" ? at::kBFloat16 : at::kFloat;
      std::vector<std::vector<at::Tensor>> ws(products.size());  // [product][layer]
      for (size_t p = 0; p < products.size(); ++p)
        for (int l = 0; l < layers; ++l) ws[p].push_back((at::randn({products[p].n, products[p].k}) * 0.02).to(dtype));
      for (int64_t m : rows) {
        std::map<int64_t, at::Tensor> xs;
        for (const auto& p : products)
          if (!xs.count(p.k)) xs[p.k] = at::randn({m, p.k}).to(dtype);
        // impl 0: gemm kernel, 1: at::linear, 2: GemvLinear. Per-product and whole-pass wall and CPU seconds.
        struct Times {
          std::vector<double> wall, cpu;
          double wall_total = 0, cpu_total = 0;
        };
        auto pass = [&](int impl) {
          Times t;
          t.wall.assign(products.size(), 0.0);
          t.cpu.assign(products.size(), 0.0);
          const double w0 = Now(), c0 = inferd::bench::ProcessCpuSeconds();
          for (int l = 0; l < layers; ++l) {
            for (size_t p = 0; p < products.size(); ++p) {
              const double ws0 = Now(), cs0 = inferd::bench::ProcessCpuSeconds();
              const at::Tensor& x = xs[products[p].k];
              const at::Tensor& w = ws[p][static_cast<size_t>(l)];
              at::Tensor y = impl == 0   ? GemmCall(x, w, blocking, isa)
                             : impl == 1 ? at::linear(x, w)
                             : forced    ? GemvCall(x, w, isa)
                                         : inferd::ops::GemvLinear(x, w);
              t.wall[p] += Now() - ws0;
              t.cpu[p] += inferd::bench::ProcessCpuSeconds() - cs0;
            }
          }
          t.wall_total = Now() - w0;
          t.cpu_total = inferd::bench::ProcessCpuSeconds() - c0;
          return t;
        };
        auto measure = [&](int impl) {
          pass(impl);  // untimed
          std::vector<Times> runs;
          for (int r = 0; r < reps; ++r) runs.push_back(pass(impl));
          Times med;
          for (size_t p = 0; p < products.size(); ++p) {
            std::vector<double> w, c;
            for (const auto& r : runs) {
              w.push_back(r.wall[p]);
              c.push_back(r.cpu[p]);
            }
            med.wall.push_back(Median(w));
            med.cpu.push_back(Median(c));
          }
          std::vector<double> w, c;
          for (const auto& r : runs) {
            w.push_back(r.wall_total);
            c.push_back(r.cpu_total);
          }
          med.wall_total = Median(w);
          med.cpu_total = Median(c);
          return med;
        };
        const Times g = measure(0);
        const Times li = linear ? measure(1) : Times{};
        const Times gv = gemv ? measure(2) : Times{};
        std::printf(
            "\n## %s %s, m = %lld (loadavg %s)\n| product | n x k | gemm GFLOP/s | at::linear GFLOP/s | at::linear "
            "time "
            "/ gemm time | gemm GFLOP per CPU s | at::linear GFLOP per CPU s |%s\n| --- | --- | --- | --- | --- | --- "
            "| "
            "--- |%s\n",
            model.c_str(), dname.c_str(), static_cast<long long>(m), LoadAvg().c_str(),
            gemv ? " gemv GFLOP/s | gemv GFLOP per CPU s | gemv time / gemm time |" : "",
            gemv ? " --- | --- | --- |" : "");
        double flop_total = 0;
        auto rate = [](double flop, double s) { return s > 0 ? flop / s / 1e9 : 0.0; };
        for (size_t p = 0; p < products.size(); ++p) {
          const double flop = 2.0 * static_cast<double>(m * products[p].n * products[p].k) * layers;
          flop_total += flop;
          std::printf("| %s | %lld x %lld | %.1f | %.1f | %.2f | %.1f | %.1f |", products[p].name.c_str(),
                      static_cast<long long>(products[p].n), static_cast<long long>(products[p].k),
                      rate(flop, g.wall[p]), linear ? rate(flop, li.wall[p]) : 0.0,
                      linear ? li.wall[p] / g.wall[p] : 0.0, rate(flop, g.cpu[p]),
                      linear ? rate(flop, li.cpu[p]) : 0.0);
          if (gemv)
            std::printf(" %.1f | %.1f | %.2f |", rate(flop, gv.wall[p]), rate(flop, gv.cpu[p]), gv.wall[p] / g.wall[p]);
          std::printf("\n");
        }
        std::printf("| **pass** | | **%.1f** | **%.1f** | **%.2f** | **%.1f** | **%.1f** |",
                    rate(flop_total, g.wall_total), linear ? rate(flop_total, li.wall_total) : 0.0,
                    linear ? li.wall_total / g.wall_total : 0.0, rate(flop_total, g.cpu_total),
                    linear ? rate(flop_total, li.cpu_total) : 0.0);
        if (gemv)
          std::printf(" %.1f | %.1f | **%.2f** |", rate(flop_total, gv.wall_total), rate(flop_total, gv.cpu_total),
                      gv.wall_total / g.wall_total);
        std::printf("\n");
        totals.push_back({model + " " + dname + " m=" + std::to_string(m),
                          {rate(flop_total, g.wall_total), rate(flop_total, g.cpu_total)}});
        json += std::string(first_run ? "" : ",") + "{\"model\":\"" + model + "\",\"dtype\":\"" + dname +
                "\",\"m\":" + std::to_string(m) + ",\"flop\":" + std::to_string(flop_total) +
                ",\"gemm_s\":" + std::to_string(g.wall_total) + ",\"gemm_cpu_s\":" + std::to_string(g.cpu_total) +
                ",\"linear_s\":" + std::to_string(li.wall_total) + ",\"linear_cpu_s\":" + std::to_string(li.cpu_total) +
                ",\"gemv_s\":" + std::to_string(gv.wall_total) + ",\"gemv_cpu_s\":" + std::to_string(gv.cpu_total) +
                "}";
        first_run = false;
      }
    }
  }
  const auto peak1 = peak ? inferd::bench::MeasurePeak(peak_threads) : std::vector<inferd::bench::PeakRow>{};
  json += "],\"peak_after\":[";
  std::printf(
      "\n## peak multiply-add rate (after)\n| kernel | threads | GFLOP/s | GFLOP per CPU s |\n| --- | --- | --- | --- "
      "|\n");
  // threads-thread wall peak and 1-thread per-CPU-second peak of float32 FMA and of vdpbf16ps.
  double fma_peak = 0, fma_peak_cpu = 0, dp_peak = 0, dp_peak_cpu = 0;
  // bf16 products on the kAvx512Bf16 path multiply with vdpbf16ps, on kAmxBf16 with tdpbf16ps: their peak is
  // that instruction's.
  const std::string dp_kernel = isa == cpu::GemvIsa::kAmxBf16 ? "tdpbf16ps" : "vdpbf16ps";
  for (size_t i = 0; i < peak1.size(); ++i) {
    std::printf("| %s | %d | %.1f | %.1f |\n", peak1[i].kernel.c_str(), peak1[i].threads, peak1[i].gflops,
                peak1[i].gflops_cpu);
    json += std::string(i ? "," : "") + "{\"kernel\":\"" + peak1[i].kernel +
            "\",\"threads\":" + std::to_string(peak1[i].threads) + ",\"gflops\":" + std::to_string(peak1[i].gflops) +
            ",\"gflops_cpu\":" + std::to_string(peak1[i].gflops_cpu) + "}";
    const bool zmm =
        peak1[i].kernel == "fma-zmm" || (!GemvIsaSupported(cpu::GemvIsa::kAvx512) && peak1[i].kernel == "fma-ymm");
    const bool dp = peak1[i].kernel == dp_kernel;
    if (!zmm && !dp) continue;
    const double wall = (peak1[i].gflops + peak0[i].gflops) / 2, cpu_s = (peak1[i].gflops_cpu + peak0[i].gflops_cpu) / 2;
    if (peak1[i].threads == threads) (dp ? dp_peak : fma_peak) = wall;
    if (peak1[i].threads == 1) (dp ? dp_peak_cpu : fma_peak_cpu) = cpu_s;
  }
  json += "]}";
  const bool bf16_dp = (isa == cpu::GemvIsa::kAvx512Bf16 || isa == cpu::GemvIsa::kAmxBf16) && dp_peak > 0;
  std::printf(
      "\n## gemm pass / peak of the instruction its path multiplies with (mean of before/after; float32 FMA: %d "
      "threads %.1f GFLOP/s wall, one core %.1f GFLOP per CPU s; %s: %.1f, %.1f; bf16 rows against %s)\n",
      threads, fma_peak, fma_peak_cpu, dp_kernel.c_str(), dp_peak, dp_peak_cpu, bf16_dp ? dp_kernel.c_str() : "float32 FMA");
  std::printf(
      "| run | gemm GFLOP/s | / wall peak | gemm GFLOP per CPU s | / per-core peak |\n| --- | --- | --- | --- | --- "
      "|\n");
  for (const auto& t : totals) {
    const bool dp = bf16_dp && t.first.find(" bf16 ") != std::string::npos;
    std::printf("| %s | %.1f | %.2f | %.1f | %.2f |\n", t.first.c_str(), t.second.first,
                t.second.first / (dp ? dp_peak : fma_peak), t.second.second,
                t.second.second / (dp ? dp_peak_cpu : fma_peak_cpu));
  }
  if (!json_path.empty()) {
    if (FILE* f = std::fopen(json_path.c_str(), "w")) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }
  return 0;
}
