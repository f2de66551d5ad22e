// The CPU's peak multiply-add rate (peak_fma.h): float32 FMA (zmm, ymm) and, where present, vdpbf16ps, on
// 1 and 2 threads (or --threads list).
//
//   bench_peak [--threads 1,2] [--iters 50000000] [--reps 3]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmarks/kernels/peak_fma.h"

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  int64_t iters = 50'000'000;
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--threads") {
      threads.clear();
      for (size_t p = 0; p < v.size();) {
        const size_t q = v.find(',', p);
        threads.push_back(std::stoi(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else if (f == "--iters") {
      iters = std::stoll(v);
    } else if (f == "--reps") {
      reps = std::stoi(v);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  std::printf("| kernel | threads | GFLOP/s (wall, median of %d) | GFLOP per CPU second |\n| --- | --- | --- | --- |\n",
              reps);
  for (const auto& r : inferd::bench::MeasurePeak(threads, iters, reps))
    std::printf("| %s | %d | %.1f | %.1f |\n", r.kernel.c_str(), r.threads, r.gflops, r.gflops_cpu);
  return 0;
}
