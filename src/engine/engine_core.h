// EngineCore: one model pool's step loop body (schedule, execute, update, emit), without a thread.
// Engine runs it on its own thread; tests call Step() directly with a fake clock and executor.
// Thread safety: Submit, Cancel, StopAccepting and LastStats may be called from any thread; every
// other method only from the thread that calls Step().
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "inferd/engine.h"
#include "scheduler/scheduler.h"

namespace inferd::engine {

class EngineCore {
 public:
  EngineCore(
      const EngineOptions& options, std::unique_ptr<Executor> executor, TextStreamFactory text,
      std::function<TimePoint()> now = [] { return Clock::now(); });
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  // Sizes the pool, initialises the executor's cache and builds the scheduler. Call once first.
  Status Init();

  SubmitResult Submit(GenerateRequest request);
  SubmitResult Submit(RecommendRequest request);
  void Cancel(RequestId id);
  // Later submits fail with UNAVAILABLE.
  void StopAccepting() { accepting_.store(false); }
  // While held, submitted requests and cancels stay in the intake; the step after the release takes them all.
  void HoldIntake(bool held);
  // Called (on the submitting thread) after each Submit/Cancel, so a sleeping loop wakes.
  void SetWakeup(std::function<void()> wakeup) { wakeup_ = std::move(wakeup); }

  // One iteration. Returns true when a batch ran.
  bool Step();
  // Requests in intake or in the scheduler.
  bool HasWork();
  // Ends every request with CANCELLED (shutdown).
  void CancelAll();

  EngineStats LastStats() const;
  void SetStatsCallback(std::function<void(const EngineStats&)> cb) { stats_callback_ = std::move(cb); }
  int32_t num_blocks() const { return num_blocks_; }
  const scheduler::Scheduler& scheduler() const { return *scheduler_; }
  Executor& executor() { return *executor_; }

 private:
  struct Live {
    std::shared_ptr<RequestStream> stream;
    std::unique_ptr<TextStream> text;
    RequestOutcome outcome;
    bool is_recommend = false;
    int32_t top_k = 0;
    ScoreBy rank_by = ScoreBy::kMeanLogprob;
    bool started = false;
    bool has_pending = false;
    TokenDelta pending;
    TimePoint deadline{};          // realtime: explicit deadline or arrival + the class default
    int64_t admitted_work_ns = 0;  // realtime: marginal work counted in realtime_ahead_ns_
  };
  struct Intake {
    scheduler::RequestSpec spec;
    Live live;
  };

  SubmitResult Enqueue(scheduler::RequestSpec spec, Live live, const std::vector<std::string>& stop);
  void DrainIntake();
  // executor_->Execute with any exception turned into INTERNAL naming it: the batch fails, the engine lives.
  StatusOr<StepResult> ExecuteNoThrow(const ForwardBatch& batch);
  void ProcessEvents(TimePoint now, EngineStats* stats);
  void OnToken(RequestId id, Live& live, const scheduler::RequestEvent& ev, TimePoint now);
  void OnFinished(RequestId id, Live& live, const scheduler::RequestEvent& ev, TimePoint now, EngineStats* stats);
  void Unqueue(RequestClass cls);
  std::chrono::milliseconds RetryAfter(int32_t queued) const;
  // Deadline-aware admission of a realtime request (submitting thread). Sets live->admitted_work_ns.
  Status AdmitRealtime(const scheduler::RequestSpec& spec, Live* live, std::chrono::milliseconds* retry_after);
  void ReleaseRealtimeWork(Live& live);

  const EngineOptions options_;
  std::unique_ptr<Executor> executor_;
  TextStreamFactory text_factory_;
  std::function<TimePoint()> now_;
  std::function<void()> wakeup_;
  std::function<void(const EngineStats&)> stats_callback_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  int32_t num_blocks_ = 0;
  Status execute_error_;

  std::atomic<bool> accepting_{true};
  std::atomic<RequestId> next_id_;  // from options.first_request_id
  // Submitted but not started, per class: the bounded queues callers see.
  std::array<std::atomic<int32_t>, kNumRequestClasses> queued_{};
  std::atomic<int64_t> step_ema_us_{0};
  // Realtime admission: what the engine thread publishes after each step, and the work admitted.
  struct AdmissionView {
    scheduler::StepCostCoefficients cost;
    bool complex_present = false;
  };
  mutable std::mutex admission_mu_;
  AdmissionView admission_view_;  // guarded by admission_mu_
  std::atomic<int64_t> realtime_ahead_ns_{0};
  std::atomic<uint64_t> realtime_refused_total_{0};
  std::atomic<uint64_t> realtime_predicted_late_total_{0};
  uint64_t realtime_late_total_ = 0;  // engine thread only

  std::mutex intake_mu_;
  std::vector<Intake> intake_;      // guarded by intake_mu_
  std::vector<RequestId> cancels_;  // guarded by intake_mu_
  bool intake_held_ = false;        // guarded by intake_mu_

  std::unordered_map<RequestId, Live> live_;  // engine thread only
  uint64_t step_ = 0;
  static constexpr uint64_t kColdSteps = 2;  // steps that ran before the cost model and step time learn
  uint64_t steps_ran_ = 0;
  mutable std::mutex stats_mu_;
  EngineStats last_stats_;  // guarded by stats_mu_
};

}  // namespace inferd::engine
