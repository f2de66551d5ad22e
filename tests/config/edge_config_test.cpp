// The edge/central sections of the config: classification, upstreams, cache.
#include <gtest/gtest.h>

#include <string>

#include "inferd/config.h"
#include "test_env.h"

namespace inferd {
namespace {

#define MODEL "models: [{name: light, path: /m, classes: [realtime]}]\n"

std::string ErrorOf(const std::string& yaml) {
  try {
    ParseConfig(yaml, "edge.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(EdgeConfig, SectionsAreReadIntoStructs) {
  Config c = ParseConfig(MODEL R"(
classification:
  honor_class_hint: false
  defaults: {generate: complex, generate_stream: realtime, recommend: realtime}
  rules:
    - name: big-recommend
      match: {rpc: [recommend], candidates: {min: 100}, candidate_tokens: {max: 5000}, model: [light, ""]}
      class: complex
    - name: short-prompt
      match: {prompt_tokens: {max: 64}, latency_budget_ms: {min: 1, max: 200}, class_hint: [unspecified]}
      class: realtime
upstreams:
  - name: central
    targets: ["127.0.0.1:7001", "127.0.0.1:7002"]
    classes: [complex]
    models: [full]
    overflow: true
    max_attempts: 3
    keepalive_time_ms: 5000
    health: {interval_ms: 200, timeout_ms: 100, unhealthy_threshold: 3, healthy_threshold: 2}
    breaker: {failure_threshold: 4, open_ms: 750}
cache: {enabled: true, max_bytes: 8MiB, ttl_ms: 250}
)",
                         "edge.yaml");
  EXPECT_FALSE(c.classification.honor_class_hint);
  EXPECT_EQ(c.classification.generate_stream_default, "realtime");
  ASSERT_EQ(c.classification.rules.size(), 2u);
  const ClassRuleConfig& r0 = c.classification.rules[0];
  EXPECT_EQ(r0.name, "big-recommend");
  EXPECT_EQ(r0.cls, "complex");
  EXPECT_EQ(r0.match.rpc, std::vector<std::string>{"recommend"});
  EXPECT_EQ(r0.match.candidates.min, 100);
  EXPECT_FALSE(r0.match.candidates.max.has_value());
  EXPECT_EQ(r0.match.candidate_tokens.max, 5000);
  EXPECT_EQ(r0.match.model, (std::vector<std::string>{"light", ""}));
  EXPECT_EQ(c.classification.rules[1].match.latency_budget_ms.max, 200);
  ASSERT_EQ(c.upstreams.size(), 1u);
  const UpstreamConfig& u = c.upstreams[0];
  EXPECT_EQ(u.targets.size(), 2u);
  EXPECT_TRUE(u.overflow);
  EXPECT_EQ(u.max_attempts, 3);
  EXPECT_EQ(u.health.unhealthy_threshold, 3);
  EXPECT_EQ(u.breaker.failure_threshold, 4);
  EXPECT_DOUBLE_EQ(u.breaker.open_ms, 750);
  EXPECT_TRUE(c.cache.enabled);
  EXPECT_EQ(c.cache.max_bytes, 8 << 20);
  EXPECT_DOUBLE_EQ(c.cache.ttl_ms, 250);
}

TEST(EdgeConfig, WithoutRulesKeyTheDefaultRuleStaysAndEmptyListRemovesIt) {
  Config c = ParseConfig(MODEL, "edge.yaml");
  ASSERT_EQ(c.classification.rules.size(), 1u);
  EXPECT_EQ(c.classification.rules[0].name, "small-generate");
  Config none = ParseConfig(MODEL "classification: {rules: []}", "edge.yaml");
  EXPECT_TRUE(none.classification.rules.empty());
}

TEST(EdgeConfig, UnreachableAndContradictoryRulesAreRejectedWithTheRulePath) {
  EXPECT_NE(ErrorOf(MODEL R"(
classification:
  rules:
    - {name: all-generates, match: {rpc: [generate]}, class: complex}
    - {name: tiny, match: {rpc: [generate], max_tokens: {max: 4}}, class: realtime}
)")
                .find("edge.yaml: classification.rules[1] (tiny): unreachable: rules[0] (all-generates)"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL R"(
classification:
  rules:
    - {name: backwards, match: {latency_budget_ms: {min: 50, max: 10}}, class: realtime}
)")
                .find("classification.rules[0] (backwards).match.latency_budget_ms: contradictory: min 50 > max 10"),
            std::string::npos);
}

TEST(EdgeConfig, InvalidEdgeKeysNameTheField) {
  EXPECT_NE(ErrorOf(MODEL "classification: {rules: [{name: x, class: fast}]}")
                .find("classification.rules[0].class: must be one of realtime, complex"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "classification: {rules: [{name: x, match: {max_tokens: {}}}]}")
                .find("classification.rules[0].match.max_tokens: set min, max or both"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, classes: [complex]}]")
                .find("upstreams[0]: set exactly one of targets and dns"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: [central], classes: [complex]}]")
                .find("upstreams[0].targets: expected host:port, found 'central'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: ['h:1'], classes: [realtime]}]")
                .find("upstreams[0].classes: class 'realtime' is already routed"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: ['h:1'], models: [light]}]")
                .find("upstreams[0].models: model 'light' is already served"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: ['h:1']}]").find("upstreams[0]: routes nothing"),
            std::string::npos);
  EXPECT_NE(ErrorOf("upstreams: [{name: c, targets: ['h:1'], classes: [complex]}]\n"
                    "classification: {rules: [{name: p, match: {prompt_tokens: {max: 9}}}]}")
                .find("prompt_tokens and candidate_tokens are counted with a local model pool's tokenizer"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "cache: {ttl_ms: 0}").find("cache.ttl_ms: must be in"), std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: ['h:1'], classes: [complex], tls: {ca_file: ca.pem}}]")
                .find("upstreams[0].tls.enabled: must be true when other tls keys are set"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: ['h:1'], classes: [complex],"
                          " tls: {enabled: true, cert_file: e.pem}}]")
                .find("upstreams[0].tls.cert_file: set both cert_file and key_file, or neither"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MODEL "upstreams: [{name: c, targets: ['h:1'], classes: [complex], tls: {enabeld: true}}]")
                .find("upstreams[0].tls.enabeld: unknown key"),
            std::string::npos);
}

