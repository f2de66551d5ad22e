// Engine: the serving core one model pool runs (DESIGN.md section 2). server/ calls Submit and reads
// the returned RequestStream; one EngineCore thread schedules, executes (through an Executor) and
// updates. No torch, no gRPC, no Prometheus: stats leave as plain structs.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "inferd/batch.h"
#include "inferd/executor.h"
#include "inferd/request_types.h"
#include "inferd/status.h"
#include "kv_cache/kv_cache_options.h"
#include "scheduler/scheduler_options.h"

namespace inferd {

// ---- Text: detokenization and stop strings, supplied by tokenizer/ (or a fake in tests) ----

// Incremental detokenizer plus stop-string matcher for one request. Used only on the engine thread.
class TextStream {
 public:
  struct Delta {
    std::string text;      // text that became final with this token (may be empty)
    bool stopped = false;  // a stop string completed; `text` ends before it
  };
  virtual ~TextStream() = default;
  virtual Delta Push(TokenId token) = 0;
  // Text held back at the end of generation (partial UTF-8 or a partial stop-string match).
  virtual std::string Flush() = 0;
};

// Makes the TextStream of one Generate request. `stop` may be empty.
using TextStreamFactory = std::function<std::unique_ptr<TextStream>(const std::vector<TokenId>& prompt,
                                                                    const std::vector<std::string>& stop)>;

// ---- Requests ----

struct GenerateRequest {
  std::vector<TokenId> prompt;
  SamplingParams sampling;                // sampling.top_logprobs > 0 asks for alternatives
  int32_t max_tokens = 0;                 // 0 = until a stop condition or the context limit
  std::vector<TokenId> stop_token_ids;    // finish with kEos, like the model's EOS ids
  std::vector<std::string> stop;          // stop strings (need a TextStreamFactory)
  bool ignore_eos = false;
  RequestClass cls = RequestClass::kComplex;
  std::optional<TimePoint> deadline;      // hard deadline: DEADLINE_EXCEEDED after it
};

enum class ScoreBy : int32_t { kMeanLogprob = 0, kSumLogprob = 1 };

struct RecommendRequest {
  std::vector<TokenId> context;                  // prefilled once, shared by every candidate
  std::vector<std::vector<TokenId>> candidates;  // each scored as a continuation of context
  int32_t top_k = 0;                             // 0 = rank all
  ScoreBy rank_by = ScoreBy::kMeanLogprob;
  RequestClass cls = RequestClass::kRealtime;
  std::optional<TimePoint> deadline;
};

// ---- Results ----

struct TokenDelta {
  std::vector<TokenId> token_ids;
  std::string text;                                 // text delta (empty without a TextStreamFactory)
  std::vector<float> logprobs;                      // one per token: the sampled token's log-probability
  std::vector<std::vector<TokenLogprob>> top_logprobs;  // one per token when top_logprobs > 0
};

struct RequestTimings {
  TimePoint arrival{};
  TimePoint first_scheduled{};     // queued = first_scheduled - arrival
  TimePoint first_token{};         // Generate only
  std::vector<TimePoint> token_times;  // one per generated token
  TimePoint end{};
};

struct ScoredCandidate {
  int32_t index = 0;               // into RecommendRequest::candidates
  double sum_logprob = 0.0;
  double mean_logprob = 0.0;
  int32_t num_tokens = 0;
};

struct RequestOutcome {
  Status status;                   // OK, CANCELLED, DEADLINE_EXCEEDED, INTERNAL
  FinishReason finish_reason = FinishReason::kNone;
  RequestClass cls = RequestClass::kComplex;
  RequestTimings timings;
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;
  int32_t generated_tokens = 0;
  std::vector<ScoredCandidate> ranked;  // Recommend: best first, ties by index; top_k long
};

// Output of one request. Written by the engine thread, read by any one consumer thread.
class RequestStream {
 public:
  enum class ReadResult { kDelta, kFinished, kTimeout };

  explicit RequestStream(RequestId id) : id_(id) {}
  RequestId id() const { return id_; }

  // Next delta (several engine steps may be merged into one), or kFinished once every delta was read
  // and the outcome is set. kTimeout after `timeout` with neither.
  ReadResult Read(TokenDelta* delta, std::chrono::milliseconds timeout = std::chrono::hours(24));
  // Blocks until finished; the outcome then never changes.
  const RequestOutcome& Wait();
  bool finished() const;

  // Engine side.
  void PushDelta(TokenDelta delta);
  void Finish(RequestOutcome outcome);

