#include "engine/engine_core.h"

#include <algorithm>
#include <exception>
#include <string>

#include "engine/scoring.h"
#include "scheduler/deadline_admission.h"

namespace inferd::engine {
namespace {

double Seconds(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

Status ValidateSampling(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f)) return InvalidArgument("sampling.temperature: must be >= 0");
  if (p.top_k < 0) return InvalidArgument("sampling.top_k: must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return InvalidArgument("sampling.top_p: must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return InvalidArgument("sampling.min_p: must be in [0, 1]");
  if (!(p.repetition_penalty > 0.0f)) return InvalidArgument("sampling.repetition_penalty: must be > 0");
  if (p.top_logprobs < 0 || p.top_logprobs > 20) return InvalidArgument("sampling.top_logprobs: must be in [0, 20]");
  return Status::Ok();
}

Status StatusFor(FinishReason reason, const Status& execute_error) {
  switch (reason) {
    case FinishReason::kCancelled:
      return Cancelled("request cancelled");
    case FinishReason::kDeadlineExceeded:
      return DeadlineExceeded("deadline exceeded");
    case FinishReason::kError:
      return Internal("forward pass failed: " +
                      (execute_error.ok() ? std::string("unknown") : execute_error.message()));
    default:
      return Status::Ok();
  }
}

}  // namespace

EngineCore::EngineCore(const EngineOptions& options, std::unique_ptr<Executor> executor, TextStreamFactory text,
                       std::function<TimePoint()> now)
    : options_(options),
      executor_(std::move(executor)),
      text_factory_(std::move(text)),
      now_(std::move(now)),
      next_id_(options.first_request_id) {}

StatusOr<StepResult> EngineCore::ExecuteNoThrow(const ForwardBatch& batch) {
  try {
    return executor_->Execute(batch);
  } catch (const std::exception& e) {
    return Internal(std::string("executor threw: ") + e.what());
  } catch (...) {
    return Internal("executor threw a non-standard exception");
  }
}

Status EngineCore::Init() {
  StatusOr<int32_t> blocks = ComputeNumBlocks(options_.kv_cache, executor_->CacheLayout());
  if (!blocks.ok()) return blocks.status();
  num_blocks_ = *blocks;
  if (Status s = executor_->InitializeCache(num_blocks_, options_.kv_cache.block_size); !s.ok()) return s;
  scheduler_ = std::make_unique<scheduler::Scheduler>(options_.scheduler, num_blocks_, options_.kv_cache.block_size,
                                                      options_.kv_cache.enable_prefix_caching);
  return Status::Ok();
}

std::chrono::milliseconds EngineCore::RetryAfter(int32_t queued) const {
  // Time for the queue ahead to start at the current step rate, assuming a few steps per request.
  const int64_t per_step_us = step_ema_us_.load(std::memory_order_relaxed);
  const int64_t slots = std::max(1, options_.scheduler.max_running);
  const int64_t est_ms = per_step_us * 8 * (queued / slots + 1) / 1000;
  return std::max(options_.min_retry_after, std::chrono::milliseconds(est_ms));
}

SubmitResult EngineCore::Submit(GenerateRequest request) {
  SubmitResult result;
  if (Status s = ValidateSampling(request.sampling); !s.ok()) {
    result.status = s;
    return result;
  }
  if (!request.stop.empty() && !text_factory_) {
    result.status = InvalidArgument("stop: stop strings need a tokenizer, none is configured");
    return result;
  }
  for (const auto& s : request.stop) {
    if (s.empty()) {
      result.status = InvalidArgument("stop: stop strings must not be empty");
      return result;
    }
  }
  scheduler::RequestSpec spec;
  spec.cls = request.cls;
  spec.prompt = std::move(request.prompt);
  spec.sampling = request.sampling;
  spec.max_tokens = request.max_tokens;
  spec.stop_token_ids = std::move(request.stop_token_ids);
  spec.ignore_eos = request.ignore_eos;
  spec.deadline = request.deadline;
  Live live;
  return Enqueue(std::move(spec), std::move(live), request.stop);
}

SubmitResult EngineCore::Submit(RecommendRequest request) {
  SubmitResult result;
  if (request.candidates.empty()) {
    result.status = InvalidArgument("candidates: must not be empty");
    return result;
  }
  if (request.top_k < 0) {
    result.status = InvalidArgument("top_k: must be >= 0");
    return result;
  }
  scheduler::RequestSpec spec;
  spec.cls = request.cls;
  spec.prompt = std::move(request.context);
  spec.candidates = std::move(request.candidates);
  spec.deadline = request.deadline;
  Live live;
  live.is_recommend = true;
  live.top_k = request.top_k;
  live.rank_by = request.rank_by;
  return Enqueue(std::move(spec), std::move(live), {});
}

SubmitResult EngineCore::Enqueue(scheduler::RequestSpec spec, Live live, const std::vector<std::string>& stop) {
  SubmitResult result;
  if (!accepting_.load()) {
    result.status = Unavailable("engine is draining");
    return result;
  }
  if (scheduler_ == nullptr) {
    result.status = Unavailable("engine is not initialised");
    return result;
  }
  if (Status s = scheduler_->Validate(spec); !s.ok()) {
    result.status = s;
    return result;
  }
  spec.arrival = now_();
  if (spec.cls == RequestClass::kRealtime) {
    live.deadline = spec.deadline ? *spec.deadline : spec.arrival + options_.scheduler.realtime_default_deadline;
    if (Status s = AdmitRealtime(spec, &live, &result.retry_after); !s.ok()) {
      result.status = s;
      return result;
    }
  }
  const int c = static_cast<int>(spec.cls);
  const int32_t cap = spec.cls == RequestClass::kRealtime ? options_.scheduler.max_waiting_realtime
                                                          : options_.scheduler.max_waiting_complex;
  int32_t queued = queued_[c].load();
  do {
    if (queued >= cap) {
      result.retry_after = RetryAfter(queued);
      result.status =
          ResourceExhausted(std::string(RequestClassName(spec.cls)) + " queue is full (" + std::to_string(queued) +
                            " waiting); retry after " + std::to_string(result.retry_after.count()) + " ms");
      ReleaseRealtimeWork(live);
      return result;
    }
  } while (!queued_[c].compare_exchange_weak(queued, queued + 1));

  spec.id = next_id_.fetch_add(1);
  live.stream = std::make_shared<RequestStream>(spec.id);
  live.outcome.cls = spec.cls;
  live.outcome.timings.arrival = spec.arrival;
  live.outcome.prompt_tokens = static_cast<int32_t>(spec.prompt.size());
  if (text_factory_ && !live.is_recommend) live.text = text_factory_(spec.prompt, stop);
  result.stream = live.stream;
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    intake_.push_back(Intake{std::move(spec), std::move(live)});
  }
  if (wakeup_) wakeup_();
  return result;
}

