// bench_membw: host memory read bandwidth, the ceiling for CPU decode (every weight byte is read once per
// step). Sums a buffer of uint64 words with N threads, each over its own contiguous slice, and reports the
// best and median GB/s (1e9 bytes/s) over the iterations.
//
//   bench_membw [--bytes N] [--threads T] [--iters K]      defaults: 1 GiB, 2 threads, 10 iterations
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "read_bandwidth.h"

namespace {

struct Options {
  uint64_t bytes = uint64_t{1} << 30;
  int threads = 2;
  int iters = 10;
};

[[noreturn]] void Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--bytes N] [--threads T] [--iters K]\n", argv0);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Usage(argv[0]);
    const char* value = argv[++i];
    if (arg == "--bytes") {
      opts.bytes = std::strtoull(value, nullptr, 10);
    } else if (arg == "--threads") {
      opts.threads = std::atoi(value);
    } else if (arg == "--iters") {
      opts.iters = std::atoi(value);
    } else {
      Usage(argv[0]);
    }
  }
  if (opts.bytes < 4096 || opts.threads < 1 || opts.iters < 1) Usage(argv[0]);
  return opts;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opts = ParseArgs(argc, argv);
  const inferd::bench::ReadBandwidth bw = inferd::bench::MeasureReadBandwidth(opts.bytes, opts.threads, opts.iters);
  std::printf("bench_membw: %.2f GiB, %d threads, %d iters: best %.2f GB/s, median %.2f GB/s (checksum %llx)\n",
              static_cast<double>(opts.bytes) / (1 << 30), opts.threads, opts.iters, bw.best_gbps, bw.median_gbps,
              static_cast<unsigned long long>(bw.checksum));
  return 0;
}
