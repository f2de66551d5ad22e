// UpstreamBackend against real in-process inferd servers (real gRPC on loopback, engines over the fake
// executor): balancing by outstanding calls, retry on another replica only before anything was received,
// health ejection and re-admission, deadline and cancel propagation, the breaker's fast refusal, and
// Reload of the token and TLS files (certificates made here with openssl).
#include "upstream/upstream_backend.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "server/server_test_util.h"

namespace inferd::upstream {
namespace {

using server::testing::PoolSpec;
using server::testing::TestServer;
using std::chrono::milliseconds;

std::unique_ptr<TestServer> Central(std::chrono::microseconds step_delay = std::chrono::microseconds(0)) {
  PoolSpec spec;
  spec.name = "full";
  spec.step_delay = step_delay;
  return std::make_unique<TestServer>(std::vector<PoolSpec>{spec});
}

std::string Address(TestServer& ts) {
  return "127.0.0.1:" + std::to_string(ts.server().port());
}

UpstreamConfig Config(const std::vector<std::string>& targets) {
  UpstreamConfig c;
  c.name = "central";
  c.targets = targets;
  c.classes = {"complex"};
  c.health.interval_ms = 3.6e6;  // checks only when a test asks (CheckHealthOnce) or at construction
  // A refused connect fails at once; a first connect under TSan on a loaded 2-core machine took over 500 ms.
  c.health.timeout_ms = 5000;
  c.breaker.failure_threshold = 3;
  c.breaker.open_ms = 60000;
  return c;
}

v1::GenerateRequest Gen(int32_t max_tokens) {
  v1::GenerateRequest g;
  g.mutable_prompt_token_ids()->add_ids(0);
  for (int i = 1; i < 12; ++i) g.mutable_prompt_token_ids()->add_ids(100 + 17 * i);
  g.mutable_sampling()->set_max_tokens(max_tokens);
  g.mutable_sampling()->set_ignore_eos(true);
  return g;
}

server::CallOptions Options(const std::string& id, std::optional<TimePoint> deadline = std::nullopt) {
  server::CallOptions o;
  o.cls = RequestClass::kComplex;
  o.request_id = id;
  o.deadline = deadline;
  return o;
}

std::vector<TokenId> Collect(RequestStream& stream) {
  std::vector<TokenId> ids;
  TokenDelta d;
  while (stream.Read(&d, milliseconds(10000)) == RequestStream::ReadResult::kDelta) {
    ids.insert(ids.end(), d.token_ids.begin(), d.token_ids.end());
  }
  return ids;
}

TEST(UpstreamBackendTest, ForwardsGenerateAndReturnsTheCentralTokens) {
  auto central = Central();
  UpstreamBackend backend(Config({Address(*central)}));
  server::Submitted sub = backend.Generate(Gen(5), Options("u-1"));
  ASSERT_TRUE(sub.status.ok()) << sub.status.ToString();
  const v1::GenerateRequest g = Gen(5);
  std::vector<TokenId> prompt(g.prompt_token_ids().ids().begin(), g.prompt_token_ids().ids().end());
  EXPECT_EQ(Collect(*sub.stream), server::testing::ExpectedIds(prompt, 5));
  const RequestOutcome& o = sub.stream->Wait();
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ(o.generated_tokens, 5);
  EXPECT_EQ(o.prompt_tokens, 12);
}

TEST(UpstreamBackendTest, BalancesByOutstandingCalls) {
  auto a = Central(std::chrono::microseconds(2000));
  auto b = Central(std::chrono::microseconds(2000));
  UpstreamBackend backend(Config({Address(*a), Address(*b)}));
  std::vector<server::Submitted> subs;
  for (int i = 0; i < 4; ++i) {
    subs.push_back(backend.Generate(Gen(200), Options("bal-" + std::to_string(i))));
    ASSERT_TRUE(subs.back().status.ok());
    // Let the call register as outstanding before the next pick.
    for (int k = 0; k < 200; ++k) {
      UpstreamStats s = backend.stats();
      if (s.replicas[0].outstanding + s.replicas[1].outstanding == i + 1) break;
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  UpstreamStats s = backend.stats();
  EXPECT_EQ(s.replicas[0].outstanding, 2);
  EXPECT_EQ(s.replicas[1].outstanding, 2);
  for (auto& sub : subs) backend.Cancel(sub.stream->id());
  for (auto& sub : subs) EXPECT_EQ(sub.stream->Wait().status.code(), StatusCode::kCancelled);
}

TEST(UpstreamBackendTest, RetriesOnAnotherReplicaWhenOneDiedBeforeAnythingWasSent) {
  auto a = Central();
  auto b = Central();
  UpstreamBackend backend(Config({Address(*a), Address(*b)}));
  a.reset();  // healthy at start-up, gone now; no health check runs before the calls
  for (int i = 0; i < 4; ++i) {
    server::Submitted sub = backend.Generate(Gen(3), Options("retry-" + std::to_string(i)));
    ASSERT_TRUE(sub.status.ok());
    Collect(*sub.stream);
    EXPECT_TRUE(sub.stream->Wait().status.ok()) << sub.stream->Wait().status.ToString();
  }
  UpstreamStats s = backend.stats();
  EXPECT_GE(s.retries_total, 1u);
  EXPECT_EQ(s.breaker.state, BreakerState::kClosed);
}

TEST(UpstreamBackendTest, HealthChecksEjectAndReadmitAReplica) {
  auto a = Central();
  auto b = Central();
  UpstreamConfig cfg = Config({Address(*a), Address(*b)});
  cfg.health.unhealthy_threshold = 2;
  cfg.health.healthy_threshold = 2;
  UpstreamBackend backend(cfg);
  ASSERT_TRUE(backend.stats().replicas[0].healthy);
  a->server().SetServing(false);  // health NOT_SERVING
  backend.CheckHealthOnce();
  EXPECT_TRUE(backend.stats().replicas[0].healthy);  // one failure is below the threshold
  backend.CheckHealthOnce();
  EXPECT_FALSE(backend.stats().replicas[0].healthy);
  EXPECT_EQ(backend.stats().replicas[0].ejections_total, 1u);
  for (int i = 0; i < 3; ++i) {  // everything goes to b meanwhile
    server::Submitted sub = backend.Generate(Gen(2), Options("ej-" + std::to_string(i)));
    ASSERT_TRUE(sub.status.ok());
    sub.stream->Wait();
  }
  EXPECT_EQ(backend.stats().replicas[0].calls_total, 0u);
  EXPECT_EQ(backend.stats().replicas[1].calls_total, 3u);
  a->server().SetServing(true);
  backend.CheckHealthOnce();
  EXPECT_FALSE(backend.stats().replicas[0].healthy);
  backend.CheckHealthOnce();
  EXPECT_TRUE(backend.stats().replicas[0].healthy);
}

TEST(UpstreamBackendTest, CancelFreesTheCentralKvBlocks) {
  auto central = Central(std::chrono::microseconds(3000));
  UpstreamBackend backend(Config({Address(*central)}));
  server::Submitted sub = backend.Generate(Gen(1000), Options("cancel-1"));
  ASSERT_TRUE(sub.status.ok());
  TokenDelta d;
  ASSERT_EQ(sub.stream->Read(&d, milliseconds(10000)), RequestStream::ReadResult::kDelta);
  EXPECT_LT(central->engine().LastStats().kv_free_blocks, central->engine().num_blocks());
  backend.Cancel(sub.stream->id());
  EXPECT_EQ(sub.stream->Wait().status.code(), StatusCode::kCancelled);
  EXPECT_TRUE(central->WaitAllBlocksFree(0, milliseconds(2000)));
  EXPECT_EQ(backend.stats().breaker.state, BreakerState::kClosed);  // a cancel is no failure
}

TEST(UpstreamBackendTest, DeadlineTravelsWithTheCall) {
  auto central = Central(std::chrono::microseconds(3000));
  UpstreamBackend backend(Config({Address(*central)}));
  v1::GenerateRequest g = Gen(1000);
  g.set_latency_budget_ms(150);
  const auto t0 = Clock::now();
  server::Submitted sub = backend.Generate(g, Options("dl-1", t0 + milliseconds(150)));
  ASSERT_TRUE(sub.status.ok());
  Collect(*sub.stream);
  const RequestOutcome& o = sub.stream->Wait();
  EXPECT_EQ(o.status.code(), StatusCode::kDeadlineExceeded) << o.status.ToString();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  EXPECT_TRUE(central->WaitAllBlocksFree(0, milliseconds(2000)));
}

TEST(UpstreamBackendTest, DeadUpstreamOpensTheBreakerAndIsRefusedAtOnceNamingIt) {
  auto central = Central();
  UpstreamBackend backend(Config({Address(*central)}));
  central.reset();
  for (int i = 0; i < 3; ++i) {
    server::Submitted sub = backend.Generate(Gen(2), Options("dead-" + std::to_string(i)));
    ASSERT_TRUE(sub.status.ok());
    const RequestOutcome& o = sub.stream->Wait();
    EXPECT_EQ(o.status.code(), StatusCode::kUnavailable);
    EXPECT_NE(o.status.message().find("upstream 'central'"), std::string::npos) << o.status.message();
  }
  EXPECT_EQ(backend.stats().breaker.state, BreakerState::kOpen);
  const auto t0 = Clock::now();
  server::Submitted refused = backend.Generate(Gen(2), Options("dead-fast"));
  EXPECT_LT(Clock::now() - t0, milliseconds(5));
  EXPECT_EQ(refused.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status.message().find("upstream 'central': circuit breaker open"), std::string::npos)
      << refused.status.message();
  EXPECT_EQ(backend.stats().breaker.opened_total, 1u);
}

TEST(UpstreamBackendTest, DnsNameBecomesOneReplicaPerAddress) {
  auto central = Central();
  UpstreamConfig cfg = Config({});
  cfg.dns = "localhost:" + std::to_string(central->server().port());
  UpstreamBackend backend(cfg);
  UpstreamStats s = backend.stats();
  const std::string v4 = Address(*central);
  auto it = std::find_if(s.replicas.begin(), s.replicas.end(), [&](const ReplicaStats& r) { return r.address == v4; });
  ASSERT_NE(it, s.replicas.end()) << "localhost did not resolve to " << v4;
  EXPECT_TRUE(it->healthy);
  // The server listens on 127.0.0.1 only: an IPv6 ::1 record, if any, fails its first health check.
  for (const ReplicaStats& r : s.replicas) {
    if (r.address != v4) {
      EXPECT_FALSE(r.healthy) << r.address;
    }
  }
  server::Submitted sub = backend.Generate(Gen(2), Options("dns-1"));
  ASSERT_TRUE(sub.status.ok());
  EXPECT_TRUE(sub.stream->Wait().status.ok());
}

// The DNS name re-resolved: an address that appears joins once it passes its health checks, one that
// vanishes leaves (its in-flight call still finishes), and a failed lookup keeps the current set.
TEST(UpstreamBackendTest, DnsRefreshAddsAndRemovesReplicas) {
  auto a = Central(std::chrono::microseconds(2000));
  auto b = Central();
  std::mutex mu;
  std::vector<std::string> answer = {Address(*a)};
  bool fail = false;
  UpstreamConfig cfg = Config({});
  cfg.dns = "central.test:50051";
  cfg.dns_refresh_ms = 3.6e6;  // refreshed only when the test asks
  UpstreamBackend backend(cfg, [&](const std::string& name, const std::string& hostport) {
    EXPECT_EQ(name, "central");
    EXPECT_EQ(hostport, "central.test:50051");
    std::lock_guard<std::mutex> lock(mu);
    if (fail) throw std::runtime_error("upstream 'central': dns 'central.test:50051' does not resolve: test");
    return answer;
  });
  ASSERT_EQ(backend.stats().replicas.size(), 1u);
  server::Submitted long_call = backend.Generate(Gen(300), Options("dns-long"));  // on a, still running below
  ASSERT_TRUE(long_call.status.ok());

  {
    std::lock_guard<std::mutex> lock(mu);
    answer = {Address(*b)};
  }
  backend.RefreshDnsOnce();
  UpstreamStats s = backend.stats();
  ASSERT_EQ(s.replicas.size(), 1u);
  EXPECT_EQ(s.replicas[0].address, Address(*b));
  EXPECT_FALSE(s.replicas[0].healthy);  // not before a health check passed
  EXPECT_EQ(backend.Generate(Gen(2), Options("dns-none")).status.code(), StatusCode::kUnavailable);
  backend.CheckHealthOnce();
  EXPECT_TRUE(backend.stats().replicas[0].healthy);
  server::Submitted on_b = backend.Generate(Gen(2), Options("dns-b"));
  ASSERT_TRUE(on_b.status.ok());
  EXPECT_TRUE(on_b.stream->Wait().status.ok()) << on_b.stream->Wait().status.ToString();
  EXPECT_EQ(backend.stats().replicas[0].calls_total, 1u);
  // The call on the removed replica was not cut off.
  const RequestOutcome& o = long_call.stream->Wait();
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.generated_tokens, 300);

  {
    std::lock_guard<std::mutex> lock(mu);
    fail = true;
  }
  backend.RefreshDnsOnce();
  ASSERT_EQ(backend.stats().replicas.size(), 1u);
  EXPECT_EQ(backend.stats().replicas[0].address, Address(*b));
  EXPECT_TRUE(backend.stats().replicas[0].healthy);
}

// Through an edge front end: a realtime Recommend the local pool refuses (its realtime queue holds 0)
// goes to the overflow upstream; without overflow it is RESOURCE_EXHAUSTED.
TEST(UpstreamOverflowTest, RealtimeWorkTheLocalPoolRefusesGoesUpstream) {
  auto central = Central();
  for (bool overflow : {true, false}) {
    auto backend = std::make_shared<UpstreamBackend>(Config({Address(*central)}));
    PoolSpec light;
    light.name = "light";
    light.classes = {RequestClass::kRealtime};
    light.max_waiting_realtime = 0;
    server::InferenceServiceOptions options;
    options.upstreams.push_back(server::BackendRoute{backend, {RequestClass::kComplex}, {"full"}, overflow, "central"});
    TestServer edge({light}, options);
    v1::RecommendRequest req;
    req.set_context("Bought a tent and");
    for (uint64_t i = 0; i < 3; ++i) {
      auto* c = req.add_candidates();
      c->set_item_id(10 + i);
      c->set_text(i == 0 ? " a stove" : i == 1 ? " a lamp" : " socks");
    }
    v1::RecommendResponse resp;
    auto ctx = server::testing::Ctx();
    grpc::Status st = edge.stub().Recommend(ctx.get(), req, &resp);
    if (overflow) {
      EXPECT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(resp.plain().items_size(), 3);
      EXPECT_EQ(backend->stats().calls_total, 1u);
    } else {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
      EXPECT_EQ(backend->stats().calls_total, 0u);
    }
  }
}

// Token and TLS files in a temporary directory; certificates made with the openssl command.
class UpstreamReloadTest : public ::testing::Test {
 protected:
  // printf %s s3cret-inference | sha256sum ; printf %s s3cret-feedback | sha256sum
  static constexpr const char* kToken1 = "s3cret-inference";
  static constexpr const char* kHash1 = "d8b0525aa050ecb1b82569d9c4eb7d0123b7176fc59ae4d5cf11f61216c587c4";
  static constexpr const char* kToken2 = "s3cret-feedback";
  static constexpr const char* kHash2 = "c8b86dfdcf4150df9db7a8760b0a516c2a1ff40b904733030cbc5517f6b67641";

  void SetUp() override {
    char templ[] = "/tmp/inferd-upstream-reload-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name), std::ios::binary | std::ios::trunc) << text;
  }
  void Copy(const std::string& from, const std::string& to) const {
    std::filesystem::copy_file(Path(from), Path(to), std::filesystem::copy_options::overwrite_existing);
  }
  // False when openssl is missing or fails.
  bool Run(const std::string& cmd) const {
    return std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str()) == 0;
  }
  bool MakeCa(const std::string& name) const {
    return Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + " -keyout " + name +
               ".key -out " + name + ".pem");
  }
  bool MakeServerCert(const std::string& ca, const std::string& name) const {
    Write(name + ".ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    return Run("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + name + ".key -out " + name +
               ".csr") &&
           Run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
               ".key -CAcreateserial -days 2 -out " + name + ".pem -extfile " + name + ".ext");
  }
  void CentralTokens(const std::string& lines) const { Write("central.tokens", lines); }

