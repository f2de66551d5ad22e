// models[].warmup and models[].residency (docs/lifecycle.md).
#include <gtest/gtest.h>

#include <string>

#include "inferd/config.h"
#include "test_env.h"

namespace inferd {
namespace {

std::string ErrorOf(const std::string& yaml) {
  try {
    ParseConfig(yaml, "life.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

Config Model(const std::string& keys) {
  return ParseConfig("models: [{name: m, path: /m" + keys + "}]\n");
}

TEST(LifecycleConfig, WarmupOnOverEveryClassAndWeightsLockedByDefault) {
  const Config c = Model("");
  EXPECT_TRUE(c.models[0].warmup.enabled);
  EXPECT_EQ(c.models[0].warmup.classes, (std::vector<std::string>{"prefill", "decode", "recommend"}));
  EXPECT_EQ(c.models[0].residency, "lock");
  EXPECT_EQ(c.models[0].weights, "map");
}

TEST(LifecycleConfig, WeightsMapOrCopy) {
  EXPECT_EQ(Model(", weights: copy").models[0].weights, "copy");
  EXPECT_EQ(Model(", weights: map").models[0].weights, "map");
  const std::string err = ErrorOf("models: [{name: m, path: /m, weights: mmap}]");
  EXPECT_NE(err.find("models[0].weights"), std::string::npos) << err;
}

TEST(LifecycleConfig, KeysAreRead) {
  const Config c = Model(", warmup: {enabled: false, classes: [decode]}, residency: prefault");
  EXPECT_FALSE(c.models[0].warmup.enabled);
  EXPECT_EQ(c.models[0].warmup.classes, (std::vector<std::string>{"decode"}));
  EXPECT_EQ(c.models[0].residency, "prefault");
  EXPECT_EQ(Model(", residency: none").models[0].residency, "none");
  EXPECT_TRUE(Model(", warmup: {enabled: false, classes: []}").models[0].warmup.classes.empty());
}

TEST(LifecycleConfig, BadValuesNameTheKeyPath) {
  const std::string m = "models: [{name: m, path: /m, ";
  EXPECT_NE(ErrorOf(m + "warmup: {classes: [decode, graphs]}}]")
                .find("life.yaml: models[0].warmup.classes: unknown class 'graphs' (prefill, decode, recommend)"),
            std::string::npos)
      << ErrorOf(m + "warmup: {classes: [decode, graphs]}}]");
  EXPECT_NE(ErrorOf(m + "warmup: {classes: [decode, decode]}}]").find("models[0].warmup.classes: duplicate class"),
            std::string::npos);
  EXPECT_NE(ErrorOf(m + "warmup: {classes: []}}]").find("models[0].warmup.classes: empty while enabled"),
            std::string::npos);
  EXPECT_NE(ErrorOf(m + "warmup: {rounds: 3}}]").find("models[0].warmup.rounds"), std::string::npos)
      << ErrorOf(m + "warmup: {rounds: 3}}]");
  EXPECT_NE(ErrorOf(m + "residency: mlockall}]").find("models[0].residency"), std::string::npos)
      << ErrorOf(m + "residency: mlockall}]");
}

TEST(LifecycleConfig, ExampleDocumentsTheDefaults) {
  const Config example = LoadConfigFile(inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/inferd.example.yaml");
  const Config defaults = Model("");
  ASSERT_FALSE(example.models.empty());
  EXPECT_EQ(example.models[0].warmup, defaults.models[0].warmup);
  EXPECT_EQ(example.models[0].residency, defaults.models[0].residency);
  EXPECT_EQ(example.models[0].weights, defaults.models[0].weights);
}

}  // namespace
}  // namespace inferd
