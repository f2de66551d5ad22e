// Peak multiply-add rate of this CPU, measured by a kernel of independent register-resident chains (no
// memory traffic): float32 FMA on zmm (AVX-512F) or ymm (AVX2 + FMA), and vdpbf16ps (AVX512-BF16) where
// the CPU has it, and AMX's tdpbf16ps where the CPU and kernel allow it (four 16 x 16 float32 tiles, each
// instruction 16 x 16 x 32 multiply-adds). Each of `threads` std::threads runs the chains for `iters` iterations;
// GFLOP/s counts a multiply-add as 2 flops (vdpbf16ps: 32 multiply-adds per instruction, FMA zmm: 16, ymm: 8).
#pragma once

// GCC 12 flags the _mm*_undefined_*() placeholders inside the AVX-512 reduce intrinsics: false positives.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/gemv.h"

namespace inferd::bench {

// Chains per kernel: more than FMA latency (4 cycles) x FMA ports (2), so the ports never wait.
constexpr int kPeakChains = 24;

__attribute__((target("avx512f"))) inline float PeakFma512(int64_t iters) {
  __m512 a[kPeakChains];
  for (int j = 0; j < kPeakChains; ++j) a[j] = _mm512_set1_ps(1.0f + 0.01f * static_cast<float>(j));
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);  // fixed point 1: no overflow
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 32
    for (int j = 0; j < kPeakChains; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
  }
  __m512 s = a[0];
  for (int j = 1; j < kPeakChains; ++j) s = _mm512_add_ps(s, a[j]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) inline float PeakFma256(int64_t iters) {
  constexpr int kChains = 12;  // of 16 ymm
  __m256 a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = _mm256_set1_ps(1.0f + 0.01f * static_cast<float>(j));
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 32
    for (int j = 0; j < kChains; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
  }
  __m256 s = a[0];
  for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, a[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f,avx512bf16"))) inline float PeakDpbf16(int64_t iters) {
  __m512 a[kPeakChains];
  for (int j = 0; j < kPeakChains; ++j) a[j] = _mm512_setzero_ps();
  // bf16 pairs (0.5, 0.5) . (2^-20, 2^-20): each step adds 2^-20 per lane.
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f003f00), y = (__m512bh)_mm512_set1_epi32(0x35803580);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 32
    for (int j = 0; j < kPeakChains; ++j) a[j] = _mm512_dpbf16_ps(a[j], x, y);
  }
  __m512 s = a[0];
  for (int j = 1; j < kPeakChains; ++j) s = _mm512_add_ps(s, a[j]);
  return _mm512_reduce_add_ps(s);
}

struct alignas(64) PeakTileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Four accumulator tiles C(i, j) += A(i) B(j): 4 tdpbf16ps per iteration, tiles never leave registers.
__attribute__((target("amx-tile,amx-bf16"))) inline float PeakTdpbf16(int64_t iters) {
  static const PeakTileConfig cfg = [] {  // static: GCC 12 drops stores to a local one before ldtilecfg
    PeakTileConfig c;
    for (int t = 0; t < 8; ++t) {
      c.rows[t] = 16;
      c.colsb[t] = 64;
    }
    return c;
  }();
  _tile_loadconfig(&cfg);
  alignas(64) uint32_t ab[256];
  for (uint32_t& v : ab) v = 0x35803580;  // bf16 pairs (2^-20, 2^-20)
  alignas(64) float out[256];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ab, 64);
  _tile_loadd(5, ab, 64);
  _tile_loadd(6, ab, 64);
  _tile_loadd(7, ab, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, out, 64);
  _tile_release();
  return out[0];
}

// CPU seconds (user + system, all threads) this process has used: with more runnable threads than cores,
// flops per CPU second is the rate while scheduled, which wall time under load is not.
inline double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct PeakRow {
  std::string kernel;  // "fma-zmm", "fma-ymm", "vdpbf16ps", "tdpbf16ps"
  int threads;
  double gflops;      // wall clock, all threads
  double gflops_cpu;  // per CPU second (one core's rate while scheduled)
};

// Median GFLOP/s of `reps` runs of `iters` iterations per thread, for every kernel this CPU can run.
inline std::vector<PeakRow> MeasurePeak(const std::vector<int>& thread_counts, int64_t iters = 50'000'000,
                                        int reps = 3) {
  struct Kernel {
    std::string name;
    bool supported;
    float (*fn)(int64_t);
    double flops_per_iter;
    int64_t iter_divisor;  // tdpbf16ps: an iteration is ~64 cycles, not ~12
  };
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const Kernel kernels[] = {
      {"fma-zmm", avx512, PeakFma512, 2.0 * 16 * kPeakChains, 1},
      {"fma-ymm", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), PeakFma256, 2.0 * 8 * 12, 1},
      {"vdpbf16ps", avx512 && __builtin_cpu_supports("avx512bf16"), PeakDpbf16, 2.0 * 32 * kPeakChains, 1},
      {"tdpbf16ps", kernels::cpu::GemvIsaSupported(kernels::cpu::GemvIsa::kAmxBf16), PeakTdpbf16,
       2.0 * 4 * 16 * 16 * 32, 8},
  };
  std::vector<PeakRow> rows;
  for (const Kernel& k : kernels) {
    if (!k.supported) continue;
    for (int threads : thread_counts) {
      std::vector<double> runs, runs_cpu;
      for (int r = 0; r < reps; ++r) {
        std::vector<float> sink(static_cast<size_t>(threads));
        const double cpu0 = ProcessCpuSeconds();
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        const int64_t n = iters / k.iter_divisor;
        for (int t = 0; t < threads; ++t) ts.emplace_back([&, t] { sink[static_cast<size_t>(t)] = k.fn(n); });
        for (auto& t : ts) t.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double flop = k.flops_per_iter * static_cast<double>(n) * threads;
        runs.push_back(flop / s / 1e9);
        runs_cpu.push_back(flop / (ProcessCpuSeconds() - cpu0) / 1e9);
      }
      std::sort(runs.begin(), runs.end());
      std::sort(runs_cpu.begin(), runs_cpu.end());
      rows.push_back({k.name, threads, runs[runs.size() / 2], runs_cpu[runs_cpu.size() / 2]});
    }
  }
  return rows;
}

}  // namespace inferd::bench

#pragma GCC diagnostic pop
