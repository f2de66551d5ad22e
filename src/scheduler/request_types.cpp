#include "inferd/request_types.h"

namespace inferd {

const char* RequestClassName(RequestClass cls) {
  return cls == RequestClass::kRealtime ? "realtime" : "complex";
}

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kMaxTokens: return "max_tokens";
    case FinishReason::kContextLength: return "context_length";
    case FinishReason::kScored: return "scored";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kDeadlineExceeded: return "deadline_exceeded";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

}  // namespace inferd
