#include "server/blocking_pool.h"

#include <thread>
#include <utility>

namespace inferd::server {

BlockingPool::BlockingPool(size_t max_threads, std::chrono::milliseconds idle_exit, size_t keep_idle)
    : max_threads_(max_threads), idle_exit_(idle_exit), keep_idle_(keep_idle) {}

BlockingPool::~BlockingPool() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  work_cv_.notify_all();
  done_cv_.wait(lock, [&] { return threads_ == 0; });
}

bool BlockingPool::TrySubmit(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return false;
  if (idle_ > 0) {
    --idle_;  // on behalf of the idle thread that takes it
    tasks_.push_back(std::move(task));
    work_cv_.notify_one();
    return true;
  }
  if (max_threads_ != 0 && threads_ >= max_threads_) return false;
  ++threads_;
  std::thread([this, first = std::move(task)]() mutable { Loop(std::move(first)); }).detach();
  return true;
}

void BlockingPool::Loop(std::function<void()> task) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (task) {
      lock.unlock();
      task();
      task = nullptr;  // what the task holds is released outside the lock
      lock.lock();
    }
    if (stopping_) break;
    ++idle_;
    const bool woken = work_cv_.wait_for(lock, idle_exit_, [&] { return !tasks_.empty() || stopping_; });
    if (!tasks_.empty()) {  // TrySubmit took this thread off idle_
      task = std::move(tasks_.front());
      tasks_.pop_front();
      continue;
    }
    --idle_;
    if (stopping_ || (!woken && idle_ >= keep_idle_)) break;
  }
  --threads_;
  // The pool may be destroyed as soon as the lock is released; nothing here touches it after that.
  done_cv_.notify_all();
}

size_t BlockingPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_;
}

size_t BlockingPool::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_ - idle_;
}

}  // namespace inferd::server
