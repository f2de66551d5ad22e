#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cassert>
#include <limits>
#include <string>
#include <unordered_set>

namespace inferd::scheduler {

struct Scheduler::StepState {
  explicit StepState(int32_t budget_tokens) : budget(budget_tokens) {}
  SchedulerOutput out;
  TokenBudget budget;
  std::vector<Sequence*> chunk_seqs;          // parallel to out.batch.chunks; nullptr once removed
  std::unordered_map<SeqId, size_t> chunk_of;  // live chunks only
  std::unordered_set<SeqId> preempted;         // not re-admitted in the step that preempted them
  StepFeatures features;                       // of the chunks added so far (steps = 1)
  // Realtime share: while other realtime requests are live, one request's tokens in this step.
  bool share_cap = false;
  int32_t share_tokens = 0;
  std::unordered_map<const Request*, int32_t> request_tokens;
  // Complex allowance while realtime work is active: predicted seconds complex chunks may add.
  bool cap_complex = false;
  double complex_allow = 0.0;
  double complex_floor = 0.0;  // complex_min_share of the step: chunks join until it is crossed
  double complex_used = 0.0;
  int32_t complex_chunks = 0;
  bool complex_held_back = false;  // the allowance cut or skipped a complex chunk
};

namespace {

bool NeedsHistory(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options, int32_t num_blocks, int32_t block_size,
                     bool enable_prefix_caching)
    : options_(options),
      ordering_(options_),
      capacity_(options_, num_blocks, block_size),
      admission_(options_),
      kv_(num_blocks, block_size, enable_prefix_caching) {}

Status Scheduler::Validate(const RequestSpec& spec) const {
  if (spec.prompt.empty()) {
    return InvalidArgument(spec.is_recommend() ? "context: must not be empty" : "prompt: must not be empty");
  }
  if (spec.max_tokens < 0) return InvalidArgument("max_tokens: must be >= 0");
  if (spec.is_recommend()) {
    if (static_cast<int32_t>(spec.candidates.size()) > options_.max_candidates) {
      return InvalidArgument("candidates: " + std::to_string(spec.candidates.size()) + " exceeds the limit of " +
                             std::to_string(options_.max_candidates));
    }
    size_t longest = 0;
    for (size_t i = 0; i < spec.candidates.size(); ++i) {
      if (spec.candidates[i].empty()) {
        return InvalidArgument("candidates[" + std::to_string(i) + "]: must not be empty");
      }
      longest = std::max(longest, spec.candidates[i].size());
    }
    return capacity_.CheckFits("context+candidate", static_cast<int64_t>(spec.prompt.size() + longest));
  }
  return capacity_.CheckFits("prompt", static_cast<int64_t>(spec.prompt.size()));
}

Status Scheduler::AddRequest(RequestSpec spec) {
  if (Status s = Validate(spec); !s.ok()) return s;
  if (requests_.count(spec.id)) return InvalidArgument("request_id: duplicate");
  const int cls_index = static_cast<int>(spec.cls);
  if (Status s = admission_.Check(spec.cls, unstarted_[cls_index], std::chrono::milliseconds(100)); !s.ok()) {
    return s;
  }
  auto req = std::make_unique<Request>();
  req->cls = spec.cls;
  req->order = next_order_++;
  req->edf_deadline = ordering_.EdfDeadline(spec);
  req->spec = std::move(spec);
  Request* r = req.get();
  if (r->spec.deadline) deadlines_.emplace(*r->spec.deadline, r->spec.id);
  ++unstarted_[cls_index];
  ++live_requests_[cls_index];

  const int32_t bs = kv_.block_size();
  const int32_t ctx_len = static_cast<int32_t>(r->spec.prompt.size());
  // A Recommend whose context has a shareable full block is prefilled once before its candidates.
  const bool needs_context = r->spec.is_recommend() && (ctx_len - 1) / bs > 0;
  requests_.emplace(r->spec.id, std::move(req));
  if (!r->spec.is_recommend() || needs_context) {
    auto seq = std::make_unique<Sequence>();
    seq->id = next_seq_id_++;
    seq->request = r;
    seq->kind = r->spec.is_recommend() ? SeqKind::kScoreContext : SeqKind::kGenerate;
    seq->tokens = r->spec.prompt;
    seq->prompt_len = ctx_len;
    seq->waiting_since = r->spec.arrival;
    seqs_[seq->id] = seq.get();
    EnqueueWaiting(seq.get());
    r->seqs.push_back(std::move(seq));
  } else {
    SpawnCandidates(r, r->spec.arrival);
  }
  return Status::Ok();
}

void Scheduler::SpawnCandidates(Request* req, TimePoint now) {
  const auto& ctx = req->spec.prompt;
  for (size_t i = 0; i < req->spec.candidates.size(); ++i) {
    auto seq = std::make_unique<Sequence>();
    seq->id = next_seq_id_++;
    seq->request = req;
    seq->kind = SeqKind::kScoreCandidate;
    seq->tokens.reserve(ctx.size() + req->spec.candidates[i].size());
    seq->tokens.insert(seq->tokens.end(), ctx.begin(), ctx.end());
    seq->tokens.insert(seq->tokens.end(), req->spec.candidates[i].begin(), req->spec.candidates[i].end());
    seq->prompt_len = seq->len();
    seq->sub_order = static_cast<int32_t>(i) + 1;
    seq->score_begin = static_cast<int32_t>(ctx.size()) - 1;
    seq->waiting_since = now;
    seqs_[seq->id] = seq.get();
    EnqueueWaiting(seq.get());
    req->seqs.push_back(std::move(seq));
  }
}

void Scheduler::EnqueueWaiting(Sequence* seq) {
  seq->state = SeqState::kWaiting;
  const PriorityKey key = ordering_.Key(*seq);
  if (key.tier == 0) {
    urgent_.emplace(key, seq);
  } else {
    complex_.emplace(key, seq);
    complex_by_wait_.emplace(seq->waiting_since, key.request_order, key.sub_order, seq);
  }
}

void Scheduler::RemoveWaiting(Sequence* seq) {
  const PriorityKey key = ordering_.Key(*seq);
  if (key.tier == 0) {
    urgent_.erase(key);
  } else {
    complex_.erase(key);
    complex_by_wait_.erase({seq->waiting_since, key.request_order, key.sub_order, seq});
  }
}

void Scheduler::RemoveRunning(Sequence* seq) {
  auto it = std::find(running_.begin(), running_.end(), seq);
  if (it != running_.end()) running_.erase(it);
}

void Scheduler::Finish(RequestId id, FinishReason reason) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  FinishRequest(it->second.get(), reason);
}

void Scheduler::ReleaseSequence(Sequence* seq) {
  switch (seq->state) {
    case SeqState::kWaiting: RemoveWaiting(seq); break;
    case SeqState::kRunning: RemoveRunning(seq); break;
    case SeqState::kHolding:
    case SeqState::kFinished: break;
  }
  if (kv_.Has(seq->id)) {
    kv_.Free(seq->id);
    released_.push_back(seq->id);
  }
  seq->state = SeqState::kFinished;
  seqs_.erase(seq->id);
}

void Scheduler::FinishRequest(Request* req, FinishReason reason) {
  for (auto& seq : req->seqs) {
    if (seq->state != SeqState::kFinished) ReleaseSequence(seq.get());
  }
  if (!req->started) --unstarted_[static_cast<int>(req->cls)];
  --live_requests_[static_cast<int>(req->cls)];
  if (req->spec.deadline) deadlines_.erase({*req->spec.deadline, req->spec.id});
  RequestEvent ev;
  ev.type = RequestEvent::Type::kFinished;
  ev.request_id = req->spec.id;
  ev.finish_reason = reason;
  if (reason == FinishReason::kScored) {
    for (auto& seq : req->seqs) {
      if (seq->kind != SeqKind::kScoreCandidate) continue;
      CandidateScore cs;
      cs.index = seq->sub_order - 1;
      cs.num_tokens = static_cast<int32_t>(seq->score_logprobs.size());
      for (float lp : seq->score_logprobs) cs.sum_logprob += lp;
      ev.scores.push_back(cs);
    }
  }
  events_.push_back(std::move(ev));
  const RequestId id = req->spec.id;
  requests_.erase(id);  // destroys req and its sequences
}

void Scheduler::MarkStarted(Request* req, int32_t cached_tokens) {
  if (req->started) return;
  req->started = true;
  --unstarted_[static_cast<int>(req->cls)];
  RequestEvent ev;
  ev.type = RequestEvent::Type::kStarted;
  ev.request_id = req->spec.id;
  ev.cached_prompt_tokens = cached_tokens;
  events_.push_back(std::move(ev));
}

void Scheduler::ExpireDeadlines(TimePoint now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const RequestId id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = requests_.find(id);
    if (it != requests_.end()) FinishRequest(it->second.get(), FinishReason::kDeadlineExceeded);
  }
}

