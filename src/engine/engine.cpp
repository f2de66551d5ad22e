#include "inferd/engine.h"

#include <thread>

#include "engine/engine_core.h"

namespace inferd {

// ---- RequestStream ----

RequestStream::ReadResult RequestStream::Read(TokenDelta* delta, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !deltas_.empty() || finished_; })) return ReadResult::kTimeout;
  if (deltas_.empty()) return ReadResult::kFinished;
  *delta = std::move(deltas_.front());
  deltas_.pop_front();
  // Merge whatever else is queued so a slow reader catches up in one read.
  while (!deltas_.empty()) {
    TokenDelta& next = deltas_.front();
    delta->token_ids.insert(delta->token_ids.end(), next.token_ids.begin(), next.token_ids.end());
    delta->text += next.text;
    delta->logprobs.insert(delta->logprobs.end(), next.logprobs.begin(), next.logprobs.end());
    for (auto& t : next.top_logprobs) delta->top_logprobs.push_back(std::move(t));
    deltas_.pop_front();
  }
  return ReadResult::kDelta;
}

const RequestOutcome& RequestStream::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_; });
  return outcome_;
}

bool RequestStream::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

void RequestStream::PushDelta(TokenDelta delta) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    deltas_.push_back(std::move(delta));
  }
  cv_.notify_all();
}

void RequestStream::Finish(RequestOutcome outcome) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    outcome_ = std::move(outcome);
    finished_ = true;
  }
  cv_.notify_all();
}

// ---- Engine ----

struct Engine::ThreadState {
  std::mutex mu;
  std::condition_variable cv;
  bool wake = false;
  bool stop = false;
  std::atomic<bool> idle{true};
  std::thread thread;
};

Engine::Engine(std::unique_ptr<engine::EngineCore> core) : core_(std::move(core)), thread_(new ThreadState) {}

StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options, std::unique_ptr<Executor> executor,
                                                 TextStreamFactory text) {
  auto core = std::make_unique<engine::EngineCore>(options, std::move(executor), std::move(text));
  if (Status s = core->Init(); !s.ok()) return s;
  std::unique_ptr<Engine> engine(new Engine(std::move(core)));
  ThreadState* ts = engine->thread_.get();
  engine->core_->SetWakeup([ts] {
    {
      std::lock_guard<std::mutex> lock(ts->mu);
      ts->wake = true;
      // Once a Submit/Cancel has returned, Drain must not see an idle loop until that work is done.
      ts->idle.store(false);
    }
    ts->cv.notify_one();
  });
  Engine* self = engine.get();
  ts->thread = std::thread([self] { self->Loop(); });
  return engine;
}

Engine::~Engine() {
  core_->StopAccepting();
  {
    std::lock_guard<std::mutex> lock(thread_->mu);
    thread_->stop = true;
  }
  thread_->cv.notify_one();
  if (thread_->thread.joinable()) thread_->thread.join();
  core_->CancelAll();
}

void Engine::Loop() {
  ThreadState& ts = *thread_;
  for (;;) {
    bool has_work = core_->HasWork();
    {
      // idle is true only while the loop waits with no work seen and no wake-up pending (both under mu).
      std::unique_lock<std::mutex> lock(ts.mu);
      if (ts.stop) return;
      if (!has_work && !ts.wake) {
        ts.idle.store(true);
        ts.cv.wait(lock, [&] { return ts.stop || ts.wake; });
        if (ts.stop) return;
      }
      ts.wake = false;
      ts.idle.store(false);
    }
    if (!core_->Step() && core_->HasWork()) {
      // Work exists but nothing could run (all waiting on memory or slots): back off briefly.
      std::unique_lock<std::mutex> lock(ts.mu);
      ts.cv.wait_for(lock, std::chrono::milliseconds(1), [&] { return ts.stop || ts.wake; });
    }
  }
}

SubmitResult Engine::Submit(GenerateRequest request) { return core_->Submit(std::move(request)); }
SubmitResult Engine::Submit(RecommendRequest request) { return core_->Submit(std::move(request)); }
void Engine::Cancel(RequestId id) { core_->Cancel(id); }
void Engine::HoldIntake(bool held) { core_->HoldIntake(held); }

void Engine::Drain(std::chrono::milliseconds timeout) {
  core_->StopAccepting();
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (thread_->idle.load()) {
      // Idle is only trusted once the loop has seen no work after our last check.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (thread_->idle.load()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  {
    std::lock_guard<std::mutex> lock(thread_->mu);
    thread_->stop = true;
  }
  thread_->cv.notify_one();
  if (thread_->thread.joinable()) thread_->thread.join();
  core_->CancelAll();
}

void Engine::RestartThread() {
  ThreadState& ts = *thread_;
  {
    std::lock_guard<std::mutex> lock(ts.mu);
    ts.stop = true;
  }
  ts.cv.notify_one();
  if (ts.thread.joinable()) ts.thread.join();
  {
    std::lock_guard<std::mutex> lock(ts.mu);
    ts.stop = false;
    ts.wake = true;  // the new loop looks for work at once
  }
  ts.thread = std::thread([this] { Loop(); });
}

void Engine::SetStatsCallback(std::function<void(const EngineStats&)> callback) {
  core_->SetStatsCallback(std::move(callback));
}

EngineStats Engine::LastStats() const { return core_->LastStats(); }
int32_t Engine::num_blocks() const { return core_->num_blocks(); }

}  // namespace inferd
