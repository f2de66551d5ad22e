// What keeping a model's memory resident achieved (common/memory_residency.h does it; docs/lifecycle.md).
#pragma once

#include <cstdint>
#include <string>

namespace inferd {

struct ResidencyReport {
  std::string requested;        // models[].residency: lock | prefault | none
  std::string achieved;         // locked | prefaulted | none
  int64_t bytes = 0;            // in the ranges (overlaps counted once)
  int64_t locked_bytes = 0;     // pages held by mlock (whole pages inside the ranges)
  std::string fallback_reason;  // why lock fell back to prefault ("" when it did not)
  double seconds = 0;           // time the lock or prefault took
};

}  // namespace inferd
