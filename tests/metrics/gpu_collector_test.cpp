#include "metrics/gpu_collector.h"

#include <gtest/gtest.h>

#include "test_env.h"
#include "test_util.h"

namespace inferd::metrics {
namespace {

using testing::Line;
using testing::Render;

TEST(GpuCollectorTest, ExportsEachDeviceFromTheLoadedLibrary) {
  const std::string fake_nvml = inferd_test::TestEnvPath("INFERD_FAKE_NVML");
  GpuCollector c(std::chrono::milliseconds(50), fake_nvml.c_str());
  ASSERT_TRUE(c.available());
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_gpu_info{gpu=\"0\",uuid=\"GPU-aaaa\",name=\"Fake H200\"}"),
            "inferd_gpu_info{gpu=\"0\",uuid=\"GPU-aaaa\",name=\"Fake H200\"} 1");
  EXPECT_EQ(Line(t, "inferd_gpu_utilization_ratio{gpu=\"0\"}"), "inferd_gpu_utilization_ratio{gpu=\"0\"} 0.93");
  EXPECT_EQ(Line(t, "inferd_gpu_memory_utilization_ratio{gpu=\"1\"}"),
            "inferd_gpu_memory_utilization_ratio{gpu=\"1\"} 0.05");
  EXPECT_EQ(Line(t, "inferd_gpu_memory_used_bytes{gpu=\"0\"}"), "inferd_gpu_memory_used_bytes{gpu=\"0\"} 120000000000");
  EXPECT_EQ(Line(t, "inferd_gpu_memory_total_bytes{gpu=\"1\"}"),
            "inferd_gpu_memory_total_bytes{gpu=\"1\"} 150000000000");
  EXPECT_EQ(Line(t, "inferd_gpu_power_watts{gpu=\"0\"}"), "inferd_gpu_power_watts{gpu=\"0\"} 612.5");
  EXPECT_EQ(Line(t, "inferd_gpu_power_watts{gpu=\"1\"}"), "");  // its query failed: no sample, no zero
  EXPECT_EQ(Line(t, "inferd_gpu_temperature_celsius{gpu=\"1\"}"), "inferd_gpu_temperature_celsius{gpu=\"1\"} 35");
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

TEST(GpuCollectorTest, WithoutTheLibraryThereAreNoSeries) {
  GpuCollector c(std::chrono::milliseconds(50), "libinferd-no-such-nvml.so.1");
  EXPECT_FALSE(c.available());
  EXPECT_TRUE(c.Collect().empty());
}

}  // namespace
}  // namespace inferd::metrics