Status EngineCore::AdmitRealtime(const scheduler::RequestSpec& spec, Live* live,
                                 std::chrono::milliseconds* retry_after) {
  AdmissionView view;
  {
    std::lock_guard<std::mutex> lock(admission_mu_);
    view = admission_view_;
  }
  if (!view.cost.ready) return Status::Ok();  // no model yet: order only
  const scheduler::RealtimeWork own =
      scheduler::EstimateRealtimeWork(spec, view.cost, options_.scheduler, options_.kv_cache.block_size);
  const int64_t own_ns = static_cast<int64_t>(own.marginal_seconds * 1e9);
  const int64_t ahead_ns = realtime_ahead_ns_.fetch_add(own_ns);
  scheduler::AdmissionInput in;
  in.own = own;
  in.ahead_marginal_seconds = static_cast<double>(ahead_ns) * 1e-9;
  in.step_seconds = static_cast<double>(step_ema_us_.load(std::memory_order_relaxed)) * 1e-6;
  in.complex_present = view.complex_present || queued_[static_cast<int>(RequestClass::kComplex)].load() > 0;
  in.seconds_to_deadline = Seconds(spec.arrival, live->deadline);
  const scheduler::AdmissionDecision d = scheduler::PredictRealtimeLatency(in, options_.scheduler);
  live->admitted_work_ns = own_ns;
  if (d.meets) return Status::Ok();
  if (!options_.scheduler.realtime_refuse_unmeetable) {
    realtime_predicted_late_total_.fetch_add(1);
    return Status::Ok();
  }
  ReleaseRealtimeWork(*live);
  realtime_refused_total_.fetch_add(1);
  const auto ms = [](double sec) { return static_cast<int64_t>(sec * 1000.0 + 0.5); };
  *retry_after =
      std::max(options_.min_retry_after, std::chrono::milliseconds(ms(d.predicted_seconds - in.seconds_to_deadline)));
  return ResourceExhausted("realtime deadline cannot be met: predicted " + std::to_string(ms(d.predicted_seconds)) +
                           " ms (" + std::to_string(ms(in.ahead_marginal_seconds)) +
                           " ms of realtime work admitted ahead) against " +
                           std::to_string(ms(in.seconds_to_deadline)) + " ms to the deadline; retry after " +
                           std::to_string(retry_after->count()) + " ms");
}