TEST(EdgeConfig, UpstreamTlsAndTokenFilesAreReadRelativeToTheConfig) {
  Config c = ParseConfig(MODEL
                         "upstreams: [{name: c, targets: ['h:1'], classes: [complex], token_file: t/edge.token,"
                         " tls: {enabled: true, ca_file: ca.pem, cert_file: /abs/e.pem, key_file: e.key,"
                         " server_name: central.svc}}]",
                         "/etc/inferd/edge.yaml");
  const UpstreamConfig& u = c.upstreams[0];
  EXPECT_TRUE(u.tls.enabled);
  EXPECT_EQ(u.tls.ca_file, "/etc/inferd/ca.pem");
  EXPECT_EQ(u.tls.cert_file, "/abs/e.pem");
  EXPECT_EQ(u.tls.key_file, "/etc/inferd/e.key");
  EXPECT_EQ(u.tls.server_name, "central.svc");
  EXPECT_EQ(u.token_file, "/etc/inferd/t/edge.token");
  Config plain = ParseConfig(MODEL "upstreams: [{name: c, targets: ['h:1'], classes: [complex]}]", "e.yaml");
  EXPECT_FALSE(plain.upstreams[0].tls.enabled);
  EXPECT_EQ(plain.upstreams[0].token_file, "");
}

TEST(EdgeConfig, ShippedEdgeConfigsAreValidAndTheExampleDocumentsTheDefaults) {
  for (const char* name : {"edge.example.yaml", "central.example.yaml"}) {
    EXPECT_NO_THROW(LoadConfigFile(inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/" + name)) << name;
  }
  Config example = LoadConfigFile(inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/inferd.example.yaml");
  Config defaults = ParseConfig(MODEL, "x.yaml");
  const ClassificationConfig& a = example.classification;
  const ClassificationConfig& b = defaults.classification;
  EXPECT_EQ(a.honor_class_hint, b.honor_class_hint);
  EXPECT_EQ(a.generate_default, b.generate_default);
  EXPECT_EQ(a.generate_stream_default, b.generate_stream_default);
  EXPECT_EQ(a.recommend_default, b.recommend_default);
  ASSERT_EQ(a.rules.size(), b.rules.size());
  EXPECT_EQ(a.rules[0].name, b.rules[0].name);
  EXPECT_EQ(a.rules[0].cls, b.rules[0].cls);
  EXPECT_EQ(a.rules[0].match.rpc, b.rules[0].match.rpc);
  EXPECT_EQ(a.rules[0].match.max_tokens.min, b.rules[0].match.max_tokens.min);
  EXPECT_EQ(a.rules[0].match.max_tokens.max, b.rules[0].match.max_tokens.max);
  EXPECT_EQ(a.rules[0].match.latency_budget_ms.min, b.rules[0].match.latency_budget_ms.min);
  EXPECT_EQ(a.rules[0].match.latency_budget_ms.max, b.rules[0].match.latency_budget_ms.max);
  EXPECT_TRUE(example.upstreams.empty());
  EXPECT_EQ(example.cache.enabled, defaults.cache.enabled);
  EXPECT_EQ(example.cache.max_bytes, defaults.cache.max_bytes);
  EXPECT_EQ(example.cache.ttl_ms, defaults.cache.ttl_ms);
}

TEST(EdgeConfig, AForwardingOnlyDaemonNeedsNoLocalModel) {
  Config c = ParseConfig("upstreams: [{name: c, dns: 'localhost:7000', classes: [realtime, complex]}]", "edge.yaml");
  EXPECT_TRUE(c.models.empty());
  EXPECT_EQ(c.upstreams[0].dns, "localhost:7000");
  EXPECT_EQ(c.upstreams[0].dns_refresh_ms, 30000);
  Config once =
      ParseConfig("upstreams: [{name: c, dns: 'localhost:7000', dns_refresh_ms: 0, classes: [complex]}]", "edge.yaml");
  EXPECT_EQ(once.upstreams[0].dns_refresh_ms, 0);
  EXPECT_NE(ErrorOf("upstreams: [{name: c, dns: 'localhost:7000', dns_refresh_ms: -5, classes: [complex]}]")
                .find("upstreams[0].dns_refresh_ms: must be in"),
            std::string::npos);
}

}  // namespace
}  // namespace inferd
