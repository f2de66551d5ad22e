// Work pool for the decode path's memory-bound kernels. Unlike an OpenMP team, a call never waits for a
// thread that has not started: work is cut into chunks that threads claim one at a time, the calling
// thread claims too, and the call returns once every chunk is done. A helper that is descheduled (2 cores
// shared with other processes) simply claims nothing, so the caller does its share instead of idling at a
// barrier for a scheduler time slice.
#pragma once

#include <cstdint>
#include <functional>

namespace inferd::ops {

// Total threads (the caller included) used by ParallelChunks; 1 runs everything inline. Default: the
// libtorch intra-op thread count at first use. Not thread-safe against concurrent ParallelChunks calls.
void SetPoolThreads(int threads);
int PoolThreads();

// Runs fn(chunk) for every chunk in [0, num_chunks), each exactly once, on the pool; returns when all are
// done. fn must be safe to run concurrently for different chunks. One call at a time uses the helpers; a
// call made meanwhile from another thread, or from inside a chunk, runs inline on its caller.
void ParallelChunks(int64_t num_chunks, const std::function<void(int64_t chunk)>& fn);

// Row-parallel form for the row kernels of a step (norms, SwiGLU, RoPE, logits scans): fn(begin, end) over
// row ranges covering [0, rows) exactly once, each range at least kRowChunkElems elements of work
// (elems_per_row per row), at most 4 ranges per pool thread. Below two ranges' worth it is one inline call
// fn(0, rows): a pool hand-off costs a few microseconds, about what 16K elements of a row kernel take.
// Each row's result must depend only on that row (so the split cannot change a result).
constexpr int64_t kRowChunkElems = 16384;
void ParallelRows(int64_t rows, int64_t elems_per_row, const std::function<void(int64_t begin, int64_t end)>& fn);

// While set on the calling thread, its ParallelChunks calls run every chunk inline and leave the helpers to
// other threads (a replacement model's low-priority warm-up beside the serving engine). Returns the previous
// setting of this thread (false on a new thread).
bool SetThreadRunsInline(bool inline_only);

}  // namespace inferd::ops
