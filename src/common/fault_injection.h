// Test-only fault points (docs/hardening.md). INFERD_FAULT("name") is `false` unless the translation unit is
// compiled with INFERD_FAULT_INJECTION, which only test targets do (inferd_worker_faults, the inferd_faults
// daemon under tests/); the shipped inferd binary has no fault points and links no fault code.
// With it, a point fires while the file named by $INFERD_FAULT_FILE holds the point's name on a line of
// its own, so a test arms and disarms a running daemon by rewriting the file. Points:
//   forward_throw  ModelRunner::Execute throws inside the forward pass
//   nan_logits     ModelRunner::Execute overwrites the step's logits with NaN
#pragma once

namespace inferd::fault {

// Reads $INFERD_FAULT_FILE on every call (test builds only); false when unset or unreadable.
bool Armed(const char* point);

}  // namespace inferd::fault

#ifdef INFERD_FAULT_INJECTION
#define INFERD_FAULT(point) (::inferd::fault::Armed(point))
#else
#define INFERD_FAULT(point) false
#endif
