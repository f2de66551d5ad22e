// The http section of the config (the OpenAI-compatible front end).
#include <gtest/gtest.h>

#include <string>

#include "inferd/config.h"
#include "test_env.h"

namespace inferd {
namespace {

#define MODEL "models: [{name: m, path: /m}]\n"

std::string ErrorOf(const std::string& yaml) {
  try {
    ParseConfig(yaml, "http.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(HttpConfig, OffByDefaultAndOnLoopback) {
  const Config c = ParseConfig(MODEL);
  EXPECT_FALSE(c.http.enabled);
  EXPECT_EQ(c.http.address, "127.0.0.1:8000");
  EXPECT_EQ(c.http.max_body_bytes, 4 << 20);
  EXPECT_EQ(c.http.max_header_bytes, 16 << 10);
  EXPECT_EQ(c.http.max_connections, 256);
  EXPECT_EQ(c.http.idle_timeout_ms, 30000);
  EXPECT_EQ(c.http.read_timeout_ms, 10000);
  EXPECT_EQ(c.http.request_timeout_ms, 0);
}

TEST(HttpConfig, SectionIsReadIntoTheStruct) {
  const Config c = ParseConfig(MODEL R"(http: {enabled: true, address: "0.0.0.0:9001", max_body_bytes: 64KiB,
  max_header_bytes: 2KiB, max_connections: 8, idle_timeout_ms: 1500, read_timeout_ms: 250.5,
  request_timeout_ms: 20000})");
  EXPECT_TRUE(c.http.enabled);
  EXPECT_EQ(c.http.address, "0.0.0.0:9001");
  EXPECT_EQ(c.http.max_body_bytes, 65536);
  EXPECT_EQ(c.http.max_header_bytes, 2048);
  EXPECT_EQ(c.http.max_connections, 8);
  EXPECT_EQ(c.http.idle_timeout_ms, 1500);
  EXPECT_EQ(c.http.read_timeout_ms, 250.5);
  EXPECT_EQ(c.http.request_timeout_ms, 20000);
}

TEST(HttpConfig, InvalidKeysNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"http: {enabeld: true}", "http.yaml: http.enabeld: unknown key"},
      {"http: {address: localhost}", "http.address: expected host:port, found 'localhost'"},
      {"http: {max_body_bytes: 12}", "http.max_body_bytes"},
      {"http: {max_body_bytes: 2GiB}", "http.max_body_bytes: must be at most 1GiB"},
      {"http: {max_header_bytes: 2MiB}", "http.max_header_bytes: must be at most 1MiB"},
      {"http: {max_connections: 0}", "http.max_connections: must be in [1"},
      {"http: {idle_timeout_ms: 0}", "http.idle_timeout_ms: must be in [1"},
      {"http: {read_timeout_ms: -5}", "http.read_timeout_ms: must be in [1"},
      {"http: {request_timeout_ms: -1}", "http.request_timeout_ms: must be in [0"},
      {"http: {request_timeout_ms: 4e6}", "http.request_timeout_ms: must be in [0"},
      {"http: {enabled: true, address: '127.0.0.1:50051'}", "http.address: must differ from server.grpc_address"},
      {"http: {enabled: true, address: '127.0.0.1:9464'}", "http.address: must differ from metrics.address"},
  };
  for (const auto& [yaml, want] : cases) {
    const std::string err = ErrorOf(std::string(MODEL) + yaml);
    EXPECT_NE(err.find(want), std::string::npos) << yaml << "\n got: " << err;
  }
  // A disabled front end does not claim its address.
  EXPECT_EQ(ErrorOf(MODEL "http: {address: '127.0.0.1:50051'}"), "");
}

TEST(HttpConfig, ExampleDocumentsTheDefaults) {
  const Config example = LoadConfigFile(inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/configs/inferd.example.yaml");
  const HttpConfig defaults;
  EXPECT_EQ(example.http.enabled, defaults.enabled);
  EXPECT_EQ(example.http.address, defaults.address);
  EXPECT_EQ(example.http.max_body_bytes, defaults.max_body_bytes);
  EXPECT_EQ(example.http.max_header_bytes, defaults.max_header_bytes);
  EXPECT_EQ(example.http.max_connections, defaults.max_connections);
  EXPECT_EQ(example.http.idle_timeout_ms, defaults.idle_timeout_ms);
  EXPECT_EQ(example.http.read_timeout_ms, defaults.read_timeout_ms);
  EXPECT_EQ(example.http.request_timeout_ms, defaults.request_timeout_ms);
}

}  // namespace
}  // namespace inferd
