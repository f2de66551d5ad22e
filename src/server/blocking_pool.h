// BlockingPool: threads for the part of a call that may block (waiting on a model, forwarding upstream),
// handed over by gRPC's callback threads, which serve every other call and must never block.
// At most `max_threads` threads (0 = no bound), started on demand; a task is accepted only when a thread is
// free for it at once (idle, or newly started), never queued behind another task. A thread idle for
// `idle_exit` ends while more than `keep_idle` threads are idle.
// Thread-safe. The destructor waits for every thread to end; tasks must end on their own by then (the
// gRPC server was shut down first, which cancels their calls).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace inferd::server {

class BlockingPool {
 public:
  explicit BlockingPool(size_t max_threads, std::chrono::milliseconds idle_exit = std::chrono::seconds(10),
                        size_t keep_idle = 2);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `task` on a pool thread; false (task dropped, not run) when all max_threads threads are busy.
  bool TrySubmit(std::function<void()> task);
  size_t max_threads() const { return max_threads_; }
  // Threads alive now, and those among them running a task (or about to).
  size_t threads() const;
  size_t busy() const;

 private:
  // Runs `task`, then the tasks handed to it while idle, until it exits.
  void Loop(std::function<void()> task);

  const size_t max_threads_;
  const std::chrono::milliseconds idle_exit_;
  const size_t keep_idle_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;          // a task was queued, or stopping_
  std::condition_variable done_cv_;          // a thread ended
  std::deque<std::function<void()>> tasks_;  // handed to idle threads, each already taken off idle_
  size_t threads_ = 0;
  size_t idle_ = 0;  // threads waiting for a task with none handed to them
  bool stopping_ = false;
};

}  // namespace inferd::server
