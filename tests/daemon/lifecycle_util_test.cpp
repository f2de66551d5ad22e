#include "daemon/lifecycle_util.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace inferd::daemon {
namespace {

TEST(Fnv1a64, MatchesThePublishedTestVectors) {
  // FNV-1a 64-bit reference values (draft-eastlake-fnv): "" and "a".
  EXPECT_EQ(Fnv1a64(""), "fnv1a64:cbf29ce484222325");
  EXPECT_EQ(Fnv1a64("a"), "fnv1a64:af63dc4c8601ec8c");
  EXPECT_EQ(HashFile("/nonexistent/config.json").status().code(), StatusCode::kNotFound);
}

TEST(ReloadMemory, MemAvailableIsReadFromMeminfo) {
  EXPECT_EQ(ParseMemAvailable("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    2048 kB\n"),
            2048 * 1024);
  EXPECT_EQ(ParseMemAvailable("MemTotal: 1 kB\n"), std::nullopt);
}

TEST(ReloadMemory, RefusalNamesTheNeedAndTheMissingAmount) {
  EXPECT_TRUE(CheckReloadMemory("m", 100 << 20, 32 << 20, int64_t{200} << 20).ok());
  EXPECT_TRUE(CheckReloadMemory("m", 100 << 20, 32 << 20, std::nullopt).ok());
  const Status st = CheckReloadMemory("m", 100 << 20, 32 << 20, int64_t{100} << 20);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("needs 132.0 MiB (weights 100.0 MiB + KV pool 32.0 MiB)"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("MemAvailable is 100.0 MiB, 32.0 MiB missing"), std::string::npos) << st.message();
}

TEST(ReloadMemory, WeightBytesAreTheSafetensorsFiles) {
  const auto dir = std::filesystem::temp_directory_path() / ("inferd-weights-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "model-00001.safetensors") << std::string(1000, 'x');
  std::ofstream(dir / "model-00002.safetensors") << std::string(24, 'x');
  std::ofstream(dir / "tokenizer.json") << std::string(5000, 'x');
  EXPECT_EQ(CheckpointWeightBytes(dir.string()), 1024);
  std::filesystem::remove_all(dir);
}

Config TwoPools() {
  return ParseConfig(
      "models: [{name: a, path: /ckpt/a, classes: [realtime]}, {name: b, path: /ckpt/b, classes: [complex]}]");
}

TEST(SighupDiff, OnlyChangedModelPathsReload) {
  const Config running = TwoPools();
  Config next = running;
  next.models[1].path = "/ckpt/b2";
  ConfigChanges c = DiffForReload(running, next);
  EXPECT_EQ(c.reload, (std::vector<size_t>{1}));
  EXPECT_TRUE(c.ignored.empty());
  EXPECT_TRUE(DiffForReload(running, running).reload.empty());
}

TEST(SighupDiff, OtherChangesAreIgnoredWithTheKey) {
  const Config running = TwoPools();
  Config next = running;
  next.server.drain_grace_seconds = 3;
  next.models[0].path = "/ckpt/a2";
  next.models[0].kv_cache.memory_bytes *= 2;
  ConfigChanges c = DiffForReload(running, next);
  EXPECT_TRUE(c.reload.empty()) << "a pool with other changes is not reloaded half-way";
  ASSERT_EQ(c.ignored.size(), 2u);
  EXPECT_EQ(c.ignored[0], "server: changed; takes effect on restart");
  EXPECT_NE(c.ignored[1].find("models[0] ('a'): keys other than path changed"), std::string::npos) << c.ignored[1];
  next = running;
  next.models.pop_back();
  EXPECT_EQ(DiffForReload(running, next).ignored.at(0), "models: pools added or removed; takes effect on restart");
}

TEST(PoolStatsMerger, TotalsNeverGoBackAcrossGenerations) {
  std::vector<EngineStats> seen;
  PoolStatsMerger m([&](const EngineStats& s) { seen.push_back(s); });
  EngineStats a;
  a.preemptions_total = 5;
  a.prefix_hit_tokens_total = 100;
  a.running_requests = {1, 2};
  m.Record(1, a);
  EngineStats b;  // the new generation starts from zero
  b.preemptions_total = 1;
  b.running_requests = {0, 1};
  m.Record(2, b);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].preemptions_total, 6u);
  EXPECT_EQ(seen[1].prefix_hit_tokens_total, 100u);
  EXPECT_EQ(seen[1].running_requests[1], 3) << "both generations' running requests while the old one drains";
  m.Retire(1);
  m.Record(2, b);
  EXPECT_EQ(seen[2].preemptions_total, 6u);
  EXPECT_EQ(seen[2].running_requests[1], 1);
}

}  // namespace
}  // namespace inferd::daemon
