#include "inferd/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_env.h"

namespace inferd {
namespace {

const char* kMinimal = R"(
models:
  - name: default
    path: /models/tiny
)";

TEST(Config, MinimalFileGetsDocumentedDefaults) {
  Config c = ParseConfig(kMinimal, "/etc/inferd/inferd.yaml");
  EXPECT_EQ(c.server.grpc_address, "127.0.0.1:50051");
  EXPECT_EQ(c.metrics.address, "127.0.0.1:9464");
  EXPECT_TRUE(c.metrics.enabled);
  EXPECT_EQ(c.metrics.realtime_slo_ms, 80);
  EXPECT_EQ(c.logging.level, "info");
  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].dtype, "bf16");
  EXPECT_EQ(c.models[0].kv_cache.block_size, 16);
  EXPECT_EQ(c.models[0].path, "/models/tiny");
}

TEST(Config, FullFileIsReadIntoStructs) {
  Config c = ParseConfig(R"(
server: {grpc_address: "0.0.0.0:7000", max_message_bytes: 8MiB, drain_grace_seconds: 2.5, reflection: false}
metrics: {address: "127.0.0.1:7001", realtime_slo_ms: 25.5, experiment_variants: [control, treatment-2]}
logging: {level: debug, format: json}
models:
  - name: light
    path: light
    dtype: fp32
    classes: [realtime]
    kv_cache: {block_size: 32, memory_bytes: 1GiB, prefix_caching: false}
    scheduler: {max_batched_tokens: 1024, prefill_chunk_tokens: 512, realtime_deadline_ms: 50}
    limits: {max_candidates: 64}
  - name: full
    path: /abs/full
    device: cuda:1
    dtype: fp16
    classes: [complex]
)",
                         "/srv/conf/inferd.yaml");
  EXPECT_EQ(c.server.grpc_address, "0.0.0.0:7000");
  EXPECT_EQ(c.server.max_message_bytes, 8 << 20);
  EXPECT_DOUBLE_EQ(c.server.drain_grace_seconds, 2.5);
  EXPECT_FALSE(c.server.reflection);
  EXPECT_DOUBLE_EQ(c.metrics.realtime_slo_ms, 25.5);
  EXPECT_EQ(c.metrics.experiment_variants, (std::vector<std::string>{"control", "treatment-2"}));
  EXPECT_EQ(c.logging.format, "json");
  ASSERT_EQ(c.models.size(), 2u);
  EXPECT_EQ(c.models[0].path, "/srv/conf/light");  // relative to the config file
  EXPECT_EQ(c.models[0].kv_cache.memory_bytes, 1LL << 30);
  EXPECT_EQ(c.models[0].kv_cache.block_size, 32);
  EXPECT_FALSE(c.models[0].kv_cache.prefix_caching);
  EXPECT_EQ(c.models[0].scheduler.max_batched_tokens, 1024);
  EXPECT_DOUBLE_EQ(c.models[0].scheduler.realtime_deadline_ms, 50);
  EXPECT_EQ(c.models[0].limits.max_candidates, 64);
  EXPECT_EQ(c.models[1].device, "cuda:1");
  EXPECT_EQ(c.models[1].dtype, "fp16");
}

struct InvalidCase {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the error
};

class InvalidConfig : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfig, IsRejectedWithKeyPathAndReason) {
  const InvalidCase& c = GetParam();
  try {
    ParseConfig(c.yaml, "bad.yaml");
    FAIL() << "accepted: " << c.yaml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << "got: " << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("bad.yaml: ", 0), 0u) << e.what();
  }
}

