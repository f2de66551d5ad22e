#include "scheduler/policies.h"

#include <algorithm>
#include <string>

namespace inferd::scheduler {

int32_t TokenBudget::Take(int32_t want) {
  const int32_t n = std::max(0, std::min(want, remaining_));
  remaining_ -= n;
  return n;
}

PriorityKey ClassOrdering::Key(const Sequence& seq) const {
  PriorityKey key;
  const Request& req = *seq.request;
  key.request_order = req.order;
  key.sub_order = seq.sub_order;
  if (seq.promoted) {
    key.tier = 0;
    key.deadline = PromotedDeadline(seq);
  } else if (req.cls == RequestClass::kRealtime) {
    key.tier = 0;
    key.deadline = req.edf_deadline;
  } else {
    key.tier = 1;
  }
  return key;
}

TimePoint ClassOrdering::EdfDeadline(const RequestSpec& spec) const {
  if (spec.deadline) return *spec.deadline;
  if (spec.cls == RequestClass::kRealtime) return spec.arrival + options_.realtime_default_deadline;
  return spec.arrival + options_.complex_max_wait;
}

bool ClassOrdering::ShouldPromote(const Sequence& seq, TimePoint now) const {
  return !seq.promoted && seq.request->cls == RequestClass::kComplex && now >= PromotedDeadline(seq);
}

CapacityPolicy::CapacityPolicy(const SchedulerOptions& options, int32_t num_blocks, int32_t block_size)
    : options_(options) {
  const int64_t pool_tokens = int64_t{num_blocks} * block_size;
  effective_max_len_ = static_cast<int32_t>(std::min<int64_t>(options.max_model_len, pool_tokens));
}

int32_t CapacityPolicy::ChunkSize(const Sequence& seq, int32_t budget_left) const {
  int32_t n = std::min(seq.remaining(), budget_left);
  if (!seq.is_decode()) n = std::min(n, options_.max_prefill_chunk_tokens);
  return std::max(n, 0);
}

Status CapacityPolicy::CheckFits(const char* field, int64_t num_tokens) const {
  if (num_tokens <= effective_max_len_) return Status::Ok();
  const bool pool_bound = effective_max_len_ < options_.max_model_len;
  return InvalidArgument(std::string(field) + ": " + std::to_string(num_tokens) + " tokens can never fit (" +
                         (pool_bound ? "KV cache holds " : "context limit is ") +
                         std::to_string(effective_max_len_) + " tokens)");
}

int32_t AdmissionPolicy::Capacity(RequestClass cls) const {
  return cls == RequestClass::kRealtime ? options_.max_waiting_realtime : options_.max_waiting_complex;
}

Status AdmissionPolicy::Check(RequestClass cls, int32_t num_waiting, std::chrono::milliseconds retry_after) const {
  if (num_waiting < Capacity(cls)) return Status::Ok();
  return ResourceExhausted(std::string(RequestClassName(cls)) + " queue is full (" + std::to_string(num_waiting) +
                           " waiting); retry after " + std::to_string(retry_after.count()) + " ms");
}

}  // namespace inferd::scheduler
