#include "common/memory_residency.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace inferd {
namespace {

int SysLock(const void* addr, size_t len) {
  return ::mlock(addr, len);
}
int SysUnlock(const void* addr, size_t len) {
  return ::munlock(addr, len);
}

size_t PageSize() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

std::string Mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / (1 << 20));
  return buf;
}

// The whole pages inside `r`; bytes = 0 when it holds none.
MemoryRange InnerPages(const MemoryRange& r) {
  const size_t page = PageSize();
  const auto begin = reinterpret_cast<uintptr_t>(r.data);
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + r.bytes) / page * page;
  if (last <= first) return {nullptr, 0};
  return {reinterpret_cast<const void*>(first), last - first};
}

void Prefault(const std::vector<MemoryRange>& ranges) {
  const size_t page = PageSize();
  for (const MemoryRange& r : ranges) {
    const MemoryRange inner = InnerPages(r);
    if (inner.bytes > 0) ::madvise(const_cast<void*>(inner.data), inner.bytes, MADV_WILLNEED);
    const auto* p = static_cast<const volatile unsigned char*>(r.data);
    unsigned char sink = 0;
    for (size_t off = 0; off < r.bytes; off += page) sink ^= p[off];
    if (r.bytes > 0) sink ^= p[r.bytes - 1];
    (void)sink;
  }
}

}  // namespace

std::vector<MemoryRange> MergeRanges(std::vector<MemoryRange> ranges) {
  ranges.erase(std::remove_if(ranges.begin(), ranges.end(), [](const MemoryRange& r) { return r.bytes == 0; }),
               ranges.end());
  std::sort(ranges.begin(), ranges.end(), [](const MemoryRange& a, const MemoryRange& b) { return a.data < b.data; });
  std::vector<MemoryRange> out;
  for (const MemoryRange& r : ranges) {
    const auto* begin = static_cast<const char*>(r.data);
    if (!out.empty()) {
      MemoryRange& last = out.back();
      const auto* last_end = static_cast<const char*>(last.data) + last.bytes;
      if (begin <= last_end) {
        last.bytes =
            std::max<size_t>(last.bytes, static_cast<size_t>(begin + r.bytes - static_cast<const char*>(last.data)));
        continue;
      }
    }
    out.push_back(r);
  }
  return out;
}

std::string MemlockLimitText() {
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_MEMLOCK, &lim) != 0) return "RLIMIT_MEMLOCK unknown";
  if (lim.rlim_cur == RLIM_INFINITY) return "RLIMIT_MEMLOCK unlimited";
  return "RLIMIT_MEMLOCK " + Mib(static_cast<double>(lim.rlim_cur));
}

std::unique_ptr<ResidentMemory> ResidentMemory::Make(std::vector<MemoryRange> ranges, const std::string& mode,
                                                     PageFn lock, PageFn unlock) {
  const auto start = std::chrono::steady_clock::now();
  auto out = std::unique_ptr<ResidentMemory>(new ResidentMemory());
  out->unlock_ = unlock != nullptr ? unlock : SysUnlock;
  if (lock == nullptr) lock = SysLock;
  ranges = MergeRanges(std::move(ranges));
  ResidencyReport& rep = out->report_;
  rep.requested = mode;
  for (const MemoryRange& r : ranges) rep.bytes += static_cast<int64_t>(r.bytes);
  rep.achieved = "none";
  if (mode == "lock") {
    for (const MemoryRange& r : ranges) {
      const MemoryRange inner = InnerPages(r);
      if (inner.bytes == 0) continue;
      if (lock(inner.data, inner.bytes) != 0) {
        const int err = errno;
        rep.fallback_reason = "mlock of " + Mib(static_cast<double>(rep.bytes)) + " failed (" + std::strerror(err) +
                              "; " + MemlockLimitText() +
                              "): raise the limit (ulimit -l, systemd LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK";
        out->UnlockAll();
        break;
      }
      out->locked_.push_back(inner);
      rep.locked_bytes += static_cast<int64_t>(inner.bytes);
    }
    if (rep.fallback_reason.empty()) rep.achieved = "locked";
  }
  if (mode == "prefault" || (mode == "lock" && rep.achieved != "locked")) {
    Prefault(ranges);
    rep.achieved = "prefaulted";
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void ResidentMemory::UnlockAll() {
  for (const MemoryRange& r : locked_) unlock_(r.data, r.bytes);
  locked_.clear();
  report_.locked_bytes = 0;
}

ResidentMemory::~ResidentMemory() {
  UnlockAll();
}

}  // namespace inferd
