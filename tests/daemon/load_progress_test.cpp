// LoadProgress with a fake clock: what is logged when, and how a line reads.
#include "daemon/load_progress.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace inferd::daemon {
namespace {

using std::chrono::milliseconds;

struct Fake {
  std::chrono::steady_clock::time_point now{};
  std::vector<std::string> lines;
  LoadProgress Make() {
    return LoadProgress(
        "m: /ckpt", [this](const std::string& l) { lines.push_back(l); }, [this] { return now; });
  }
};

constexpr int64_t kMiB = 1 << 20;

TEST(LoadProgress, FormatsBytesRateAndEta) {
  // 300 MiB of 1 GiB after 2 s: 150 MiB/s, (1024 - 300) / 150 = 4.8 s left.
  EXPECT_EQ(LoadProgress::FormatProgress("m: /ckpt", 300 * kMiB, 1024 * kMiB, 2.0),
            "m: /ckpt: 300.0 MiB of 1.00 GiB (29%), 150.0 MiB/s, ETA 4.8 s");
  EXPECT_EQ(LoadProgress::FormatDone("m: /ckpt", 2765 * kMiB, 3.3), "m: /ckpt: 2.70 GiB read in 3.3 s (837.9 MiB/s)");
  EXPECT_EQ(LoadProgress::Bytes(512 * 1024), "0.5 MiB");
}

TEST(LoadProgress, AtMostOneLinePerSecondAndAFinalOne) {
  Fake f;
  LoadProgress p = f.Make();
  const int64_t total = 2048 * kMiB;
  for (int i = 1; i <= 35; ++i) {  // a tensor every 100 ms for 3.5 s
    f.now += milliseconds(100);
    p.Update(i * 50 * kMiB, total);
  }
  ASSERT_EQ(f.lines.size(), 3u);  // at 1.0, 2.0 and 3.0 s
  EXPECT_EQ(f.lines[0], "m: /ckpt: 500.0 MiB of 2.00 GiB (24%), 500.0 MiB/s, ETA 3.1 s");
  EXPECT_EQ(f.lines[2], "m: /ckpt: 1.46 GiB of 2.00 GiB (73%), 500.0 MiB/s, ETA 1.1 s");
  f.now += milliseconds(500);
  p.Finish();
  ASSERT_EQ(f.lines.size(), 4u);
  EXPECT_EQ(f.lines[3], "m: /ckpt: 1.71 GiB read in 4.0 s (437.5 MiB/s)");
}

TEST(LoadProgress, AQuickSmallLoadLogsNothing) {
  Fake f;
  LoadProgress p = f.Make();
  for (int i = 1; i <= 9; ++i) {
    f.now += milliseconds(100);
    p.Update(i * 10 * kMiB, 90 * kMiB);
  }
  p.Finish();
  EXPECT_TRUE(f.lines.empty());
}

TEST(LoadProgress, AQuickLargeLoadLogsOnlyTheFinalLine) {
  Fake f;
  LoadProgress p = f.Make();
  f.now += milliseconds(400);
  p.Update(300 * kMiB, 300 * kMiB);
  f.now += milliseconds(100);
  p.Finish();
  ASSERT_EQ(f.lines.size(), 1u);
  EXPECT_EQ(f.lines[0], "m: /ckpt: 300.0 MiB read in 0.5 s (600.0 MiB/s)");
}

TEST(LoadProgress, ASlowSmallLoadLogsToo) {
  Fake f;
  LoadProgress p = f.Make();
  f.now += milliseconds(1500);
  p.Update(10 * kMiB, 20 * kMiB);
  f.now += milliseconds(1000);
  p.Update(20 * kMiB, 20 * kMiB);
  p.Finish();
  ASSERT_EQ(f.lines.size(), 3u);
  EXPECT_EQ(f.lines[0], "m: /ckpt: 10.0 MiB of 20.0 MiB (50%), 6.7 MiB/s, ETA 1.5 s");
  EXPECT_EQ(f.lines[1], "m: /ckpt: 20.0 MiB of 20.0 MiB (100%), 8.0 MiB/s");
}

}  // namespace
}  // namespace inferd::daemon
