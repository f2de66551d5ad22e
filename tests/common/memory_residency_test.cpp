// ResidentMemory: the kernel's own accounting (VmLck in /proc/self/status) is the reference for what is locked.
#include "common/memory_residency.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "kernel_locks.h"

namespace inferd {
namespace {

// VmLck of this process in bytes.
int64_t LockedBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmLck:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

using inferd_test::kKernelSeesLocks;

struct Buffer {
  explicit Buffer(size_t bytes) : size(bytes) {
    data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  ~Buffer() { ::munmap(data, size); }
  void* data;
  size_t size;
};

TEST(ResidentMemory, LocksThePagesAndUnlocksThemWhenDestroyed) {
  const int64_t before = LockedBytes();
  ASSERT_GE(before, 0);
  Buffer a(2 << 20), b(1 << 20);
  {
    auto held = ResidentMemory::Make({{a.data, a.size}, {b.data, b.size}}, "lock");
    const ResidencyReport& r = held->report();
    if (r.achieved != "locked") GTEST_SKIP() << "mlock unavailable here: " << r.fallback_reason;
    EXPECT_EQ(r.bytes, 3 << 20);
    EXPECT_EQ(r.locked_bytes, 3 << 20);
    if (kKernelSeesLocks) {
      EXPECT_EQ(LockedBytes() - before, 3 << 20);
    }
  }
  EXPECT_EQ(LockedBytes(), before);
}

TEST(ResidentMemory, OnlyWholePagesInsideARangeAreLocked) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  Buffer a(8 * page);
  const int64_t before = LockedBytes();
  // [1, 6 pages + 2): starts inside page 0 and ends inside page 6, so pages 1..5 are inside.
  auto held = ResidentMemory::Make({{static_cast<char*>(a.data) + 1, 6 * page + 1}}, "lock");
  if (held->report().achieved != "locked") GTEST_SKIP() << held->report().fallback_reason;
  EXPECT_EQ(held->report().locked_bytes, static_cast<int64_t>(5 * page));
  if (kKernelSeesLocks) {
    EXPECT_EQ(LockedBytes() - before, static_cast<int64_t>(5 * page));
  }
}

int calls = 0;
int FailSecond(const void*, size_t) {
  if (++calls == 2) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}
std::vector<const void*> unlocked;
int RecordUnlock(const void* addr, size_t) {
  unlocked.push_back(addr);
  return 0;
}

TEST(ResidentMemory, AFailedLockFallsBackToPrefaultNamingTheLimitAndKeepsNothingLocked) {
  Buffer buf(3 << 20);  // ranges: its first and its last MiB (apart, so not merged)
  char* const first = static_cast<char*>(buf.data);
  char* const last = first + (2 << 20);
  calls = 0;
  unlocked.clear();
  auto held = ResidentMemory::Make({{last, 1 << 20}, {first, 1 << 20}}, "lock", FailSecond, RecordUnlock);
  const ResidencyReport& r = held->report();
  EXPECT_EQ(r.requested, "lock");
  EXPECT_EQ(r.achieved, "prefaulted");
  EXPECT_EQ(r.locked_bytes, 0);
  EXPECT_NE(r.fallback_reason.find("mlock of 2.0 MiB failed (Cannot allocate memory; RLIMIT_MEMLOCK"),
            std::string::npos)
      << r.fallback_reason;
  EXPECT_NE(r.fallback_reason.find("CAP_IPC_LOCK"), std::string::npos);
  ASSERT_EQ(unlocked.size(), 1u);  // the first range, locked before the second failed
  EXPECT_EQ(unlocked[0], first);
  held.reset();
  EXPECT_EQ(unlocked.size(), 1u);  // nothing left to release
}

TEST(ResidentMemory, PrefaultTouchesEveryPage) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pages = 64;
  Buffer a(pages * page);
  std::vector<unsigned char> resident(pages);
  ASSERT_EQ(::mincore(a.data, a.size, resident.data()), 0);
  int before = 0;
  for (unsigned char v : resident) before += v & 1;
  EXPECT_EQ(before, 0);  // fresh anonymous pages are not populated
  auto held = ResidentMemory::Make({{a.data, a.size}}, "prefault");
  EXPECT_EQ(held->report().achieved, "prefaulted");
  ASSERT_EQ(::mincore(a.data, a.size, resident.data()), 0);
  int after = 0;
  for (unsigned char v : resident) after += v & 1;
  EXPECT_EQ(after, static_cast<int>(pages));
}

TEST(ResidentMemory, NoneDoesNothingAndOverlapsCountOnce) {
  std::vector<char> buf(4096 * 4);
  auto held = ResidentMemory::Make({{buf.data(), 8192}, {buf.data() + 4096, 8192}, {buf.data(), 100}}, "none");
  EXPECT_EQ(held->report().achieved, "none");
  EXPECT_EQ(held->report().bytes, 12288);
  EXPECT_EQ(held->report().locked_bytes, 0);
  EXPECT_EQ(MergeRanges({{buf.data() + 8192, 10}, {buf.data(), 8192}}).size(), 1u);  // adjacent
}

}  // namespace
}  // namespace inferd
