// Small scheduling policies, each testable alone. The Scheduler composes them; none holds requests.
#pragma once

#include <chrono>
#include <cstdint>

#include "inferd/status.h"
#include "scheduler/scheduler_options.h"
#include "scheduler/sequence.h"

namespace inferd::scheduler {

// Tokens left in the current step.
class TokenBudget {
 public:
  explicit TokenBudget(int32_t total) : remaining_(total) {}
  int32_t remaining() const { return remaining_; }
  bool exhausted() const { return remaining_ <= 0; }
  // Grants min(want, remaining) tokens.
  int32_t Take(int32_t want);
  void Refund(int32_t n) { remaining_ += n; }

 private:
  int32_t remaining_;
};

// Who goes first: realtime (and promoted complex) by earliest deadline, then complex by arrival.
class ClassOrdering {
 public:
  explicit ClassOrdering(const SchedulerOptions& options) : options_(options) {}

  PriorityKey Key(const Sequence& seq) const;
  // EDF key of a new request: its own deadline, else arrival + the class default.
  TimePoint EdfDeadline(const RequestSpec& spec) const;
  // A complex sequence waiting past the starvation bound joins the realtime tier.
  bool ShouldPromote(const Sequence& seq, TimePoint now) const;
  TimePoint PromotedDeadline(const Sequence& seq) const { return seq.waiting_since + options_.complex_max_wait; }

 private:
  const SchedulerOptions& options_;
};

// What fits: running slots, prefill chunk size, and whether a request can ever fit the pool.
class CapacityPolicy {
 public:
  CapacityPolicy(const SchedulerOptions& options, int32_t num_blocks, int32_t block_size);

  bool HasRunningSlot(int32_t num_running) const { return num_running < options_.max_running; }
  // Tokens to feed `seq` this step given the budget left.
  int32_t ChunkSize(const Sequence& seq, int32_t budget_left) const;
  // Context limit actually enforced: the model's, capped by what the whole pool can hold.
  int32_t effective_max_len() const { return effective_max_len_; }
  // INVALID_ARGUMENT (naming `field`) when `num_tokens` can never be held: beyond the context limit.
  Status CheckFits(const char* field, int64_t num_tokens) const;

 private:
  const SchedulerOptions& options_;
  int32_t effective_max_len_;
};

// Bounded per-class queues of not-yet-started requests.
class AdmissionPolicy {
 public:
  explicit AdmissionPolicy(const SchedulerOptions& options) : options_(options) {}
  int32_t Capacity(RequestClass cls) const;
  // RESOURCE_EXHAUSTED with a retry hint in the message when the class queue is full.
  Status Check(RequestClass cls, int32_t num_waiting, std::chrono::milliseconds retry_after) const;

 private:
  const SchedulerOptions& options_;
};

}  // namespace inferd::scheduler