bool Scheduler::HasPromoted() const {
  for (const Sequence* seq : running_) {
    if (seq->promoted) return true;
  }
  for (const auto& [key, seq] : urgent_) {
    if (seq->promoted) return true;
  }
  return false;
}

void Scheduler::PromoteStarved(TimePoint now) {
  // At most one promoted complex sequence is live (waiting or running) at a time. A promoted sequence's
  // deadline is already past, so it outranks every realtime request; under sustained complex overload every
  // waiting complex sequence passes the bound, and promoting them all would hand the realtime tier to
  // complex work. One at a time still guarantees complex progress while realtime work saturates the engine.
  if (complex_by_wait_.empty() || HasPromoted()) return;
  Sequence* seq = std::get<3>(*complex_by_wait_.begin());
  if (!ordering_.ShouldPromote(*seq, now)) return;
  RemoveWaiting(seq);
  seq->promoted = true;
  EnqueueWaiting(seq);
}

bool Scheduler::HasRunnableComplex() const {
  if (!complex_.empty()) return true;
  for (const Sequence* seq : running_) {
    if (ordering_.Key(*seq).tier == 1) return true;
  }
  return false;
}

bool Scheduler::HasRealtimeWork() const { return live_requests_[static_cast<int>(RequestClass::kRealtime)] > 0; }