 private:
  const RequestId id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenDelta> deltas_;
  bool finished_ = false;
  RequestOutcome outcome_;
};

struct SubmitResult {
  Status status;                                // INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE
  std::chrono::milliseconds retry_after{0};     // with RESOURCE_EXHAUSTED: when to try again
  std::shared_ptr<RequestStream> stream;        // set when status is OK
};

// ---- Stats ----

struct FinishedRequestStats {
  RequestClass cls = RequestClass::kComplex;
  FinishReason finish_reason = FinishReason::kNone;
  bool is_recommend = false;
  double queue_seconds = 0.0;
  double ttft_seconds = 0.0;      // Generate with >= 1 token
  double e2e_seconds = 0.0;
  std::vector<double> inter_token_seconds;
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int32_t generated_tokens = 0;
  bool late = false;              // realtime: finished after its deadline (explicit or the class default)
};

// One engine step. Cumulative fields say so; the rest describe this step.
struct EngineStats {
  uint64_t step = 0;
  std::array<int32_t, kNumRequestClasses> running_requests{};
  std::array<int32_t, kNumRequestClasses> waiting_requests{};
  std::array<int32_t, kNumRequestClasses> running_seqs{};
  std::array<int32_t, kNumRequestClasses> waiting_seqs{};
  int32_t kv_num_blocks = 0;
  int32_t kv_free_blocks = 0;
  double kv_usage = 0.0;                   // 0..1
  int32_t preemptions = 0;
  uint64_t preemptions_total = 0;
  uint64_t prefix_queried_tokens_total = 0;
  uint64_t prefix_hit_tokens_total = 0;
  int32_t batch_seqs = 0;
  int32_t prefill_tokens = 0;
  int32_t decode_tokens = 0;
  double schedule_seconds = 0.0;
  double execute_seconds = 0.0;
  double step_seconds = 0.0;               // schedule + execute + update + output
  // Realtime protection (SchedulerOptions: realtime_step_budget, complex_min_share, ...).
  double predicted_seconds = 0.0;          // step-cost model's prediction of step_seconds (0 before it is ready)
  double complex_predicted_seconds = 0.0;  // the complex chunks' part of the prediction
  bool realtime_active = false;            // realtime work was waiting or running
  bool complex_capped = false;             // complex chunks were held back to fit the realtime step budget
  bool cost_model_ready = false;
  double cost_model_median_error = 1.0;    // median |predicted - actual| / actual of recent steps
  std::array<double, 5> cost_coefficients{};  // seconds per step, prefill token, decode row, logit row,
                                              // 1000 attended positions
  uint64_t realtime_refused_total = 0;     // cumulative: refused at submit, deadline predicted unmeetable
  uint64_t realtime_predicted_late_total = 0;  // cumulative: admitted best-effort although predicted late
  uint64_t realtime_late_total = 0;        // cumulative: realtime requests that finished after their deadline
  std::vector<FinishedRequestStats> finished;  // requests that ended in this step
};

// ---- Engine ----

struct EngineOptions {
  KvCacheOptions kv_cache;
  SchedulerOptions scheduler;
  // Fewest milliseconds a RESOURCE_EXHAUSTED retry hint says; scaled up by queue depth and step time.
  std::chrono::milliseconds min_retry_after{50};
  // Ids of this engine's requests count up from here; engines that serve one pool in turn (a reload) get
  // disjoint ranges so a cancel by id never reaches another engine's request. Must be >= 1.
  RequestId first_request_id = 1;
};

namespace engine {
class EngineCore;
}

// Owns the EngineCore thread. Thread-safe: Submit/Cancel from any thread.
class Engine {
 public:
  using Now = std::function<TimePoint()>;

  // Sizes the KV pool from options.kv_cache and the executor's layout, initialises the executor's
  // cache and starts the thread. `text` may be empty (no text deltas; stop strings rejected).
  static StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options, std::unique_ptr<Executor> executor,
                                                  TextStreamFactory text = nullptr);
  ~Engine();  // stops the thread; unfinished requests end CANCELLED

  SubmitResult Submit(GenerateRequest request);
  SubmitResult Submit(RecommendRequest request);
  // Ends the request with CANCELLED and frees its blocks within one step. Unknown ids are ignored.
  void Cancel(RequestId id);

  // While held, submitted requests (and cancels) wait outside the scheduler; the release hands them over
  // together, so a group submitted under one hold is scheduled from the same step on (the warm-up's batch
  // shapes). Admission and validation still answer at Submit. Not nested.
  void HoldIntake(bool held);

  // Stops accepting (UNAVAILABLE), lets in-flight work finish until `timeout`, then cancels the rest.
  void Drain(std::chrono::milliseconds timeout);

  // Replaces the engine thread by a new one started from the calling thread, so it runs at the caller's
  // scheduling priority (a thread inherits its creator's nice value and policy; an unprivileged thread cannot
  // raise its own again). Work queued or running carries on in the new thread. Not concurrent with Drain or
  // the destructor.
  void RestartThread();

  // Called on the engine thread after every step that did work. Set before submitting.
  void SetStatsCallback(std::function<void(const EngineStats&)> callback);
  EngineStats LastStats() const;
  int32_t num_blocks() const;

 private:
  explicit Engine(std::unique_ptr<engine::EngineCore> core);
  void Loop();

  std::unique_ptr<engine::EngineCore> core_;
  struct ThreadState;
  std::unique_ptr<ThreadState> thread_;
};

}  // namespace inferd
