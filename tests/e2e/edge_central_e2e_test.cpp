// Edge/central topology with two real inferd daemons on loopback: an edge serving realtime work on its own
// pool ("light") and forwarding complex work and the "full" model to a central daemon. Checks every RPC
// through the edge, deadline and cancellation propagation as the central daemon logs them (debug level:
// each RPC's decision with the deadline it saw, and its end), the response cache, and losing the central
// daemon mid-test: fast UNAVAILABLE naming the upstream, local realtime unaffected, recovery via half-open.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "daemon_process.h"
#include "inferd/v1/inferd.grpc.pb.h"

namespace inferd::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class EdgeCentralTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("inferd-edge-e2e-");
    central_port_ = FreePort();
    edge_port_ = FreePort();
    edge_metrics_port_ = FreePort();
    WriteFile(dir_ + "/central.yaml", CentralConfig());
    WriteFile(dir_ + "/edge.yaml", EdgeConfig());
    StartCentral();
    edge_ = std::make_unique<Process>(InferdBinary(),
                                      std::vector<std::string>{"--config", dir_ + "/edge.yaml", "--log-level", "debug"},
                                      dir_ + "/edge.log");
    ASSERT_TRUE(WaitServing(Address(edge_port_), seconds(120))) << edge_->Log();
  }
  static void TearDownTestSuite() {
    edge_.reset();
    central_.reset();
    std::filesystem::remove_all(dir_);
  }

  static void StartCentral() {
    central_ = std::make_unique<Process>(
        InferdBinary(), std::vector<std::string>{"--config", dir_ + "/central.yaml", "--log-level", "debug"},
        dir_ + "/central.log");
    ASSERT_TRUE(WaitServing(Address(central_port_), seconds(120))) << central_->Log();
  }

  static std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

  static std::string CentralConfig() {
    std::ostringstream c;
    c << "server: {grpc_address: \"" << Address(central_port_) << "\", drain_grace_seconds: 1}\n"
      << "metrics: {enabled: false}\n"
      << "models:\n  - name: full\n    path: " << E2eModelDir() << "\n    classes: [realtime, complex]\n"
      << "    scheduler: {realtime_deadline_ms: 10000}\n";  // serving, not admission, is under test here
    return c.str();
  }

  static std::string EdgeConfig() {
    std::ostringstream c;
    c << "server: {grpc_address: \"" << Address(edge_port_) << "\", drain_grace_seconds: 1}\n"
      << "metrics: {address: \"" << Address(edge_metrics_port_) << "\"}\n"
      << "models:\n  - name: light\n    path: " << E2eModelDir() << "\n    classes: [realtime]\n"
      << "    scheduler: {realtime_deadline_ms: 10000}\n"
      << "upstreams:\n  - name: central\n    targets: [\"" << Address(central_port_) << "\"]\n"
      << "    classes: [complex]\n    models: [full]\n"
      << "    health: {interval_ms: 200, timeout_ms: 200, unhealthy_threshold: 10, healthy_threshold: 1}\n"
      << "    breaker: {failure_threshold: 2, open_ms: 1000}\n"
      << "cache: {enabled: true, max_bytes: 1MiB, ttl_ms: 1500}\n";
    return c.str();
  }

  static std::unique_ptr<v1::Inference::Stub> Stub(int port) {
    return v1::Inference::NewStub(grpc::CreateChannel(Address(port), grpc::InsecureChannelCredentials()));
  }

  // Polls `log()` until it contains a line matching `pattern`; returns that line or "".
  static std::string WaitLogLine(Process& p, const std::string& pattern, milliseconds timeout = milliseconds(5000)) {
    const std::regex re(pattern);
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
      std::istringstream lines(p.Log());
      std::string line;
      while (std::getline(lines, line)) {
        if (std::regex_search(line, re)) return line;
      }
      std::this_thread::sleep_for(milliseconds(20));
    } while (std::chrono::steady_clock::now() < until);
    return "";
  }

  static v1::GenerateRequest LongGenerate(const std::string& request_id, int32_t max_tokens) {
    v1::GenerateRequest g;
    g.set_prompt("Write a long product description for a blue ceramic mug.");
    g.set_request_id(request_id);
    g.mutable_sampling()->set_max_tokens(max_tokens);
    g.mutable_sampling()->set_ignore_eos(true);
    return g;
  }

  static v1::RecommendRequest Rec(const std::string& context, const std::string& model = "") {
    v1::RecommendRequest r;
    r.set_model(model);
    r.set_context(context);
    const char* items[] = {" a sleeping bag", " a stove", " a lamp", " socks"};
    for (uint64_t i = 0; i < 4; ++i) {
      auto* c = r.add_candidates();
      c->set_item_id(100 + i);
      c->set_text(items[i]);
    }
    return r;
  }

  static inline std::string dir_;
  // The value of `series` on the edge's /metrics; -1 when the scrape fails or the series is absent.
  static double EdgeMetric(const std::string& series) {
    const std::optional<std::string> body = HttpGet(edge_metrics_port_, "/metrics");
    if (!body) return -1;
    return MetricValue(*body, series).value_or(-1);
  }

  static inline int central_port_ = 0, edge_port_ = 0, edge_metrics_port_ = 0;
  static inline std::unique_ptr<Process> central_, edge_;
};