void EngineCore::ReleaseRealtimeWork(Live& live) {
  if (live.admitted_work_ns != 0) realtime_ahead_ns_.fetch_sub(live.admitted_work_ns);
  live.admitted_work_ns = 0;
}

void EngineCore::Cancel(RequestId id) {
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    cancels_.push_back(id);
  }
  if (wakeup_) wakeup_();
}

void EngineCore::HoldIntake(bool held) {
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    intake_held_ = held;
  }
  if (!held && wakeup_) wakeup_();
}

bool EngineCore::HasWork() {
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    if (!intake_held_ && (!intake_.empty() || !cancels_.empty())) return true;
  }
  return scheduler_ != nullptr && scheduler_->HasWork();
}

void EngineCore::Unqueue(RequestClass cls) {
  queued_[static_cast<int>(cls)].fetch_sub(1);
}

void EngineCore::DrainIntake() {
  std::vector<Intake> intake;
  std::vector<RequestId> cancels;
  {
    std::lock_guard<std::mutex> lock(intake_mu_);
    if (intake_held_) return;
    intake.swap(intake_);
    cancels.swap(cancels_);
  }
  for (Intake& in : intake) {
    const RequestId id = in.spec.id;
    const RequestClass cls = in.spec.cls;
    if (Status s = scheduler_->AddRequest(std::move(in.spec)); !s.ok()) {
      Unqueue(cls);
      ReleaseRealtimeWork(in.live);
      in.live.outcome.status = s;
      in.live.outcome.timings.end = now_();
      in.live.stream->Finish(std::move(in.live.outcome));
      continue;
    }
    live_.emplace(id, std::move(in.live));
  }
  for (RequestId id : cancels) scheduler_->Finish(id, FinishReason::kCancelled);
}

