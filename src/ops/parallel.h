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

// While set on the calling thread, its ParallelChunks calls run every chunk inline and leave the helpers to
// other threads (a replacement model's low-priority warm-up beside the serving engine). Returns the previous
// setting of this thread (false on a new thread).
bool SetThreadRunsInline(bool inline_only);

}  // namespace inferd::ops