#define MODEL "models: [{name: m, path: /m}]\n"
INSTANTIATE_TEST_SUITE_P(
    Table, InvalidConfig,
    ::testing::Values(
        InvalidCase{"unknown_top", MODEL "srever: {}", "srever: unknown key"},
        InvalidCase{"unknown_nested", MODEL "server: {grpc_adress: x}", "server.grpc_adress: unknown key"},
        InvalidCase{"bad_address", MODEL "server: {grpc_address: localhost}",
                    "server.grpc_address: expected host:port, found 'localhost'"},
        InvalidCase{"port_range", MODEL "server: {grpc_address: '127.0.0.1:70000'}", "server.grpc_address"},
        InvalidCase{"not_a_number", MODEL "server: {drain_grace_seconds: soon}",
                    "server.drain_grace_seconds: expected a number, found 'soon'"},
        InvalidCase{"negative_grace", MODEL "server: {drain_grace_seconds: -1}",
                    "server.drain_grace_seconds: must be in [0"},
        InvalidCase{"bad_bytes", MODEL "server: {max_message_bytes: 4 parsecs}",
                    "server.max_message_bytes: expected a byte size"},
        InvalidCase{"bad_bool", MODEL "metrics: {enabled: maybe}", "metrics.enabled: expected true or false"},
        InvalidCase{"zero_slo", MODEL "metrics: {realtime_slo_ms: 0}", "metrics.realtime_slo_ms: must be in [0.001"},
        InvalidCase{"bad_variant", MODEL "metrics: {experiment_variants: [A/B]}",
                    "metrics.experiment_variants: 'A/B': use 1 to 32 of a-z, 0-9, _ and -"},
        InvalidCase{"none_variant", MODEL "metrics: {experiment_variants: [none]}",
                    "metrics.experiment_variants: 'none' is reserved"},
        InvalidCase{"dup_variant", MODEL "metrics: {experiment_variants: [a, b, a]}",
                    "metrics.experiment_variants: duplicate value 'a'"},
        InvalidCase{"bad_level", MODEL "logging: {level: loud}",
                    "logging.level: must be one of trace, debug, info, warn, error, critical, off, found 'loud'"},
        InvalidCase{"bad_format", MODEL "logging: {format: xml}", "logging.format: must be one of text, json"},
        InvalidCase{"section_type", MODEL "server: [1, 2]", "server: expected a mapping, found a list"},
        InvalidCase{"no_models", "server: {}", "models: at least one model pool is required"},
        InvalidCase{"empty_models", "models: []", "models: at least one model pool is required"},
        InvalidCase{"model_no_path", "models: [{name: m}]", "models[0].path: is required"},
        InvalidCase{"model_bad_dtype", "models: [{name: m, path: /m, dtype: int4}]",
                    "models[0].dtype: must be one of bf16, fp16, fp32, found 'int4'"},
        InvalidCase{"fp16_on_cpu", "models: [{name: m, path: /m, dtype: fp16}]",
                    "models[0].dtype: fp16 is supported on CUDA only"},
        InvalidCase{"bad_device", "models: [{name: m, path: /m, device: tpu}]", "models[0].device: must be cpu"},
        InvalidCase{"block_size_pow2", "models: [{name: m, path: /m, kv_cache: {block_size: 24}}]",
                    "models[0].kv_cache.block_size: must be a power of two"},
        InvalidCase{"kv_too_small", "models: [{name: m, path: /m, kv_cache: {memory_bytes: 10}}]",
                    "models[0].kv_cache.memory_bytes: must be at least"},
        InvalidCase{"chunk_gt_budget",
                    "models: [{name: m, path: /m, scheduler: {max_batched_tokens: 64, prefill_chunk_tokens: 128}}]",
                    "models[0].scheduler.prefill_chunk_tokens: must not exceed max_batched_tokens (64)"},
        InvalidCase{"int_not_int", "models: [{name: m, path: /m, scheduler: {max_running: 1.5}}]",
                    "models[0].scheduler.max_running: expected an integer, found '1.5'"},
        InvalidCase{"complex_share_range", "models: [{name: m, path: /m, scheduler: {complex_min_share: 0.95}}]",
                    "models[0].scheduler.complex_min_share: "},
        InvalidCase{"bad_overload", "models: [{name: m, path: /m, scheduler: {realtime_overload: drop}}]",
                    "models[0].scheduler.realtime_overload: must be one of refuse, best_effort, found 'drop'"},
        InvalidCase{"unknown_class", "models: [{name: m, path: /m, classes: [batch]}]",
                    "models[0].classes: unknown class 'batch'"},
        InvalidCase{"dup_name",
                    "models: [{name: m, path: /a, classes: [realtime]}, {name: m, path: /b, classes: [complex]}]",
                    "models[1].name: duplicate model name 'm'"},
        InvalidCase{"class_twice", "models: [{name: a, path: /a}, {name: b, path: /b}]",
                    "models[1].classes: class 'realtime' is already routed"},
        InvalidCase{"unknown_model_key", "models: [{name: m, path: /m, quantize: yes}]",
                    "models[0].quantize: unknown key"},
        InvalidCase{"same_ports",
                    MODEL "server: {grpc_address: '127.0.0.1:9000'}\nmetrics: {address: '127.0.0.1:9000'}",
                    "metrics.address: must differ"},
        InvalidCase{"tls_cert_without_key", MODEL "server: {tls: {cert_file: c.pem}}",
                    "server.tls: set both cert_file and key_file, or neither"},
        InvalidCase{"tls_ca_without_cert", MODEL "server: {tls: {client_ca_file: ca.pem}}",
                    "server.tls.client_ca_file: mutual TLS needs the server's cert_file and key_file"},
        InvalidCase{"metrics_tls_no_client_ca", MODEL "metrics: {tls: {cert_file: c, key_file: k, client_ca_file: a}}",
                    "metrics.tls.client_ca_file: unknown key"},
        InvalidCase{"unknown_auth_key", MODEL "server: {auth: {tokens: t}}", "server.auth.tokens: unknown key"},
        InvalidCase{"rate_limit_without_auth", MODEL "server: {auth: {rate_limit: {requests_per_second: 5}}}",
                    "server.auth.rate_limit.requests_per_second: limits are per authenticated identity"},
        InvalidCase{"burst_without_rate", MODEL "server: {auth: {token_file: t, rate_limit: {burst: 5}}}",
                    "server.auth.rate_limit.burst: needs requests_per_second > 0"},
        InvalidCase{"request_id_cap", MODEL "server: {max_request_id_bytes: 0}", "server.max_request_id_bytes:"},
        InvalidCase{"threads_negative", MODEL "server: {max_threads: -1}", "server.max_threads: must be in [0"},
        InvalidCase{"threads_too_few", MODEL "server: {max_threads: 2}",
                    "server.max_threads: must be 0 (unbounded) or at least 4"},
        InvalidCase{"header_timeout", MODEL "metrics: {header_timeout_ms: 1}", "metrics.header_timeout_ms:"},
        InvalidCase{"candidate_over_total",
                    "models: [{name: m, path: /m, limits: {max_candidate_tokens: 100, "
                    "max_total_candidate_tokens: 50}}]",
                    "models[0].limits.max_candidate_tokens: must not exceed max_total_candidate_tokens (50)"},
        InvalidCase{"zero_context_cap", "models: [{name: m, path: /m, limits: {max_context_tokens: 0}}]",
                    "models[0].limits.max_context_tokens:"},
        InvalidCase{"yaml_syntax", "models: [{name: m", "YAML syntax error at line"},
        InvalidCase{"top_level_list", "- a\n- b", "the top level must be a mapping"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return std::string(info.param.name); });

TEST(Config, EveryErrorIsReportedNotJustTheFirst) {
  try {
    ParseConfig("server: {grpc_address: x, bogus: 1}\nmodels: [{name: m}]", "bad.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("server.grpc_address"), std::string::npos) << w;
    EXPECT_NE(w.find("server.bogus: unknown key"), std::string::npos) << w;
    EXPECT_NE(w.find("models[0].path: is required"), std::string::npos) << w;
  }
}

TEST(Config, SecurityKeysAndCapsAreReadAndPathsResolved) {
  Config c = ParseConfig(R"(
server:
  max_request_id_bytes: 64
  tls: {cert_file: tls/server.pem, key_file: /abs/server.key, client_ca_file: tls/ca.pem}
  auth:
    token_file: tokens.txt
    rate_limit: {requests_per_second: 20, burst: 40}
metrics:
  header_timeout_ms: 250
  tls: {cert_file: m.pem, key_file: m.key}
models:
  - name: m
    path: /m
    limits: {max_context_tokens: 100, max_candidate_tokens: 10, max_total_candidate_tokens: 20,
             max_stop_strings: 2, max_stop_string_bytes: 8}
)",
                         "/etc/inferd/inferd.yaml");
  EXPECT_EQ(c.server.max_request_id_bytes, 64);
  EXPECT_EQ(c.server.tls.cert_file, "/etc/inferd/tls/server.pem");
  EXPECT_EQ(c.server.tls.key_file, "/abs/server.key");
  EXPECT_EQ(c.server.tls.client_ca_file, "/etc/inferd/tls/ca.pem");
  EXPECT_EQ(c.server.auth.token_file, "/etc/inferd/tokens.txt");
  EXPECT_EQ(c.server.auth.rate_limit.requests_per_second, 20);
  EXPECT_EQ(c.server.auth.rate_limit.burst, 40);
  EXPECT_EQ(c.metrics.header_timeout_ms, 250);
  EXPECT_EQ(c.metrics.tls.cert_file, "/etc/inferd/m.pem");
  EXPECT_EQ(c.metrics.tls.key_file, "/etc/inferd/m.key");
  const LimitsConfig& l = c.models[0].limits;
  EXPECT_EQ(l.max_context_tokens, 100);
  EXPECT_EQ(l.max_candidate_tokens, 10);
  EXPECT_EQ(l.max_total_candidate_tokens, 20);
  EXPECT_EQ(l.max_stop_strings, 2);
  EXPECT_EQ(l.max_stop_string_bytes, 8);
}

TEST(Config, MissingFileNamesThePath) {
  try {
    LoadConfigFile("/nonexistent/inferd.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/inferd.yaml: cannot open config file"), std::string::npos);
  }
}

