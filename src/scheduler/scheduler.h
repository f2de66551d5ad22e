// Scheduler: continuous batching over two latency classes, with chunked prefill, prefix caching and
// preemption by recompute. Each engine step: Schedule(now) -> executor -> Update(output, result).
// Single-threaded: owned by the engine thread. Validate() alone may be called from other threads
// (it reads only state fixed at construction).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "inferd/batch.h"
#include "inferd/request_types.h"
#include "inferd/status.h"
#include "kv_cache/kv_cache_manager.h"
#include "scheduler/policies.h"
#include "scheduler/scheduler_options.h"
#include "scheduler/sequence.h"
#include "scheduler/step_cost_model.h"

namespace inferd::scheduler {

// One step's work. `batch` goes to the executor unchanged; the rest is bookkeeping.
struct SchedulerOutput {
  ForwardBatch batch;
  int32_t num_prefill_tokens = 0;
  int32_t num_decode_tokens = 0;
  int32_t num_preempted = 0;  // preemptions made while building this step
  StepFeatures features;       // of the whole step, for the cost model
  double predicted_seconds = 0.0;          // cost model's prediction for the step (0 before it is ready)
  double complex_predicted_seconds = 0.0;  // the complex chunks' share of it
  bool realtime_active = false;            // realtime work was waiting or running
  bool complex_capped = false;             // complex chunks were held back to fit realtime_step_budget
  bool empty() const { return batch.chunks.empty(); }
};

struct CandidateScore {
  int32_t index = 0;           // position in RequestSpec::candidates
  double sum_logprob = 0.0;
  int32_t num_tokens = 0;
};

// What happened to a request; the engine turns these into stream deltas and outcomes.
struct RequestEvent {
  enum class Type { kStarted, kToken, kFinished };
  Type type = Type::kToken;
  RequestId request_id = 0;
  TokenLogprob token;                  // kToken
  std::vector<TokenLogprob> top;       // kToken: alternatives, best first
  FinishReason finish_reason = FinishReason::kNone;  // kFinished
  std::vector<CandidateScore> scores;  // kFinished with kScored: one per candidate, in order
  int32_t cached_prompt_tokens = 0;    // kStarted: prompt tokens served by the prefix cache
};

struct SchedulerStats {
  std::array<int32_t, kNumRequestClasses> running_requests{};  // started, unfinished
  std::array<int32_t, kNumRequestClasses> waiting_requests{};  // not started yet
  std::array<int32_t, kNumRequestClasses> running_seqs{};
  std::array<int32_t, kNumRequestClasses> waiting_seqs{};      // includes preempted
  int32_t kv_num_blocks = 0;
  int32_t kv_free_blocks = 0;
  double kv_usage = 0.0;                                       // 0..1
  uint64_t preemptions_total = 0;
  kv_cache::PrefixCacheStats prefix;
  StepCostCoefficients cost;                                   // current step-cost model
};

class Scheduler {
 public:
  Scheduler(const SchedulerOptions& options, int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // INVALID_ARGUMENT (naming the field) when the request is malformed or can never fit.
  Status Validate(const RequestSpec& spec) const;
  // Validates, then queues. RESOURCE_EXHAUSTED when the class queue is full. Ids must be unique.
  Status AddRequest(RequestSpec spec);
  // Finishes the request now with `reason` and frees its blocks. No-op for unknown ids.
  void Finish(RequestId id, FinishReason reason);

  SchedulerOutput Schedule(TimePoint now);
  // Applies the executor's results for `output` (results in chunk order).
  void Update(const SchedulerOutput& output, const StepResult& result);
  // The executor failed on `output`: its requests finish with kError.
  void FailBatch(const SchedulerOutput& output);
  // Feeds the cost model with the measured wall time of the step that ran `output`.
  void ObserveStep(const SchedulerOutput& output, double seconds) { cost_.Observe(output.features, seconds); }
  const StepCostModel& cost_model() const { return cost_; }

  // Events since the last call, in order.
  std::vector<RequestEvent> TakeEvents();
  SchedulerStats Stats() const;
  bool HasWork() const { return !requests_.empty(); }
  int32_t NumRequests() const { return static_cast<int32_t>(requests_.size()); }
  int32_t NumUnstarted(RequestClass cls) const { return unstarted_[static_cast<int>(cls)]; }

  const kv_cache::KvCacheManager& kv() const { return kv_; }
  const SchedulerOptions& options() const { return options_; }
  int32_t effective_max_len() const { return capacity_.effective_max_len(); }

 private:
  struct StepState;

  void ExpireDeadlines(TimePoint now);
  void PromoteStarved(TimePoint now);
  bool HasPromoted() const;  // a promoted sequence is waiting or running
  void ScheduleDecodes(StepState& st, int32_t tier);
  void SchedulePrefills(StepState& st, int32_t tier);
  bool HasRealtimeWork() const;
  bool HasRunnableComplex() const;  // complex (tier 1) sequences running or waiting
  // Tokens of `seq` (wanting n) that the step's limits let in: the complex time allowance while realtime
  // work is active, and the per-request share inside the realtime class. 0 = none this step.
  // `start`: the chunk's first position (after any prefix-cache hit).
  int32_t Allowed(StepState& st, const Sequence& seq, int32_t start, int32_t n) const;
  StepFeatures SeqChunkFeatures(const Sequence& seq, int32_t start, int32_t n) const;
  // Prefill tokens a complex chunk gets when it is the step's only complex chunk and nothing fits.
  static constexpr int32_t kMinComplexChunkTokens = 16;
  bool ScheduleRunningPrefill(StepState& st, Sequence* seq);
  bool AdmitWaiting(StepState& st, Sequence* seq);
  // Grows `seq`'s table to num_tokens, preempting lower-priority sequences as needed.
  bool GrowWithPreemption(StepState& st, Sequence* seq, int32_t num_tokens);
  Sequence* PickVictim(const PriorityKey& above) const;
  void Preempt(StepState& st, Sequence* victim);
  void AddChunk(StepState& st, Sequence* seq, int32_t n);

  void EnqueueWaiting(Sequence* seq);
  void RemoveWaiting(Sequence* seq);
  void RemoveRunning(Sequence* seq);
  void OnContextDone(Sequence* ctx);
  void SpawnCandidates(Request* req, TimePoint now);
  void OnCandidateDone(Sequence* seq);
  bool CheckStop(Sequence* seq, TokenId token, FinishReason* reason) const;
  void MarkStarted(Request* req, int32_t cached_tokens);
  void ReleaseSequence(Sequence* seq);
  void FinishRequest(Request* req, FinishReason reason);

  const SchedulerOptions options_;
  ClassOrdering ordering_;
  StepCostModel cost_;
  CapacityPolicy capacity_;
  AdmissionPolicy admission_;
  kv_cache::KvCacheManager kv_;

  std::unordered_map<RequestId, std::unique_ptr<Request>> requests_;
  std::unordered_map<SeqId, Sequence*> seqs_;  // live sequences
  std::vector<Sequence*> running_;             // state kRunning
  std::map<PriorityKey, Sequence*> urgent_;    // waiting, tier 0 (realtime and promoted), EDF
  std::map<PriorityKey, Sequence*> complex_;   // waiting, tier 1, FCFS
  // Waiting complex sequences by waiting_since, for promotion.
  std::set<std::tuple<TimePoint, uint64_t, int32_t, Sequence*>> complex_by_wait_;
  std::set<std::pair<TimePoint, RequestId>> deadlines_;
  std::array<int32_t, kNumRequestClasses> unstarted_{};
  std::array<int32_t, kNumRequestClasses> live_requests_{};  // admitted, unfinished
  std::vector<SeqId> released_;  // for the next ForwardBatch
  std::vector<RequestEvent> events_;
  uint64_t next_order_ = 0;
  SeqId next_seq_id_ = 1;
  uint64_t preemptions_total_ = 0;
  TimePoint now_{};
};

}  // namespace inferd::scheduler
