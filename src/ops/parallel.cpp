#include "ops/parallel.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace inferd::ops {
namespace {

// Claim word: generation (16 bits) | chunk count (24) | next chunk index (24). A claim is a CAS on the whole
// word, so it succeeds only against the live generation; the count travels in the same word so a claimer
// never pairs an old index with a new count.
thread_local bool t_in_chunk = false;     // a ParallelChunks call from inside a chunk runs inline
thread_local bool t_inline_only = false;  // SetThreadRunsInline

constexpr int kIdxBits = 24;
constexpr uint64_t kIdxMask = (uint64_t{1} << kIdxBits) - 1;
inline uint64_t Pack(uint64_t gen, uint64_t num) {
  return ((gen & 0xffff) << 48) | (num << kIdxBits);
}
inline int64_t Idx(uint64_t c) {
  return static_cast<int64_t>(c & kIdxMask);
}
inline int64_t Num(uint64_t c) {
  return static_cast<int64_t>((c >> kIdxBits) & kIdxMask);
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) helpers_.emplace_back([this] { HelperLoop(); });
    threads_ = threads;
  }
  ~Pool() {
    stop_.store(true);
    wake_.fetch_add(1);
    wake_.notify_all();
    for (auto& t : helpers_) t.join();
  }
  int threads() const { return threads_; }

  void Run(int64_t num_chunks, const std::function<void(int64_t)>& fn) {
    if (num_chunks <= 0) return;
    // Inline when there is nothing to share, from inside a chunk, or while another thread owns the pool; an
    // inline-only thread does not even try the lock (a serving call would then run inline).
    if (t_inline_only) {
      for (int64_t c = 0; c < num_chunks; ++c) fn(c);
      return;
    }
    std::unique_lock<std::mutex> owner(run_mu_, std::try_to_lock);
    if (helpers_.empty() || num_chunks == 1 || t_in_chunk || num_chunks > static_cast<int64_t>(kIdxMask) ||
        !owner.owns_lock()) {
      for (int64_t c = 0; c < num_chunks; ++c) fn(c);
      return;
    }
    t_in_chunk = true;
    const uint64_t gen = (claim_.load(std::memory_order_relaxed) >> 48) + 1;
    fn_.store(&fn, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    claim_.store(Pack(gen, static_cast<uint64_t>(num_chunks)), std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    int64_t mine = 0;
    for (;;) {
      uint64_t c = claim_.load(std::memory_order_acquire);
      if (Idx(c) >= num_chunks) break;
      const int64_t idx = Idx(c);
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
      fn(idx);
      ++mine;
    }
    // Only chunks a helper already claimed are outstanding.
    const int64_t others = num_chunks - mine;
    int spins = 0;
    while (done_.load(std::memory_order_acquire) < others) {
      if (++spins < 4096) {
        _mm_pause();
      } else {
        std::this_thread::yield();
      }
    }
    t_in_chunk = false;
  }

 private:
  void HelperLoop() {
    uint32_t seen = wake_.load(std::memory_order_acquire);
    for (;;) {
      // Spin a little for the next call (decode issues them back to back), then sleep.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      uint32_t now = wake_.load(std::memory_order_acquire);
      while (now == seen && !stop_.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 64; ++i) _mm_pause();
        now = wake_.load(std::memory_order_acquire);
        if (now == seen && std::chrono::steady_clock::now() > spin_until) {
          sleepers_.fetch_add(1, std::memory_order_acq_rel);
          now = wake_.load(std::memory_order_acquire);
          if (now == seen && !stop_.load()) wake_.wait(seen, std::memory_order_acquire);
          sleepers_.fetch_sub(1, std::memory_order_acq_rel);
          now = wake_.load(std::memory_order_acquire);
        }
      }
      if (stop_.load()) return;
      seen = now;
      Work();
    }
  }

  void Work() {
    for (;;) {
      uint64_t c = claim_.load(std::memory_order_acquire);
      // Read the job after the acquire of its claim word, then claim with a CAS on the whole word: success
      // proves the generation was still live, and fn_ is only rewritten after a generation is finished.
      const std::function<void(int64_t)>* fn = fn_.load(std::memory_order_relaxed);
      const int64_t idx = Idx(c);
      if (idx >= Num(c)) break;
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
      t_in_chunk = true;
      (*fn)(idx);
      t_in_chunk = false;
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> helpers_;
  int threads_ = 1;
  std::mutex run_mu_;  // held by the thread whose call is using the helpers
  std::atomic<uint64_t> claim_{0};
  std::atomic<const std::function<void(int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> wake_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

std::mutex g_mu;

std::unique_ptr<Pool> g_pool;
int g_requested = 0;

// The pool lives until SetPoolThreads changes the count (at load time, while no step runs).
Pool& GetPool() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_pool) g_pool = std::make_unique<Pool>(g_requested > 0 ? g_requested : at::get_num_threads());
  return *g_pool;
}

}  // namespace

void SetPoolThreads(int threads) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (threads < 1) threads = 1;
  g_requested = threads;
  if (g_pool && g_pool->threads() != threads) g_pool.reset();
}

int PoolThreads() {
  return GetPool().threads();
}

void ParallelChunks(int64_t num_chunks, const std::function<void(int64_t)>& fn) {
  GetPool().Run(num_chunks, fn);
}

void ParallelRows(int64_t rows, int64_t elems_per_row, const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  const int64_t per_row = std::max<int64_t>(1, elems_per_row);
  const int64_t threads = PoolThreads();
  int64_t chunk_rows = std::max<int64_t>(1, (kRowChunkElems + per_row - 1) / per_row);
  chunk_rows = std::max(chunk_rows, (rows + 4 * threads - 1) / (4 * threads));
  const int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
  if (threads <= 1 || chunks < 2) {
    fn(0, rows);
    return;
  }
  ParallelChunks(chunks, [&](int64_t c) { fn(c * chunk_rows, std::min(rows, (c + 1) * chunk_rows)); });
}

bool SetThreadRunsInline(bool inline_only) {
  const bool before = t_inline_only;
  t_inline_only = inline_only;
  return before;
}

}  // namespace inferd::ops
