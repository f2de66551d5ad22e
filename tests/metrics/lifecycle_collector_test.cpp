#include "metrics/lifecycle_collector.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace inferd::metrics {
namespace {

using testing::Line;
using testing::Render;

std::vector<PoolLifecycleStats> Pools() {
  PoolLifecycleStats p;
  p.model = "default";
  p.load_phases = {{"open", 0.01}, {"copy", 0.5}, {"residency", 0.125}, {"warmup_decode", 1.5}, {"total", 2.25}};
  p.generation = 3;
  p.residency = "locked";
  p.resident_bytes = 1 << 20;
  p.reloads_ok = 2;
  p.reloads_failed = 1;
  p.last_reload_seconds = 1.75;
  p.reload_seconds_total = 4.5;
  PoolLifecycleStats q;
  q.model = "small";
  q.residency = "prefaulted";
  q.resident_bytes = 4096;
  return {p, q};
}

TEST(LifecycleCollectorTest, ExportsPhasesResidencyAndReloads) {
  LifecycleCollector c(Pools, nullptr);
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_model_load_phase_seconds{model=\"default\",phase=\"copy\"}"),
            "inferd_model_load_phase_seconds{model=\"default\",phase=\"copy\"} 0.5");
  EXPECT_EQ(Line(t, "inferd_model_load_phase_seconds{model=\"default\",phase=\"total\"}"),
            "inferd_model_load_phase_seconds{model=\"default\",phase=\"total\"} 2.25");
  EXPECT_EQ(Line(t, "inferd_model_generation{model=\"default\"}"), "inferd_model_generation{model=\"default\"} 3");
  EXPECT_EQ(Line(t, "inferd_model_weights_locked{model=\"default\"}"),
            "inferd_model_weights_locked{model=\"default\"} 1");
  EXPECT_EQ(Line(t, "inferd_model_weights_locked{model=\"small\"}"), "inferd_model_weights_locked{model=\"small\"} 0");
  EXPECT_EQ(Line(t, "inferd_model_resident_bytes{model=\"small\"}"),
            "inferd_model_resident_bytes{model=\"small\"} 4096");
  EXPECT_EQ(Line(t, "inferd_model_reloads_total{model=\"default\",result=\"ok\"}"),
            "inferd_model_reloads_total{model=\"default\",result=\"ok\"} 2");
  EXPECT_EQ(Line(t, "inferd_model_reloads_total{model=\"default\",result=\"failed\"}"),
            "inferd_model_reloads_total{model=\"default\",result=\"failed\"} 1");
  EXPECT_EQ(Line(t, "inferd_model_reload_switch_seconds{model=\"default\"}"),
            "inferd_model_reload_switch_seconds{model=\"default\"} 1.75");
  EXPECT_EQ(Line(t, "inferd_model_reload_seconds_total{model=\"default\"}"),
            "inferd_model_reload_seconds_total{model=\"default\"} 4.5");
  EXPECT_EQ(t.find("inferd_control_requests_total"), std::string::npos);  // Control off
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

TEST(LifecycleCollectorTest, ControlCallsByMethodAndCode) {
  LifecycleCollector c(Pools, [] {
    ControlStats s;
    s.calls[1][0] = 5;  // ReloadPool OK
    s.calls[1][5] = 2;  // ReloadPool NOT_FOUND
    s.calls[0][7] = 1;  // ListPools PERMISSION_DENIED
    return s;
  });
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_control_requests_total{method=\"ReloadPool\",code=\"OK\"}"),
            "inferd_control_requests_total{method=\"ReloadPool\",code=\"OK\"} 5");
  EXPECT_EQ(Line(t, "inferd_control_requests_total{method=\"ReloadPool\",code=\"NOT_FOUND\"}"),
            "inferd_control_requests_total{method=\"ReloadPool\",code=\"NOT_FOUND\"} 2");
  EXPECT_EQ(Line(t, "inferd_control_requests_total{method=\"ListPools\",code=\"PERMISSION_DENIED\"}"),
            "inferd_control_requests_total{method=\"ListPools\",code=\"PERMISSION_DENIED\"} 1");
  EXPECT_EQ(Line(t, "inferd_control_requests_total{method=\"DrainPool\",code=\"OK\"}"),
            "inferd_control_requests_total{method=\"DrainPool\",code=\"OK\"} 0");
  EXPECT_EQ(t.find("method=\"DrainPool\",code=\"NOT_FOUND\""), std::string::npos);
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

}  // namespace
}  // namespace inferd::metrics
