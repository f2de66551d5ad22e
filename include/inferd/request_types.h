// Small plain types shared by scheduler/, engine/ and server/: the latency class of a request and why it ended.
#pragma once

#include <chrono>
#include <cstdint>

namespace inferd {

using RequestId = uint64_t;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Latency class (DESIGN.md section 1). Values index per-class arrays.
enum class RequestClass : int32_t {
  kRealtime = 0,  // earliest deadline first; never preempted by complex work
  kComplex = 1,   // first come first served; preemptible; bounded wait
};
inline constexpr int kNumRequestClasses = 2;

enum class FinishReason : int32_t {
  kNone = 0,           // still running
  kEos,                // sampled an EOS id or a request stop token id
  kStopString,         // generated text matched a stop string
  kMaxTokens,          // generated max_tokens tokens
  kContextLength,      // prompt + generated reached the model's context limit
  kScored,             // Recommend: every candidate scored
  kCancelled,          // caller cancelled
  kDeadlineExceeded,   // the request's deadline passed
  kError,              // the forward pass failed (INTERNAL)
};

const char* RequestClassName(RequestClass cls);   // "realtime" | "complex"
const char* FinishReasonName(FinishReason reason);  // "eos", "stop_string", ...

}  // namespace inferd