bool EngineCore::Step() {
  EngineStats stats;
  stats.step = step_++;
  const TimePoint t0 = now_();
  const auto wall0 = Clock::now();
  DrainIntake();
  ProcessEvents(t0, &stats);

  scheduler::SchedulerOutput out = scheduler_->Schedule(t0);
  const auto wall1 = Clock::now();
  ProcessEvents(t0, &stats);
  bool ran = false;
  auto wall2 = wall1;
  if (!out.empty()) {
    ran = true;
    StatusOr<StepResult> result = ExecuteNoThrow(out.batch);
    wall2 = Clock::now();
    // The first forward passes carry one-time initialisation (allocator, kernel selection, page faults).
    if (++steps_ran_ > kColdSteps) scheduler_->ObserveStep(out, std::chrono::duration<double>(wall2 - wall0).count());
    if (!result.ok() || result->results.size() != out.batch.chunks.size()) {
      execute_error_ = result.ok() ? Internal("executor returned a wrong number of results") : result.status();
      scheduler_->FailBatch(out);
    } else {
      scheduler_->Update(out, *result);
    }
    ProcessEvents(now_(), &stats);
    execute_error_ = Status::Ok();
  }
  for (auto& [id, live] : live_) {
    if (!live.has_pending) continue;
    live.stream->PushDelta(std::move(live.pending));
    live.pending = TokenDelta{};
    live.has_pending = false;
  }
  const auto wall3 = Clock::now();

  const scheduler::SchedulerStats s = scheduler_->Stats();
  stats.running_requests = s.running_requests;
  stats.waiting_requests = s.waiting_requests;
  stats.running_seqs = s.running_seqs;
  stats.waiting_seqs = s.waiting_seqs;
  stats.kv_num_blocks = s.kv_num_blocks;
  stats.kv_free_blocks = s.kv_free_blocks;
  stats.kv_usage = s.kv_usage;
  stats.preemptions = out.num_preempted;
  stats.preemptions_total = s.preemptions_total;
  stats.prefix_queried_tokens_total = s.prefix.queried_tokens;
  stats.prefix_hit_tokens_total = s.prefix.hit_tokens;
  stats.batch_seqs = static_cast<int32_t>(out.batch.chunks.size());
  stats.prefill_tokens = out.num_prefill_tokens;
  stats.decode_tokens = out.num_decode_tokens;
  stats.schedule_seconds = std::chrono::duration<double>(wall1 - wall0).count();
  stats.execute_seconds = std::chrono::duration<double>(wall2 - wall1).count();
  stats.step_seconds = std::chrono::duration<double>(wall3 - wall0).count();
  stats.predicted_seconds = out.predicted_seconds;
  stats.complex_predicted_seconds = out.complex_predicted_seconds;
  stats.realtime_active = out.realtime_active;
  stats.complex_capped = out.complex_capped;
  stats.cost_model_ready = s.cost.ready;
  stats.cost_model_median_error = s.cost.median_rel_error;
  stats.cost_coefficients = s.cost.seconds;
  stats.realtime_refused_total = realtime_refused_total_.load();
  stats.realtime_predicted_late_total = realtime_predicted_late_total_.load();
  stats.realtime_late_total = realtime_late_total_;
  {
    const int cx = static_cast<int>(RequestClass::kComplex);
    std::lock_guard<std::mutex> lock(admission_mu_);
    admission_view_.cost = s.cost;
    admission_view_.complex_present = s.running_requests[cx] + s.waiting_requests[cx] > 0;
  }
  if (ran && steps_ran_ > kColdSteps) {
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(wall3 - wall0).count();
    const int64_t prev = step_ema_us_.load(std::memory_order_relaxed);
    step_ema_us_.store(prev == 0 ? us : (prev * 7 + us) / 8, std::memory_order_relaxed);
  }
  if (stats_callback_ && (ran || !stats.finished.empty())) stats_callback_(stats);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    last_stats_ = std::move(stats);
  }
  return ran;
}

void EngineCore::ProcessEvents(TimePoint now, EngineStats* stats) {
  // Stop strings finish requests while events are handled, which adds events: loop until quiet.
  for (;;) {
    std::vector<scheduler::RequestEvent> events = scheduler_->TakeEvents();
    if (events.empty()) return;
    for (const scheduler::RequestEvent& ev : events) {
      auto it = live_.find(ev.request_id);
      if (it == live_.end()) continue;
      Live& live = it->second;
      switch (ev.type) {
        case scheduler::RequestEvent::Type::kStarted:
          live.started = true;
          live.outcome.timings.first_scheduled = now;
          live.outcome.cached_prompt_tokens = ev.cached_prompt_tokens;
          Unqueue(live.outcome.cls);
          break;
        case scheduler::RequestEvent::Type::kToken:
          OnToken(ev.request_id, live, ev, now);
          break;
        case scheduler::RequestEvent::Type::kFinished:
          OnFinished(ev.request_id, live, ev, now, stats);
          live_.erase(it);
          break;
      }
    }
  }
}

