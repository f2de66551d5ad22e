// Host read bandwidth: threads sum disjoint slices of one buffer (bench_membw and bench_model share it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace inferd::bench {

// Four independent accumulators so the loop is bound by loads, not by the add chain.
inline uint64_t SumSlice(const uint64_t* begin, const uint64_t* end) {
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

struct ReadBandwidth {
  double best_gbps = 0;
  double median_gbps = 0;
  uint64_t checksum = 0;  // keeps the sums observable
};

// Reads a `bytes` buffer `iters` times with `threads` threads; GB/s per pass, best and median.
inline ReadBandwidth MeasureReadBandwidth(uint64_t bytes, int threads, int iters) {
  const uint64_t words = bytes / sizeof(uint64_t);
  // Owned buffer; first touched by the thread that later reads each slice (NUMA-local pages).
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  uint64_t* data = buffer.get();
  ParallelSlices(threads, words, [data](int, uint64_t first, uint64_t last) {
    for (uint64_t i = first; i < last; ++i) data[i] = i * 0x9E3779B97F4A7C15ull;
  });
  std::vector<double> gbps;
  std::vector<uint64_t> partial(static_cast<size_t>(threads));
  ReadBandwidth bw;
  for (int it = 0; it < iters; ++it) {
    const auto start = std::chrono::steady_clock::now();
    ParallelSlices(threads, words, [&](int t, uint64_t first, uint64_t last) {
      partial[static_cast<size_t>(t)] = SumSlice(data + first, data + last);
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (uint64_t s : partial) bw.checksum += s;
    gbps.push_back(static_cast<double>(words * sizeof(uint64_t)) / secs / 1e9);
  }
  std::sort(gbps.begin(), gbps.end());
  bw.best_gbps = gbps.back();
  bw.median_gbps = gbps[gbps.size() / 2];
  return bw;
}

}  // namespace inferd::bench