SchedulerOutput Scheduler::Schedule(TimePoint now) {
  now_ = now;
  ExpireDeadlines(now);
  PromoteStarved(now);
  StepState st(options_.max_num_batched_tokens);
  st.out.batch.block_size = kv_.block_size();
  st.features.steps = 1;
  std::sort(running_.begin(), running_.end(), [this](const Sequence* a, const Sequence* b) {
    return ordering_.Key(*a) < ordering_.Key(*b);
  });
  const bool realtime_active = HasRealtimeWork();
  // Tier 0 (realtime and promoted) first: decodes, then prefills with each realtime request held to its
  // share while others are live, then whatever budget they left.
  st.share_cap = live_requests_[static_cast<int>(RequestClass::kRealtime)] > 1;
  st.share_tokens = std::max(1, static_cast<int32_t>(options_.realtime_max_request_share *
                                                     options_.max_num_batched_tokens));
  // Complex work with something runnable keeps complex_min_share of the token budget through tier 0.
  const int32_t reserve = HasRunnableComplex() ? static_cast<int32_t>(std::ceil(
                                                     std::clamp(options_.complex_min_share, 0.0, 0.95) *
                                                     options_.max_num_batched_tokens))
                                               : 0;
  const int32_t held = st.budget.Take(reserve);
  ScheduleDecodes(st, 0);
  SchedulePrefills(st, 0);
  if (st.share_cap) {
    st.share_cap = false;
    SchedulePrefills(st, 0);
  }
  st.budget.Refund(held);
  // Tier 1 (complex) within the time the realtime budget leaves, but never below its minimum share.
  if (realtime_active && cost_.ready()) {
    const double rt = cost_.Predict(st.features);
    const double budget = std::chrono::duration<double>(options_.realtime_step_budget).count();
    const double share = std::clamp(options_.complex_min_share, 0.0, 0.95);
    st.cap_complex = true;
    st.complex_floor = rt * share / (1.0 - share);
    st.complex_allow = std::max(budget - rt, st.complex_floor);
  }
  ScheduleDecodes(st, 1);
  SchedulePrefills(st, 1);

  // Drop chunks of sequences preempted after being scheduled.
  SchedulerOutput out;
  out.batch.block_size = st.out.batch.block_size;
  out.num_preempted = st.out.num_preempted;
  out.realtime_active = realtime_active;
  out.features.steps = 1;
  StepFeatures complex_features;
  out.batch.chunks.reserve(st.out.batch.chunks.size());
  for (size_t i = 0; i < st.out.batch.chunks.size(); ++i) {
    Sequence* seq = st.chunk_seqs[i];
    if (seq == nullptr) continue;
    auto& chunk = st.out.batch.chunks[i];
    const bool decode = seq->is_decode();
    (decode ? out.num_decode_tokens : out.num_prefill_tokens) += static_cast<int32_t>(chunk.tokens.size());
    const StepFeatures f = ChunkFeatures(chunk, decode);
    out.features += f;
    if (ordering_.Key(*seq).tier == 1) complex_features += f;
    out.batch.chunks.push_back(std::move(chunk));
  }
  out.predicted_seconds = cost_.Predict(out.features);
  out.complex_predicted_seconds = cost_.Predict(complex_features);
  out.complex_capped = st.complex_held_back;
  out.batch.released = std::move(released_);
  released_.clear();
  return out;
}

