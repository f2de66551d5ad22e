// The control section of the config (the inferd.v1.Control operator service).
#include <gtest/gtest.h>

#include <string>

#include "inferd/config.h"
#include "test_env.h"

namespace inferd {
namespace {

#define MODEL "models: [{name: m, path: /m}]\n"

std::string ErrorOf(const std::string& yaml) {
  try {
    ParseConfig(yaml, "control.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ControlConfig, OffByDefault) {
  const Config c = ParseConfig(MODEL);
  EXPECT_FALSE(c.control.enabled);
  EXPECT_TRUE(c.control.allowed_addresses.empty());
  EXPECT_EQ(c.control.token_file, "");
  EXPECT_EQ(c.control.drain_timeout_seconds, 60.0);
}

TEST(ControlConfig, SectionIsReadAndTheTokenFileResolved) {
  const Config c = ParseConfig(MODEL R"(control: {enabled: true, allowed_addresses: [127.0.0.1, "::1"],
  token_file: ops.tokens, drain_timeout_seconds: 5.5})",
                               "/etc/inferd/inferd.yaml");
  EXPECT_TRUE(c.control.enabled);
  EXPECT_EQ(c.control.allowed_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(c.control.token_file, "/etc/inferd/ops.tokens");
  EXPECT_EQ(c.control.drain_timeout_seconds, 5.5);
}

TEST(ControlConfig, EnabledWithoutAnAccessRuleIsRejected) {
  EXPECT_NE(ErrorOf(MODEL "control: {enabled: true}").find("control.yaml: control: enabled without allowed_addresses"),
            std::string::npos)
      << ErrorOf(MODEL "control: {enabled: true}");
}

TEST(ControlConfig, BadValuesNameTheKey) {
  EXPECT_NE(ErrorOf(MODEL "control: {allowed_addresses: [localhost]}")
                .find("control.allowed_addresses: 'localhost' is not an IPv4 or IPv6 address"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "control: {drain_timeout_seconds: -1}").find("control.drain_timeout_seconds"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "control: {enable: true}").find("control.enable"), std::string::npos)
      << ErrorOf(MODEL "control: {enable: true}");
}

TEST(ControlConfig, ReloadSchedulingDefaultsAndValues) {
  const Config d = ParseConfig(MODEL);
  EXPECT_EQ(d.control.reload_priority, "low");
  EXPECT_EQ(d.control.reload_warmup_threads, 1);
  const Config c = ParseConfig(MODEL "control: {reload_priority: idle, reload_warmup_threads: 0}");
  EXPECT_EQ(c.control.reload_priority, "idle");
  EXPECT_EQ(c.control.reload_warmup_threads, 0);
  EXPECT_EQ(ParseConfig(MODEL "control: {reload_priority: normal}").control.reload_priority, "normal");
}

TEST(ControlConfig, BadReloadSchedulingNamesTheKey) {
  const std::string priority = ErrorOf(MODEL "control: {reload_priority: high}");
  EXPECT_NE(priority.find("control.reload_priority"), std::string::npos) << priority;
  EXPECT_NE(priority.find("high"), std::string::npos) << priority;
  const std::string threads = ErrorOf(MODEL "control: {reload_warmup_threads: -1}");
  EXPECT_NE(threads.find("control.reload_warmup_threads"), std::string::npos) << threads;
}

TEST(ControlConfig, ExampleDocumentsTheDefaults) {
  const Config example = LoadConfigFile(inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/inferd.example.yaml");
  EXPECT_EQ(example.control, ParseConfig(MODEL).control);
}

TEST(ControlConfig, EqualitySeesEveryModelField) {
  // SIGHUP compares the re-read config with the running one; a changed nested key must make them differ.
  const Config a = ParseConfig(MODEL);
  Config b = a;
  EXPECT_TRUE(a.models == b.models);
  b.models[0].scheduler.max_running += 1;
  EXPECT_FALSE(a.models == b.models);
  b = a;
  b.models[0].path = "/other";
  EXPECT_FALSE(a.models == b.models);
}

}  // namespace
}  // namespace inferd