std::vector<int32_t> Ids(const v1::GenerateResponse& r) {
  std::vector<int32_t> ids;
  for (const auto& t : r.tokens()) ids.push_back(t.token_id());
  return ids;
}

TEST_F(EdgeCentralTest, EveryRpcThroughTheEdge) {
  auto edge = Stub(edge_port_);
  auto central = Stub(central_port_);

  // Generate: complex by default, forwarded; the same greedy tokens as asking the central daemon directly.
  v1::GenerateRequest gen = LongGenerate("fwd-gen-1", 6);
  v1::GenerateResponse via_edge, direct;
  {
    grpc::ClientContext ctx;
    grpc::Status st = edge->Generate(&ctx, gen, &via_edge);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << edge_->Log();
  }
  {
    grpc::ClientContext ctx;
    gen.set_request_id("direct-gen-1");
    ASSERT_TRUE(central->Generate(&ctx, gen, &direct).ok());
  }
  EXPECT_EQ(via_edge.request_id(), "fwd-gen-1");
  EXPECT_EQ(Ids(via_edge), Ids(direct));
  EXPECT_EQ(via_edge.text(), direct.text());
  EXPECT_EQ(via_edge.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(via_edge.usage().generated_tokens(), 6);
  EXPECT_NE(WaitLogLine(*edge_,
                        "generate request_id=fwd-gen-1 class=complex rule=default:generate "
                        "backend=upstream 'central'"),
            "");
  EXPECT_NE(WaitLogLine(*central_, "request_id=fwd-gen-1 class=complex .*ended OK|request_id=fwd-gen-1 ended OK"), "")
      << central_->Log();

  // GenerateStream, forwarded: the deltas add up to the unary answer.
  gen.set_request_id("fwd-stream-1");
  grpc::ClientContext sctx;
  auto reader = edge->GenerateStream(&sctx, gen);
  v1::GenerateDelta delta;
  std::string text;
  while (reader->Read(&delta)) text += delta.text();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(text, direct.text());
  EXPECT_NE(WaitLogLine(*central_, "request_id=fwd-stream-1 ended OK"), "");

  // Recommend: realtime on the edge's own pool; naming the central model forwards it.
  v1::RecommendResponse local, remote;
  {
    grpc::ClientContext ctx;
    v1::RecommendRequest r = Rec("Local: the customer bought a tent and");
    r.set_request_id("local-rec-1");
    ASSERT_TRUE(edge->Recommend(&ctx, r, &local).ok());
  }
  EXPECT_NE(WaitLogLine(*edge_, "recommend request_id=local-rec-1 class=realtime .*backend=model pool 'light'"), "");
  {
    grpc::ClientContext ctx;
    v1::RecommendRequest r = Rec("Remote: the customer bought a tent and", "full");
    r.set_request_id("fwd-rec-1");
    r.set_encoding(v1::RESPONSE_ENCODING_COMPACT);
    grpc::Status st = edge->Recommend(&ctx, r, &remote);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(remote.has_compact());  // the edge encodes what central answered in PLAIN
  EXPECT_NE(WaitLogLine(*central_, "recommend request_id=fwd-rec-1 ended OK"), "");

  // Feedback: for the central model it is forwarded; an unknown model is NOT_FOUND at the edge.
  v1::FeedbackRequest fb;
  fb.set_request_id("fwd-rec-1");
  fb.set_model("full");
  fb.set_click(true);
  v1::FeedbackResponse fr;
  {
    grpc::ClientContext ctx;
    grpc::Status st = edge->Feedback(&ctx, fb, &fr);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  fb.set_model("nope");
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(edge->Feedback(&ctx, fb, &fr).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  // Forwarded RPCs are counted under the upstream, local ones under the pool; decisions by rule.
  const auto rpcs = [](const std::string& model, const std::string& cls, const std::string& method) {
    return EdgeMetric("inferd_grpc_requests_total{model=\"" + model + "\",class=\"" + cls + "\",method=\"" + method +
                      "\",code=\"OK\"}");
  };
  EXPECT_GE(rpcs("upstream:central", "complex", "Generate"), 1);
  EXPECT_GE(rpcs("upstream:central", "complex", "GenerateStream"), 1);
  EXPECT_GE(rpcs("upstream:central", "realtime", "Recommend"), 1);
  EXPECT_GE(rpcs("light", "realtime", "Recommend"), 1);
  EXPECT_GE(EdgeMetric("inferd_grpc_requests_total{model=\"upstream:central\",class=\"none\",method=\"Feedback\","
                       "code=\"OK\"}"),
            1);
  EXPECT_GE(EdgeMetric("inferd_classifications_total{model=\"upstream:central\",rule=\"default:generate\","
                       "class=\"complex\"}"),
            1);
  EXPECT_GE(EdgeMetric("inferd_upstream_calls_total{upstream=\"central\"}"), 4);  // the four above
  EXPECT_EQ(EdgeMetric("inferd_upstream_breaker_state{upstream=\"central\",state=\"closed\"}"), 1);
}

TEST_F(EdgeCentralTest, DeadlinePropagatesToTheCentralDaemon) {
  auto edge = Stub(edge_port_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(400));
  v1::GenerateResponse resp;
  const auto t0 = std::chrono::steady_clock::now();
  grpc::Status st = edge->Generate(&ctx, LongGenerate("deadline-1", 1000), &resp);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_LT(took, milliseconds(1500));
  // The central daemon saw what was left of the 400 ms, not an unbounded request.
  const std::string seen = WaitLogLine(*central_, "request_id=deadline-1 class=complex .*deadline_in_ms=[0-9]+");
  ASSERT_NE(seen, "") << central_->Log();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(seen, m, std::regex("deadline_in_ms=([0-9]+)")));
  const int left = std::stoi(m[1]);
  EXPECT_GT(left, 0);
  EXPECT_LE(left, 400);
  // And it ended the request early (deadline or the propagated cancellation), freeing its blocks.
  EXPECT_NE(WaitLogLine(*central_, "request_id=deadline-1 ended (DEADLINE_EXCEEDED|CANCELLED)"), "") << central_->Log();
}

TEST_F(EdgeCentralTest, ClientCancellationPropagatesToTheCentralDaemon) {
  auto edge = Stub(edge_port_);
  grpc::ClientContext ctx;
  auto reader = edge->GenerateStream(&ctx, LongGenerate("cancel-1", 1000));
  v1::GenerateDelta delta;
  ASSERT_TRUE(reader->Read(&delta)) << edge_->Log();
  ctx.TryCancel();
  while (reader->Read(&delta)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_NE(WaitLogLine(*central_, "generate_stream request_id=cancel-1 ended CANCELLED", milliseconds(3000)), "")
      << central_->Log();
}

TEST_F(EdgeCentralTest, RealtimeRecommendHitsTheCacheUntilTheTtl) {
  auto edge = Stub(edge_port_);
  const v1::RecommendRequest r = Rec("Cache: the customer bought a tent and");
  auto call = [&] {
    grpc::ClientContext ctx;
    v1::RecommendResponse resp;
    grpc::Status st = edge->Recommend(&ctx, r, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  };
  v1::RecommendResponse first = call();
  v1::RecommendResponse second = call();
  EXPECT_FALSE(first.from_cache());
  EXPECT_TRUE(second.from_cache());
  EXPECT_EQ(second.response_hash(), first.response_hash());
  const double hits = EdgeMetric("inferd_response_cache_hits_total");
  const double expirations = EdgeMetric("inferd_response_cache_expirations_total");
  EXPECT_GE(hits, 1);
  EXPECT_GE(EdgeMetric("inferd_response_cache_entries"), 1);
  EXPECT_GT(EdgeMetric("inferd_response_cache_bytes"), 0);
  EXPECT_EQ(EdgeMetric("inferd_response_cache_max_bytes"), 1 << 20);
  std::this_thread::sleep_for(milliseconds(1700));  // ttl_ms 1500
  EXPECT_FALSE(call().from_cache());
  EXPECT_TRUE(call().from_cache());
  EXPECT_EQ(EdgeMetric("inferd_response_cache_hits_total"), hits + 1);
  EXPECT_EQ(EdgeMetric("inferd_response_cache_expirations_total"), expirations + 1);
}

TEST_F(EdgeCentralTest, LosingTheCentralDaemonFailsForwardedWorkFastAndRecoversThroughHalfOpen) {
  auto edge = Stub(edge_port_);
  auto forward = [&](const std::string& id, std::chrono::steady_clock::duration* took) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::GenerateResponse resp;
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = edge->Generate(&ctx, LongGenerate(id, 4), &resp);
    if (took) *took = std::chrono::steady_clock::now() - t0;
    return st;
  };
  auto local_recommend = [&](int i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::RecommendResponse resp;
    // A fresh context each time: no cache hit hides the local pool's work.
    return edge->Recommend(&ctx, Rec("Outage " + std::to_string(i) + ": the customer bought a tent and"), &resp);
  };
  ASSERT_TRUE(forward("before-kill", nullptr).ok());

  central_->Signal(SIGKILL);
  ASSERT_TRUE(central_->WaitExit(seconds(5)).has_value());
  for (int i = 0; i < 6; ++i) {
    std::chrono::steady_clock::duration took{};
    grpc::Status st = forward("down-" + std::to_string(i), &took);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    EXPECT_NE(st.error_message().find("upstream 'central'"), std::string::npos) << st.error_message();
    EXPECT_LT(took, milliseconds(500)) << st.error_message();
    grpc::Status local = local_recommend(i);
    EXPECT_TRUE(local.ok()) << local.error_message();
    std::this_thread::sleep_for(milliseconds(100));
  }
  // Two failed calls opened the breaker at once; ten failed health checks (2 s) later ejected the replica.
  EXPECT_NE(WaitLogLine(*edge_, "upstream 'central': circuit breaker closed -> open"), "") << edge_->Log();
  EXPECT_NE(WaitLogLine(*edge_, "upstream 'central': replica .* ejected"), "") << edge_->Log();
  const std::string replica = "upstream=\"central\",replica=\"" + Address(central_port_) + "\"";
  EXPECT_EQ(EdgeMetric("inferd_upstream_replica_healthy{" + replica + "}"), 0);
  EXPECT_EQ(EdgeMetric("inferd_upstream_healthy_replicas{upstream=\"central\"}"), 0);
  EXPECT_GE(EdgeMetric("inferd_upstream_replica_ejections_total{" + replica + "}"), 1);
  EXPECT_GE(EdgeMetric("inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"open\"}"), 1);
  // Each of the six forwarded calls ended one way: UNAVAILABLE from the dead replica, refused by the open
  // breaker, or refused for want of a healthy replica.
  EXPECT_GE(EdgeMetric("inferd_upstream_failures_total{upstream=\"central\"}") +
                EdgeMetric("inferd_upstream_breaker_rejected_total{upstream=\"central\"}") +
                EdgeMetric("inferd_upstream_no_healthy_replica_total{upstream=\"central\"}"),
            6);
  EXPECT_GE(EdgeMetric("inferd_grpc_requests_total{model=\"upstream:central\",class=\"complex\","
                       "method=\"Generate\",code=\"UNAVAILABLE\"}"),
            6);

  StartCentral();
  // After open_ms the half-open probe goes through and closes the breaker; health checks re-admit.
  grpc::Status st;
  const auto until = std::chrono::steady_clock::now() + seconds(15);
  int tries = 0;
  do {
    st = forward("after-restart-" + std::to_string(tries++), nullptr);
    if (st.ok()) break;
    std::this_thread::sleep_for(milliseconds(200));
  } while (std::chrono::steady_clock::now() < until);
  EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << edge_->Log();
  EXPECT_NE(WaitLogLine(*edge_, "upstream 'central': replica .* re-admitted"), "");
  EXPECT_NE(WaitLogLine(*edge_, "upstream 'central': circuit breaker half_open -> closed \\(probe\\)"), "")
      << edge_->Log();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(forward("recovered-" + std::to_string(i), nullptr).ok());
  EXPECT_EQ(EdgeMetric("inferd_upstream_breaker_state{upstream=\"central\",state=\"closed\"}"), 1);
  EXPECT_EQ(EdgeMetric("inferd_upstream_breaker_state{upstream=\"central\",state=\"open\"}"), 0);
  EXPECT_GE(EdgeMetric("inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"half_open\"}"), 1);
  EXPECT_GE(EdgeMetric("inferd_upstream_breaker_transitions_total{upstream=\"central\",state=\"closed\"}"), 1);
  EXPECT_EQ(EdgeMetric("inferd_upstream_replica_healthy{" + replica + "}"), 1);
  EXPECT_GE(EdgeMetric("inferd_grpc_requests_total{model=\"upstream:central\",class=\"complex\","
                       "method=\"Generate\",code=\"OK\"}"),
            4);
}

TEST(EdgeCheckConfigTest, UnreachableRuleIsRejectedWithItsPath) {
  const std::string dir = MakeTempDir("inferd-edge-check-");
  WriteFile(dir + "/bad.yaml",
            std::string("models: [{name: light, path: ") + E2eModelDir() + "}]\n" +
                "classification:\n  rules:\n"
                "    - {name: generates, match: {rpc: [generate]}, class: complex}\n"
                "    - {name: tiny, match: {rpc: [generate], max_tokens: {max: 4}}, class: realtime}\n");
  std::string out;
  EXPECT_EQ(RunCommand(InferdBinary() + " --check-config --config " + dir + "/bad.yaml", &out), 2) << out;
  EXPECT_NE(out.find("classification.rules[1] (tiny): unreachable: rules[0] (generates)"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace inferd::e2e