StepFeatures Scheduler::SeqChunkFeatures(const Sequence& seq, int32_t start, int32_t n) const {
  SequenceChunk probe;
  probe.start_pos = start;
  probe.tokens.resize(static_cast<size_t>(n));
  const int32_t end = start + n;
  if (seq.kind == SeqKind::kGenerate) {
    probe.sample = end == seq.len();
  } else if (seq.kind == SeqKind::kScoreCandidate) {
    const int32_t first = std::max(start, seq.score_begin);
    const int32_t last = std::min(end, seq.len() - 1);
    if (last > first) probe.score_index.resize(static_cast<size_t>(last - first));
  }
  return ChunkFeatures(probe, seq.is_decode());
}

int32_t Scheduler::Allowed(StepState& st, const Sequence& seq, int32_t start, int32_t n) const {
  if (n <= 0) return 0;
  if (ordering_.Key(seq).tier == 0) {
    if (!st.share_cap || seq.request->cls != RequestClass::kRealtime) return n;
    auto it = st.request_tokens.find(seq.request);
    const int32_t used = it == st.request_tokens.end() ? 0 : it->second;
    return std::clamp(st.share_tokens - used, 0, n);
  }
  if (!st.cap_complex) return n;
  // Largest m <= n whose predicted cost fits `left` (cost grows with m).
  auto fit = [&](double left) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
      const int32_t mid = lo + (hi - lo + 1) / 2;
      if (cost_.Predict(SeqChunkFeatures(seq, start, mid)) <= left) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  };
  int32_t lo = fit(st.complex_allow - st.complex_used);
  // Below the floor, a chunk may cross it by one token or row (a decode row cannot be split).
  if (lo < n && st.complex_used < st.complex_floor) {
    lo = std::max(lo, std::min(n, fit(st.complex_floor - st.complex_used) + 1));
  }
  if (lo < n) st.complex_held_back = true;
  if (lo == 0 && st.complex_chunks == 0) return seq.is_decode() ? 1 : std::min(n, kMinComplexChunkTokens);
  return lo;
}

void Scheduler::ScheduleDecodes(StepState& st, int32_t tier) {
  const std::vector<Sequence*> order = running_;
  for (Sequence* seq : order) {
    if (st.budget.exhausted()) break;
    if (seq->state != SeqState::kRunning || !seq->is_decode() || st.chunk_of.count(seq->id)) continue;
    if (ordering_.Key(*seq).tier != tier) continue;
    if (Allowed(st, *seq, seq->num_computed, 1) == 0) {
      if (tier == 1) break;
      continue;
    }
    if (!GrowWithPreemption(st, seq, seq->num_computed + 1)) continue;
    AddChunk(st, seq, 1);
  }
}

