// Scheduler-internal request and sequence state. Owned by the Scheduler; never shared across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "inferd/batch.h"
#include "inferd/request_types.h"

namespace inferd::scheduler {

enum class SeqKind : int32_t {
  kGenerate,        // prefill then sample until a stop condition
  kScoreContext,    // Recommend context: prefilled once, then held so candidates share its blocks
  kScoreCandidate,  // Recommend candidate: context + candidate prefilled, log-probs of candidate tokens
};

enum class SeqState : int32_t { kWaiting, kRunning, kHolding, kFinished };

// What the engine hands the scheduler for one request. Plain data.
struct RequestSpec {
  RequestId id = 0;
  RequestClass cls = RequestClass::kComplex;
  std::vector<TokenId> prompt;                    // Generate: prompt; Recommend: context
  std::vector<std::vector<TokenId>> candidates;   // non-empty marks a Recommend
  SamplingParams sampling;
  int32_t max_tokens = 0;                         // Generate: 0 = up to the context limit
  std::vector<TokenId> stop_token_ids;            // in addition to the model's EOS ids
  bool ignore_eos = false;
  TimePoint arrival{};
  std::optional<TimePoint> deadline;              // hard: expires with kDeadlineExceeded

  bool is_recommend() const { return !candidates.empty(); }
};

// Priority order used everywhere: smaller key runs first. Tier 0: realtime and promoted complex
// (earliest deadline first); tier 1: complex (first come first served).
struct PriorityKey {
  int32_t tier = 1;
  TimePoint deadline{};
  uint64_t request_order = 0;
  int32_t sub_order = 0;

  friend bool operator<(const PriorityKey& a, const PriorityKey& b) {
    if (a.tier != b.tier) return a.tier < b.tier;
    if (a.tier == 0 && a.deadline != b.deadline) return a.deadline < b.deadline;
    if (a.request_order != b.request_order) return a.request_order < b.request_order;
    return a.sub_order < b.sub_order;
  }
  friend bool operator==(const PriorityKey&, const PriorityKey&) = default;
};

struct Request;

struct Sequence {
  SeqId id = 0;
  Request* request = nullptr;  // owner; outlives the sequence
  SeqKind kind = SeqKind::kGenerate;
  SeqState state = SeqState::kWaiting;
  std::vector<TokenId> tokens;  // prompt (or context + candidate) then generated ids
  int32_t prompt_len = 0;
  int32_t num_computed = 0;     // positions [0, num_computed) are in the KV cache
  int32_t sub_order = 0;        // Recommend candidates: index + 1; context and Generate: 0
  bool promoted = false;        // complex sequence past the starvation bound; sticky
  TimePoint waiting_since{};    // arrival or last preemption
  bool started = false;         // ever got a running slot
  int32_t num_preemptions = 0;
  // Scoring: positions p in [score_begin, tokens.size() - 1) want log p(tokens[p + 1] | ...).
  int32_t score_begin = 0;
  std::vector<float> score_logprobs;

  int32_t len() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_generated() const { return len() - prompt_len; }
  int32_t remaining() const { return len() - num_computed; }
  // A decode: a generated token is the only thing left to feed.
  bool is_decode() const { return kind == SeqKind::kGenerate && num_generated() > 0 && remaining() == 1; }
  // Longest prefix the prefix cache may supply: the last position that needs logits must be computed.
  int32_t max_cached_tokens() const {
    return kind == SeqKind::kScoreCandidate ? score_begin : len() - 1;
  }
};

struct Request {
  RequestSpec spec;
  RequestClass cls = RequestClass::kComplex;
  uint64_t order = 0;                 // submit order, FCFS key
  TimePoint edf_deadline{};           // realtime EDF key
  bool started = false;               // some sequence got a running slot
  std::vector<std::unique_ptr<Sequence>> seqs;  // context (if any) first, then candidates
  int32_t candidates_done = 0;
  FinishReason finish = FinishReason::kNone;
};

}  // namespace inferd::scheduler