void EngineCore::OnToken(RequestId id, Live& live, const scheduler::RequestEvent& ev, TimePoint now) {
  if (live.outcome.finish_reason != FinishReason::kNone) return;
  auto& timings = live.outcome.timings;
  if (timings.token_times.empty()) timings.first_token = now;
  timings.token_times.push_back(now);
  ++live.outcome.generated_tokens;
  live.has_pending = true;
  live.pending.token_ids.push_back(ev.token.token);
  live.pending.logprobs.push_back(ev.token.logprob);
  if (!ev.top.empty()) live.pending.top_logprobs.push_back(ev.top);
  if (live.text) {
    TextStream::Delta d = live.text->Push(ev.token.token);
    live.pending.text += d.text;
    if (d.stopped) {
      live.outcome.finish_reason = FinishReason::kStopString;
      scheduler_->Finish(id, FinishReason::kStopString);
    }
  }
}

void EngineCore::OnFinished(RequestId id, Live& live, const scheduler::RequestEvent& ev, TimePoint now,
                            EngineStats* stats) {
  if (!live.started) Unqueue(live.outcome.cls);
  ReleaseRealtimeWork(live);
  RequestOutcome& o = live.outcome;
  // A stop string seen in this step wins over a max-tokens/EOS finish of the same token.
  if (o.finish_reason != FinishReason::kStopString) o.finish_reason = ev.finish_reason;
  o.status = StatusFor(o.finish_reason, execute_error_);
  o.timings.end = now;
  if (live.text && o.finish_reason != FinishReason::kStopString) {
    std::string rest = live.text->Flush();
    if (!rest.empty()) {
      live.pending.text += rest;
      live.has_pending = true;
    }
  }
  if (live.is_recommend && ev.finish_reason == FinishReason::kScored) {
    o.ranked = RankCandidates(ev.scores, live.rank_by, live.top_k);
  }
  if (live.has_pending) {
    live.stream->PushDelta(std::move(live.pending));
    live.has_pending = false;
  }
  if (stats != nullptr) {
    FinishedRequestStats f;
    f.cls = o.cls;
    f.finish_reason = o.finish_reason;
    f.is_recommend = live.is_recommend;
    const TimePoint started = live.started ? o.timings.first_scheduled : now;
    f.queue_seconds = Seconds(o.timings.arrival, started);
    if (!o.timings.token_times.empty()) f.ttft_seconds = Seconds(o.timings.arrival, o.timings.first_token);
    for (size_t i = 1; i < o.timings.token_times.size(); ++i) {
      f.inter_token_seconds.push_back(Seconds(o.timings.token_times[i - 1], o.timings.token_times[i]));
    }
    f.e2e_seconds = Seconds(o.timings.arrival, now);
    f.prompt_tokens = o.prompt_tokens;
    f.cached_prompt_tokens = o.cached_prompt_tokens;
    f.generated_tokens = o.generated_tokens;
    f.late = o.cls == RequestClass::kRealtime && now > live.deadline;
    if (f.late) ++realtime_late_total_;
    stats->finished.push_back(std::move(f));
  }
  live.stream->Finish(std::move(o));
  (void)id;
}

void EngineCore::CancelAll() {
  DrainIntake();
  std::vector<RequestId> ids;
  ids.reserve(live_.size());
  for (const auto& [id, live] : live_) ids.push_back(id);
  for (RequestId id : ids) scheduler_->Finish(id, FinishReason::kCancelled);
  EngineStats stats;
  ProcessEvents(now_(), &stats);
}

EngineStats EngineCore::LastStats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return last_stats_;
}

}  // namespace inferd::engine
