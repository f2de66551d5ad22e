// Keeps large long-lived buffers (model weights, the KV pool) resident in RAM: locked with mlock so the
// kernel's reclaimer can never evict them, or at least prefaulted (every page touched once) so no request
// pays the fault. mlockall is not used: it would also pin every later allocation (request buffers, thread
// stacks) and the checkpoint's file mapping while it exists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "inferd/residency.h"

namespace inferd {

struct MemoryRange {
  const void* data = nullptr;
  size_t bytes = 0;
};

// Holds the mlock of whole pages inside `ranges` and releases it (munlock) on destruction: destroy it before
// the memory is freed. Only pages entirely inside a range are locked, so unlocking never touches a page of
// another allocation. The ranges must stay allocated and unmoved for the object's lifetime.
class ResidentMemory {
 public:
  using PageFn = int (*)(const void* addr, size_t len);  // mlock / munlock signature (tests pass fakes)

  // mode: "lock" (falls back to prefault, with the reason in the report, when any mlock fails, e.g. beyond
  // RLIMIT_MEMLOCK without CAP_IPC_LOCK: all-or-nothing, nothing stays locked), "prefault" or "none".
  static std::unique_ptr<ResidentMemory> Make(std::vector<MemoryRange> ranges, const std::string& mode,
                                              PageFn lock = nullptr, PageFn unlock = nullptr);
  ~ResidentMemory();
  ResidentMemory(const ResidentMemory&) = delete;
  ResidentMemory& operator=(const ResidentMemory&) = delete;

  const ResidencyReport& report() const { return report_; }

 private:
  ResidentMemory() = default;
  void UnlockAll();

  ResidencyReport report_;
  std::vector<MemoryRange> locked_;  // page-aligned
  PageFn unlock_ = nullptr;
};

// Sorted, overlapping and adjacent ranges merged (tied weights share storage).
std::vector<MemoryRange> MergeRanges(std::vector<MemoryRange> ranges);

// "RLIMIT_MEMLOCK 8.0 MiB" / "RLIMIT_MEMLOCK unlimited" for this process, for messages.
std::string MemlockLimitText();

}  // namespace inferd
