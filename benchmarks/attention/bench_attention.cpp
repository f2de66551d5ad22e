// Decode attention alone (ops::PagedDecodeAttention, the op the models call) at the bench shapes of
// ../shared/bench-models: dense-270m (16 query / 16 kv heads, head dim 64) and moe-700m's absorbed MLA
// (16 query heads over one latent kv head, dk = kv_lora_rank + rope = 288, dv = 256), every sequence with its
// own --context cached tokens in its own blocks. Enough distinct layer caches are kept resident that a pass
// reads at least 256 MB (beyond L3), as a forward reads each layer's cache once.
//
//   bench_attention [--dtype bf16|fp32] [--threads 2] [--context 512] [--batches 1,16,64] [--reps 5]
//                   [--shapes dense-270m,moe-700m]
//
// Per (shape, batch): median over --reps passes (after one untimed pass) of the time of one call per layer
// cache; printed per call, per decode step of the model (call time x the model's layers) and as KV read GB/s.
// Also the process CPU time per call (all threads; the work while scheduled, which on a loaded machine is
// steadier than wall time; a helper spinning for work counts too).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "ops/parallel.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  std::string name;
  int64_t hq, hkv, dk, dv, layers;
  bool mla;  // V is the latent prefix of the K row (one buffer), as deepseek_v2.cpp stores it
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dtype = "bf16", shapes_arg = "dense-270m,moe-700m", batches_arg = "1,16,64";
  int threads = 2, context = 512, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--dtype") {
      dtype = v;
    } else if (a == "--threads") {
      threads = std::atoi(v.c_str());
    } else if (a == "--context") {
      context = std::atoi(v.c_str());
    } else if (a == "--batches") {
      batches_arg = v;
    } else if (a == "--reps") {
      reps = std::atoi(v.c_str());
    } else if (a == "--shapes") {
      shapes_arg = v;
    } else {
      std::fprintf(stderr, "bench_attention: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (threads < 1 || context < 1 || reps < 1 || (dtype != "bf16" && dtype != "fp32")) {
    std::fprintf(stderr, "bench_attention: bad arguments\n");
    return 2;
  }
  at::set_num_threads(threads);
  inferd::ops::SetPoolThreads(threads);
  const auto type = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  const int64_t elem = dtype == "bf16" ? 2 : 4;
  const std::vector<Shape> all = {{"dense-270m", 16, 16, 64, 64, 16, false}, {"moe-700m", 16, 1, 288, 256, 12, true}};
  const int64_t bs = 16;
  std::printf("decode attention, %s, %d threads, context %d, loadavg at start: ", dtype.c_str(), threads, context);
  std::fflush(stdout);
  std::system("cut -d' ' -f1-3 /proc/loadavg");
  std::printf("%-12s %6s %8s %12s %14s %10s %12s\n", "shape", "batch", "caches", "us/call", "ms/step(model)", "KV GB/s",
              "cpu us/call");
  for (const std::string& want : Split(shapes_arg)) {
    for (const Shape& s : all) {
      if (s.name != want) continue;
      for (const std::string& bstr : Split(batches_arg)) {
        const int64_t batch = std::atoll(bstr.c_str());
        const int64_t blocks_per_seq = (context + bs - 1) / bs;
        const int64_t blocks = batch * blocks_per_seq;
        const int64_t row = s.mla ? s.dk : s.hkv * (s.dk + s.dv);  // cached values per token
        const int64_t layer_bytes = blocks * bs * row * elem;
        const int64_t caches = std::clamp<int64_t>((int64_t{256} << 20) / std::max<int64_t>(layer_bytes, 1) + 1, 1, 64);
        std::vector<at::Tensor> k, v;
        for (int64_t c = 0; c < caches; ++c) {
          if (s.mla) {
            at::Tensor kc = at::randn({blocks, bs, 1, s.dk}).to(type);
            k.push_back(kc);
            v.push_back(kc.narrow(3, 0, s.dv));
          } else {
            k.push_back(at::randn({blocks, bs, s.hkv, s.dk}).to(type));
            v.push_back(at::randn({blocks, bs, s.hkv, s.dv}).to(type));
          }
        }
        at::Tensor q = at::randn({batch, s.hq, s.dk}).to(type);
        at::Tensor tables = at::arange(blocks, at::kInt).view({batch, blocks_per_seq});
        at::Tensor lens = at::full({batch}, context, at::kInt);
        const double scale = 1.0 / std::sqrt(static_cast<double>(s.dk));
        std::vector<double> t, cpu;
        auto pass = [&] {
          const auto t0 = Clock::now();
          const double c0 = CpuSeconds();
          for (int64_t c = 0; c < caches; ++c) inferd::ops::PagedDecodeAttention(q, k[c], v[c], tables, lens, scale);
          cpu.push_back((CpuSeconds() - c0) / static_cast<double>(caches));
          t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(caches));
        };
        pass();
        t.clear();
        cpu.clear();
        for (int r = 0; r < reps; ++r) pass();
        const double call = Median(t);
        const double kv_bytes = static_cast<double>(batch * context * row * elem);
        std::printf("%-12s %6lld %8lld %12.1f %14.2f %10.2f %12.1f\n", s.name.c_str(), static_cast<long long>(batch),
                    static_cast<long long>(caches), call * 1e6, call * 1e3 * static_cast<double>(s.layers),
                    kv_bytes / call / 1e9, Median(cpu) * 1e6);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