void Scheduler::SchedulePrefills(StepState& st, int32_t tier) {
  // Merge, by priority: running sequences mid-prefill, then waiting sequences of this tier.
  std::vector<Sequence*> mid;
  for (Sequence* seq : running_) {
    if (!seq->is_decode() && st.chunk_of.count(seq->id) == 0 && ordering_.Key(*seq).tier == tier) mid.push_back(seq);
  }
  std::map<PriorityKey, Sequence*>& waiting = tier == 0 ? urgent_ : complex_;
  size_t mid_i = 0;
  bool waiting_blocked = false;
  auto wait_it = waiting.begin();
  while (!st.budget.exhausted()) {
    while (mid_i < mid.size() && mid[mid_i]->state != SeqState::kRunning) ++mid_i;
    while (!waiting_blocked && wait_it != waiting.end() && st.preempted.count(wait_it->second->id)) ++wait_it;
    Sequence* best = nullptr;
    int source = -1;
    PriorityKey best_key;
    auto consider = [&](Sequence* seq, int src) {
      const PriorityKey key = ordering_.Key(*seq);
      if (best == nullptr || key < best_key) {
        best = seq;
        best_key = key;
        source = src;
      }
    };
    if (mid_i < mid.size()) consider(mid[mid_i], 0);
    if (!waiting_blocked && wait_it != waiting.end()) consider(wait_it->second, 1);
    if (best == nullptr) break;
    if (source == 0) {
      ++mid_i;
    } else {
      ++wait_it;  // before AdmitWaiting: admitting removes best from `waiting`
    }
    if (Allowed(st, *best, best->num_computed, 1) == 0) {
      if (tier == 1) break;  // the complex allowance is spent
      continue;              // this realtime request has its share; others go first
    }
    if (source == 0) {
      ScheduleRunningPrefill(st, best);
    } else if (!AdmitWaiting(st, best)) {
      waiting_blocked = true;
    }
  }
}

bool Scheduler::ScheduleRunningPrefill(StepState& st, Sequence* seq) {
  const int32_t n = Allowed(st, *seq, seq->num_computed, capacity_.ChunkSize(*seq, st.budget.remaining()));
  if (n <= 0) return false;
  if (!GrowWithPreemption(st, seq, seq->num_computed + n)) return false;
  AddChunk(st, seq, n);
  return true;
}

bool Scheduler::AdmitWaiting(StepState& st, Sequence* seq) {
  const PriorityKey key = ordering_.Key(*seq);
  while (!capacity_.HasRunningSlot(static_cast<int32_t>(running_.size()))) {
    Sequence* victim = PickVictim(key);
    if (victim == nullptr) return false;
    Preempt(st, victim);
  }
  kv_cache::PrefixMatch match = kv_.FindCachedPrefix(seq->tokens, seq->max_cached_tokens());
  for (;;) {
    const int32_t base = match.num_tokens;
    const int32_t n = Allowed(st, *seq, base,
                              std::min({seq->len() - base, st.budget.remaining(), options_.max_prefill_chunk_tokens}));
    if (n <= 0) return false;
    if (kv_.FreeBlocksNeeded(seq->id, match, base + n) <= kv_.NumFreeBlocks()) {
      const bool ok = kv_.Allocate(seq->id, match, base + n, seq->max_cached_tokens());
      assert(ok);
      (void)ok;
      break;
    }
    Sequence* victim = PickVictim(key);
    if (victim == nullptr) return false;
    Preempt(st, victim);
  }
  RemoveWaiting(seq);
  seq->state = SeqState::kRunning;
  seq->num_computed = match.num_tokens;
  seq->started = true;
  running_.push_back(seq);
  MarkStarted(seq->request, match.num_tokens);
  const int32_t n = Allowed(st, *seq, seq->num_computed,
                            std::min({seq->remaining(), st.budget.remaining(), options_.max_prefill_chunk_tokens}));
  AddChunk(st, seq, n);
  return true;
}