TEST(Config, ShippedConfigsAreValid) {
  for (const char* name : {"inferd.yaml", "inferd.example.yaml"}) {
    std::string path = inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/" + name;
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_NO_THROW(LoadConfigFile(path)) << path;
  }
}

TEST(Config, ExampleDocumentsTheDefaults) {
  // The example file spells out every default; parsing it must give the same values as the structs.
  Config example = LoadConfigFile(inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/inferd.example.yaml");
  Config defaults = ParseConfig("models: [{name: default, path: ../models/default}]",
                                inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/x.yaml");
  EXPECT_EQ(example.server.grpc_address, defaults.server.grpc_address);
  EXPECT_EQ(example.server.max_message_bytes, defaults.server.max_message_bytes);
  EXPECT_EQ(example.server.drain_grace_seconds, defaults.server.drain_grace_seconds);
  EXPECT_EQ(example.server.max_request_id_bytes, defaults.server.max_request_id_bytes);
  EXPECT_EQ(example.server.max_threads, defaults.server.max_threads);
  EXPECT_EQ(example.server.tls.cert_file, defaults.server.tls.cert_file);
  EXPECT_EQ(example.server.auth.token_file, defaults.server.auth.token_file);
  EXPECT_EQ(example.server.auth.rate_limit.requests_per_second, defaults.server.auth.rate_limit.requests_per_second);
  EXPECT_EQ(example.metrics.header_timeout_ms, defaults.metrics.header_timeout_ms);
  EXPECT_EQ(example.metrics.tls.cert_file, defaults.metrics.tls.cert_file);
  EXPECT_EQ(example.metrics.address, defaults.metrics.address);
  EXPECT_EQ(example.metrics.realtime_slo_ms, defaults.metrics.realtime_slo_ms);
  EXPECT_EQ(example.metrics.experiment_variants, defaults.metrics.experiment_variants);
  EXPECT_EQ(example.logging.level, defaults.logging.level);
  EXPECT_EQ(example.logging.format, defaults.logging.format);
  const auto& a = example.models.at(0);
  const auto& b = defaults.models.at(0);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.num_threads, b.num_threads);
  EXPECT_EQ(a.classes, b.classes);
  EXPECT_EQ(a.kv_cache.block_size, b.kv_cache.block_size);
  EXPECT_EQ(a.kv_cache.memory_bytes, b.kv_cache.memory_bytes);
  EXPECT_EQ(a.scheduler.max_batched_tokens, b.scheduler.max_batched_tokens);
  EXPECT_EQ(a.scheduler.max_running, b.scheduler.max_running);
  EXPECT_EQ(a.scheduler.prefill_chunk_tokens, b.scheduler.prefill_chunk_tokens);
  EXPECT_EQ(a.scheduler.max_waiting_realtime, b.scheduler.max_waiting_realtime);
  EXPECT_EQ(a.scheduler.max_waiting_complex, b.scheduler.max_waiting_complex);
  EXPECT_EQ(a.scheduler.realtime_deadline_ms, b.scheduler.realtime_deadline_ms);
  EXPECT_EQ(a.scheduler.complex_max_wait_ms, b.scheduler.complex_max_wait_ms);
  EXPECT_EQ(a.scheduler.realtime_step_budget_ms, b.scheduler.realtime_step_budget_ms);
  EXPECT_EQ(a.scheduler.complex_min_share, b.scheduler.complex_min_share);
  EXPECT_EQ(a.scheduler.realtime_max_request_share, b.scheduler.realtime_max_request_share);
  EXPECT_EQ(a.scheduler.realtime_overload, b.scheduler.realtime_overload);
  EXPECT_EQ(a.limits.max_prompt_tokens, b.limits.max_prompt_tokens);
  EXPECT_EQ(a.limits.max_tokens, b.limits.max_tokens);
  EXPECT_EQ(a.limits.default_max_tokens, b.limits.default_max_tokens);
  EXPECT_EQ(a.limits.max_candidates, b.limits.max_candidates);
  EXPECT_EQ(a.limits.max_context_tokens, b.limits.max_context_tokens);
  EXPECT_EQ(a.limits.max_candidate_tokens, b.limits.max_candidate_tokens);
  EXPECT_EQ(a.limits.max_total_candidate_tokens, b.limits.max_total_candidate_tokens);
  EXPECT_EQ(a.limits.max_stop_strings, b.limits.max_stop_strings);
  EXPECT_EQ(a.limits.max_stop_string_bytes, b.limits.max_stop_string_bytes);
}

}  // namespace
}  // namespace inferd
