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

// Four independent accumulators so the loop is bound by loads, not by the add chain.
uint64_t SumSlice(const uint64_t* begin, const uint64_t* end) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  const uint64_t* p = begin;
  for (; p + 4 <= end; p += 4) {
    a += p[0];
    b += p[1];
    c += p[2];
    d += p[3];
  }
  for (; p < end; ++p) a += *p;
  return a + b + c + d;
}

// Runs fn(thread_index, first_word, last_word) on `threads` threads over `words` words.
template <typename Fn>
void ParallelSlices(int threads, uint64_t words, Fn fn) {
  std::vector<std::thread> pool;
  const uint64_t per = words / static_cast<uint64_t>(threads);
  for (int t = 0; t < threads; ++t) {
    const uint64_t first = per * static_cast<uint64_t>(t);
    const uint64_t last = t + 1 == threads ? words : first + per;
    pool.emplace_back(fn, t, first, last);
  }
  for (auto& th : pool) th.join();
}

}  // namespace

int main(int argc, char** argv) {
  const Options opts = ParseArgs(argc, argv);
  const uint64_t words = opts.bytes / sizeof(uint64_t);
  // Owned buffer; first touched by the thread that later reads each slice (NUMA-local pages).
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  uint64_t* data = buffer.get();
  ParallelSlices(opts.threads, words, [data](int, uint64_t first, uint64_t last) {
    for (uint64_t i = first; i < last; ++i) data[i] = i * 0x9E3779B97F4A7C15ull;
  });

  std::vector<double> gbps;
  std::vector<uint64_t> partial(static_cast<size_t>(opts.threads));
  uint64_t checksum = 0;
  for (int it = 0; it < opts.iters; ++it) {
    const auto start = std::chrono::steady_clock::now();
    ParallelSlices(opts.threads, words, [&](int t, uint64_t first, uint64_t last) {
      partial[static_cast<size_t>(t)] = SumSlice(data + first, data + last);
    });
    const auto stop = std::chrono::steady_clock::now();
    for (uint64_t s : partial) checksum += s;
    const double secs = std::chrono::duration<double>(stop - start).count();
    gbps.push_back(static_cast<double>(words * sizeof(uint64_t)) / secs / 1e9);
  }
  std::vector<double> sorted = gbps;
  std::sort(sorted.begin(), sorted.end());
  std::printf("bench_membw: %.2f GiB, %d threads, %d iters: best %.2f GB/s, median %.2f GB/s (checksum %llx)\n",
              static_cast<double>(words * sizeof(uint64_t)) / (1 << 30), opts.threads, opts.iters,
              sorted.back(), sorted[sorted.size() / 2], static_cast<unsigned long long>(checksum));
  return 0;
}