bool Scheduler::GrowWithPreemption(StepState& st, Sequence* seq, int32_t num_tokens) {
  const PriorityKey key = ordering_.Key(*seq);
  while (!kv_.Grow(seq->id, num_tokens)) {
    Sequence* victim = PickVictim(key);
    if (victim == nullptr) return false;
    Preempt(st, victim);
  }
  return true;
}

Sequence* Scheduler::PickVictim(const PriorityKey& above) const {
  Sequence* victim = nullptr;
  PriorityKey victim_key;
  for (Sequence* seq : running_) {
    const PriorityKey key = ordering_.Key(*seq);
    if (!(above < key)) continue;
    if (victim == nullptr || victim_key < key) {
      victim = seq;
      victim_key = key;
    }
  }
  return victim;
}

void Scheduler::Preempt(StepState& st, Sequence* victim) {
  auto it = st.chunk_of.find(victim->id);
  if (it != st.chunk_of.end()) {
    st.budget.Refund(static_cast<int32_t>(st.out.batch.chunks[it->second].tokens.size()));
    st.chunk_seqs[it->second] = nullptr;
    st.chunk_of.erase(it);
  }
  RemoveRunning(victim);
  kv_.Free(victim->id);
  released_.push_back(victim->id);
  victim->num_computed = 0;
  victim->score_logprobs.clear();
  victim->waiting_since = now_;
  ++victim->num_preemptions;
  ++preemptions_total_;
  ++st.out.num_preempted;
  st.preempted.insert(victim->id);
  EnqueueWaiting(victim);
}

void Scheduler::AddChunk(StepState& st, Sequence* seq, int32_t n) {
  n = st.budget.Take(n);
  assert(n > 0);
  const StepFeatures f = SeqChunkFeatures(*seq, seq->num_computed, n);
  st.features += f;
  if (ordering_.Key(*seq).tier == 1) {
    st.complex_used += cost_.Predict(f);
    ++st.complex_chunks;
  } else {
    st.request_tokens[seq->request] += n;
  }
  SequenceChunk chunk;
  chunk.seq_id = seq->id;
  chunk.start_pos = seq->num_computed;
  chunk.tokens.assign(seq->tokens.begin() + seq->num_computed, seq->tokens.begin() + seq->num_computed + n);
  chunk.block_table = kv_.Blocks(seq->id);
  const int32_t end = seq->num_computed + n;
  const Request& req = *seq->request;
  if (seq->kind == SeqKind::kGenerate) {
    chunk.sample = end == seq->len();
    chunk.sampling = req.spec.sampling;
    chunk.sample_index = static_cast<uint64_t>(seq->num_generated());
    if (chunk.sample && NeedsHistory(req.spec.sampling)) chunk.history = seq->tokens;
  } else if (seq->kind == SeqKind::kScoreCandidate) {
    const int32_t first = std::max(seq->num_computed, seq->score_begin);
    const int32_t last = std::min(end, seq->len() - 1);  // exclusive
    for (int32_t p = first; p < last; ++p) {
      chunk.score_index.push_back(p - seq->num_computed);
      chunk.score_targets.push_back(seq->tokens[p + 1]);
    }
  }
  st.chunk_of[seq->id] = st.out.batch.chunks.size();
  st.chunk_seqs.push_back(seq);
  st.out.batch.chunks.push_back(std::move(chunk));
}

bool Scheduler::CheckStop(Sequence* seq, TokenId token, FinishReason* reason) const {
  const RequestSpec& spec = seq->request->spec;
  if (!spec.ignore_eos &&
      std::find(options_.eos_token_ids.begin(), options_.eos_token_ids.end(), token) != options_.eos_token_ids.end()) {
    *reason = FinishReason::kEos;
    return true;
  }
  if (std::find(spec.stop_token_ids.begin(), spec.stop_token_ids.end(), token) != spec.stop_token_ids.end()) {
    *reason = FinishReason::kEos;
    return true;
  }
  if (spec.max_tokens > 0 && seq->num_generated() >= spec.max_tokens) {
    *reason = FinishReason::kMaxTokens;
    return true;
  }
  if (seq->len() >= capacity_.effective_max_len()) {
    *reason = FinishReason::kContextLength;
    return true;
  }
  return false;
}