  static PoolSpec FullPool(std::chrono::microseconds step_delay = std::chrono::microseconds(0)) {
    PoolSpec spec;
    spec.name = "full";
    spec.step_delay = step_delay;
    return spec;
  }
  // A finished Generate's status (waits for its stream).
  static Status GenerateStatus(UpstreamBackend& backend, const std::string& id, int32_t max_tokens = 3) {
    server::Submitted sub = backend.Generate(Gen(max_tokens), Options(id));
    if (!sub.status.ok()) return sub.status;
    Collect(*sub.stream);
    return sub.stream->Wait().status;
  }

  std::string dir_;
};

TEST_F(UpstreamReloadTest, ANewTokenGoesOutOnCallsAfterReloadAndABadFileKeepsTheOld) {
  CentralTokens(std::string("edge sha256:") + kHash1 + " inference\n");
  ServerConfig sc;
  sc.auth.token_file = Path("central.tokens");
  TestServer central(std::vector<PoolSpec>{FullPool()}, {}, sc);
  Write("edge.token", std::string(kToken1) + "\n");
  UpstreamConfig c = Config({Address(central)});
  c.token_file = Path("edge.token");
  UpstreamBackend backend(c);
  EXPECT_TRUE(GenerateStatus(backend, "tok-1").ok());

  // Central accepts only the second token now; the edge still sends the first until it reloads.
  CentralTokens(std::string("edge sha256:") + kHash2 + " inference\n");
  ASSERT_TRUE(central.server().Reload().ok());
  Status refused = GenerateStatus(backend, "tok-2");
  EXPECT_EQ(refused.code(), StatusCode::kUnauthenticated) << refused.ToString();
  EXPECT_NE(refused.message().find("upstream 'central'"), std::string::npos) << refused.message();

  Write("edge.token", std::string(kToken2) + "\n");
  ASSERT_TRUE(backend.Reload().ok());
  EXPECT_TRUE(GenerateStatus(backend, "tok-3").ok());

  Write("edge.token", "\n");
  Status bad = backend.Reload();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "upstream 'central': token_file: " + Path("edge.token") + " is empty");
  Status kept = GenerateStatus(backend, "tok-4");
  EXPECT_TRUE(kept.ok()) << kept.ToString();
  EXPECT_EQ(backend.stats().breaker.state, BreakerState::kClosed);
}