void Scheduler::Update(const SchedulerOutput& output, const StepResult& result) {
  const auto& chunks = output.batch.chunks;
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto it = seqs_.find(chunks[i].seq_id);
    if (it == seqs_.end()) continue;
    Sequence* seq = it->second;
    if (seq->state != SeqState::kRunning || seq->num_computed != chunks[i].start_pos) continue;
    seq->num_computed += static_cast<int32_t>(chunks[i].tokens.size());
    kv_.CommitComputed(seq->id, seq->tokens, seq->num_computed);
    const SequenceResult* res = i < result.results.size() ? &result.results[i] : nullptr;
    switch (seq->kind) {
      case SeqKind::kGenerate: {
        if (!chunks[i].sample || res == nullptr || !res->sampled) break;
        seq->tokens.push_back(res->token.token);
        RequestEvent ev;
        ev.type = RequestEvent::Type::kToken;
        ev.request_id = seq->request->spec.id;
        ev.token = res->token;
        ev.top = res->top;
        events_.push_back(std::move(ev));
        FinishReason reason;
        if (CheckStop(seq, res->token.token, &reason)) FinishRequest(seq->request, reason);
        break;
      }
      case SeqKind::kScoreContext:
        if (seq->remaining() == 0) OnContextDone(seq);
        break;
      case SeqKind::kScoreCandidate:
        if (res != nullptr) {
          seq->score_logprobs.insert(seq->score_logprobs.end(), res->score_logprobs.begin(), res->score_logprobs.end());
        }
        if (seq->remaining() == 0) OnCandidateDone(seq);
        break;
    }
  }
}

void Scheduler::OnContextDone(Sequence* ctx) {
  RemoveRunning(ctx);
  ctx->state = SeqState::kHolding;  // keeps its blocks referenced until the request ends
  SpawnCandidates(ctx->request, now_);
}

void Scheduler::OnCandidateDone(Sequence* seq) {
  Request* req = seq->request;
  RemoveRunning(seq);
  kv_.Free(seq->id);
  released_.push_back(seq->id);
  seq->state = SeqState::kFinished;
  seqs_.erase(seq->id);
  if (++req->candidates_done == static_cast<int32_t>(req->spec.candidates.size())) {
    FinishRequest(req, FinishReason::kScored);
  }
}

void Scheduler::FailBatch(const SchedulerOutput& output) {
  for (const auto& chunk : output.batch.chunks) {
    auto it = seqs_.find(chunk.seq_id);
    if (it != seqs_.end()) FinishRequest(it->second->request, FinishReason::kError);
  }
}

std::vector<RequestEvent> Scheduler::TakeEvents() {
  std::vector<RequestEvent> out;
  out.swap(events_);
  return out;
}

SchedulerStats Scheduler::Stats() const {
  SchedulerStats s;
  for (const auto& [id, req] : requests_) {
    const int c = static_cast<int>(req->cls);
    (req->started ? s.running_requests : s.waiting_requests)[c]++;
  }
  for (const Sequence* seq : running_) s.running_seqs[static_cast<int>(seq->request->cls)]++;
  for (const auto& [key, seq] : urgent_) s.waiting_seqs[static_cast<int>(seq->request->cls)]++;
  s.waiting_seqs[static_cast<int>(RequestClass::kComplex)] += static_cast<int32_t>(complex_.size());
  s.kv_num_blocks = kv_.num_blocks();
  s.kv_free_blocks = kv_.NumFreeBlocks();
  s.kv_usage = kv_.Usage();
  s.preemptions_total = preemptions_total_;
  s.prefix = kv_.prefix_stats();
  s.cost = cost_.coefficients();
  return s;
}

}  // namespace inferd::scheduler