TEST_F(UpstreamReloadTest, NewTlsFilesGiveNewChannelsWhileRunningCallsFinish) {
  if (!MakeCa("ca1") || !MakeCa("ca2") || !MakeServerCert("ca1", "server1") || !MakeServerCert("ca2", "server2")) {
    GTEST_SKIP() << "openssl (Debian package openssl) not found or failing";
  }
  Copy("server1.pem", "central.pem");
  Copy("server1.key", "central.key");
  ServerConfig sc;
  sc.tls.cert_file = Path("central.pem");
  sc.tls.key_file = Path("central.key");
  TestServer central(std::vector<PoolSpec>{FullPool(std::chrono::microseconds(2000))}, {}, sc);
  Copy("ca1.pem", "edge-ca.pem");
  UpstreamConfig c = Config({Address(central)});
  c.tls.enabled = true;
  c.tls.ca_file = Path("edge-ca.pem");
  c.tls.server_name = "localhost";
  c.breaker.failure_threshold = 1000;  // the refused handshakes below must not open it
  UpstreamBackend backend(c);
  ASSERT_TRUE(GenerateStatus(backend, "tls-1").ok());
  server::Submitted running = backend.Generate(Gen(300), Options("tls-running"));  // about 0.6 s
  ASSERT_TRUE(running.status.ok());
  TokenDelta first;
  ASSERT_EQ(running.stream->Read(&first, milliseconds(10000)), RequestStream::ReadResult::kDelta);

  Write("edge-ca.pem", "not a certificate\n");
  Status bad = backend.Reload();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "upstream 'central': tls.ca_file: " + Path("edge-ca.pem") + " holds no PEM certificate");
  EXPECT_TRUE(GenerateStatus(backend, "tls-kept").ok());

  // Roots that do not sign central's certificate: new calls go over a new channel and fail its handshake.
  Copy("ca2.pem", "edge-ca.pem");
  ASSERT_TRUE(backend.Reload().ok());
  Status refused = GenerateStatus(backend, "tls-ca2");
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  // The call that started on the old channel was not cut off.
  Collect(*running.stream);
  const RequestOutcome& o = running.stream->Wait();
  EXPECT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.generated_tokens, 300);

  // Central moves to a certificate of the new CA: the edge's new channel connects (within central's
  // 1 s certificate refresh and the channel's reconnect backoff).
  Copy("server2.pem", "central.pem");
  Copy("server2.key", "central.key");
  ASSERT_TRUE(central.server().Reload().ok());
  Status st = Unavailable("not tried");
  for (int i = 0; i < 100 && !st.ok(); ++i) {
    st = GenerateStatus(backend, "tls-ca2-" + std::to_string(i));
    if (!st.ok()) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(st.ok()) << st.ToString();
}

}  // namespace
}  // namespace inferd::upstream
