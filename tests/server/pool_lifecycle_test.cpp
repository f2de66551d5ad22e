// Model pool lifecycle at the gRPC edge: a PoolSlot swapped under a real GrpcServer (fake-executor engines,
// real tokenizer, loopback stub). The second "model" is a fake executor with a different vocabulary size, so
// its greedy tokens differ (FakeExecutor::ReferenceGenerate gives both independently) while its Recommend
// scores are the same: a cache hit or a DIFF across the swap would therefore go unnoticed by the scores and
// is caught by from_cache and the response's encoding. Also: drain, abort by request id, per-pool health,
// and the Control service's access checks.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "auth/token_auth.h"
#include "engine/fake_executor.h"
#include "inferd/v1/control.grpc.pb.h"
#include "server/control_service.h"
#include "server/grpc_server.h"
#include "server/text_stream.h"
#include "server_test_util.h"

namespace inferd::server {
namespace {

using testing::Ctx;
using testing::TestTokenizer;

std::unique_ptr<Engine> FakeEngine(int32_t vocab, RequestId first_id, std::chrono::microseconds step_delay = {}) {
  EngineOptions eo;
  eo.kv_cache.num_blocks_override = 256;
  eo.kv_cache.block_size = 16;
  eo.scheduler.max_model_len = 4096;
  eo.first_request_id = first_id;
  engine::FakeExecutorOptions fx;
  fx.vocab_size = vocab;
  fx.step_delay = step_delay;
  auto e = Engine::Create(eo, std::make_unique<engine::FakeExecutor>(fx), TokenizerTextStreamFactory(TestTokenizer()));
  if (!e.ok()) throw std::runtime_error(e.status().ToString());
  return std::move(e).value();
}

std::shared_ptr<const PoolGeneration> Generation(std::unique_ptr<Engine> engine, const std::string& id) {
  auto g = std::make_shared<PoolGeneration>();
  g->engine = engine.get();
  g->tokenizer = TestTokenizer();
  g->max_model_len = 4096;
  g->checkpoint_id = id;
  g->owner = std::shared_ptr<Engine>(std::move(engine));
  return g;
}

class FakeController final : public PoolController {
 public:
  std::vector<PoolStatus> ListPools() const override {
    PoolStatus s;
    s.name = "default";
    s.state = PoolState::kServing;
    s.checkpoint.path = "/models/a";
    s.checkpoint.config_hash = "fnv1a64:0123456789abcdef";
    s.checkpoint.generation = 3;
    s.checkpoint.loaded_at = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    return {s};
  }
  StatusOr<PoolStatus> Reload(const std::string& pool, const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);  // written on a gRPC thread, read by the test
    last_reload_ = pool + ":" + path;
    return ResourceExhausted("needs 10 MiB, 4 MiB missing");
  }
  StatusOr<PoolStatus> Drain(const std::string&, std::chrono::milliseconds) override {
    return NotFound("pool: no model pool named 'x'");
  }
  std::string last_reload() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_reload_;
  }

 private:
  mutable std::mutex mu_;
  std::string last_reload_;
};

// grpc.health.v1.Health/Check by hand (generic stub): "SERVING", "NOT_SERVING", or the error code.
std::string HealthOf(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  grpc::GenericStub generic(channel);
  // HealthCheckRequest{service}: field 1, length-delimited.
  const std::string req = "\x0a" + std::string(1, static_cast<char>(service.size())) + service;
  grpc::Slice slice(req);
  grpc::ByteBuffer in(&slice, 1), out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::atomic<bool> done{false};
  grpc::Status status;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
    status = s;
    done = true;
  });
  while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!status.ok()) return "error " + std::to_string(status.error_code());
  std::vector<grpc::Slice> slices;
  (void)out.Dump(&slices);
  std::string bytes;
  for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  const int code = bytes.size() >= 2 && bytes[0] == 0x08 ? bytes[1] : 0;
  return code == 1 ? "SERVING" : code == 2 ? "NOT_SERVING" : "UNKNOWN";
}

struct Harness {
  explicit Harness(ControlConfig control = {}, InferenceServiceOptions options = {},
                   std::chrono::microseconds step_delay = {}) {
    const int32_t vocab = TestTokenizer()->vocab_size();
    slot = std::make_shared<PoolSlot>(Generation(FakeEngine(vocab, 1, step_delay), "default@a"));
    ServingPool pool;
    pool.name = "default";
    pool.classes = {RequestClass::kRealtime, RequestClass::kComplex};
    pool.tokenizer = TestTokenizer();
    pool.engine = slot->Current()->engine;
    pool.checkpoint_id = "default@a";
    pool.slot = slot;
    ServerConfig config;
    config.grpc_address = "127.0.0.1:0";
    server = std::make_unique<GrpcServer>(config, control);
    server->DeclarePools({"default"});
    server->Attach({pool}, std::move(options));
    server->AttachControl(&controller);
    server->SetServing(true);
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials());
    stub = v1::Inference::NewStub(channel);
    control_stub = v1::Control::NewStub(channel);
  }
  ~Harness() {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server.reset();
  }
  void SwapToB() {
    slot->Swap(Generation(FakeEngine(TestTokenizer()->vocab_size() - 1, RequestId{1} << 40), "default@b"));
    server->RefreshHealth();
  }
  std::string Health(const std::string& service) { return HealthOf(channel, service); }

  FakeController controller;
  std::shared_ptr<PoolSlot> slot;
  std::unique_ptr<GrpcServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Inference::Stub> stub;
  std::unique_ptr<v1::Control::Stub> control_stub;
};

std::vector<TokenId> GenerateIds(Harness& h, const std::vector<TokenId>& prompt, int32_t n,
                                 grpc::Status* st = nullptr) {
  v1::GenerateRequest req;
  for (TokenId t : prompt) req.mutable_prompt_token_ids()->add_ids(t);
  req.mutable_sampling()->set_max_tokens(n);
  req.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse resp;
  grpc::Status s = h.stub->Generate(Ctx().get(), req, &resp);
  if (st) *st = s;
  return testing::Ids(resp.tokens());
}

std::vector<TokenId> Reference(const std::vector<TokenId>& prompt, int32_t n, int32_t vocab) {
  return engine::FakeExecutor::ReferenceGenerate(prompt, n, vocab);
}

const std::vector<TokenId> kHello = {100, 200, 300};
const std::vector<TokenId> kLong = {7, 8, 9, 10};

v1::RecommendRequest Rec() {
  v1::RecommendRequest req;
  req.set_context("Bought a tent and");
  for (int i = 0; i < 40; ++i) {  // enough that a diff of an unchanged ranking is smaller than COMPACT
    v1::Candidate* c = req.add_candidates();
    c->set_item_id(static_cast<uint64_t>(1000003 * (i + 1)));
    c->set_text(" item " + std::to_string(i));
  }
  req.set_latency_budget_ms(60000);
  return req;
}

TEST(PoolLifecycle, SwapSendsNewRequestsToTheNewModelAndLetsRunningOnesFinishOnTheOld) {
  Harness h({}, {}, std::chrono::microseconds(2000));
  const int32_t vocab = TestTokenizer()->vocab_size();
  ASSERT_EQ(GenerateIds(h, kHello, 4), Reference(kHello, 4, vocab));
  // A long request on the old model, swapped under it.
  std::vector<TokenId> long_ids;
  grpc::Status long_status;
  Engine* old_engine = h.slot->Current()->engine;
  // The first request's last step still counts it as running (and its stats may land after its response):
  // once the engine is idle, only a later step can show the long one.
  uint64_t step_before = old_engine->LastStats().step;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t now = old_engine->LastStats().step;
    if (now == step_before) break;
    step_before = now;
  }
  std::atomic<bool> long_done{false};
  std::thread running([&] {
    long_ids = GenerateIds(h, kLong, 60, &long_status);
    long_done = true;
  });
  // Swap only once the long request runs on the old model (ctest's timeout bounds the wait).
  auto running_on_old = [&] {
    const EngineStats st = old_engine->LastStats();
    if (st.step <= step_before) return false;
    int32_t n = 0;
    for (int32_t r : st.running_requests) n += r;
    return n > 0;
  };
  while (!running_on_old() && !long_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  h.SwapToB();
  EXPECT_EQ(GenerateIds(h, kHello, 4), Reference(kHello, 4, vocab - 1));
  running.join();
  EXPECT_TRUE(long_status.ok()) << long_status.error_message();
  EXPECT_EQ(long_ids, Reference(kLong, 60, vocab)) << "the running request moved to the new model";
  EXPECT_NE(Reference(kHello, 4, vocab), Reference(kHello, 4, vocab - 1));
}

TEST(PoolLifecycle, ResponseCacheNeverAnswersFromTheReplacedModel) {
  InferenceServiceOptions options;
  options.cache = std::make_shared<cache::ResponseCache>(1 << 20, std::chrono::milliseconds(60000));
  Harness h({}, options);
  v1::RecommendResponse r1, r2, r3, r4;
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), Rec(), &r1).ok());
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), Rec(), &r2).ok());
  EXPECT_FALSE(r1.from_cache());
  EXPECT_TRUE(r2.from_cache());
  h.SwapToB();
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), Rec(), &r3).ok());
  EXPECT_FALSE(r3.from_cache()) << "a ranking of the replaced model was served after the reload";
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), Rec(), &r4).ok());
  EXPECT_TRUE(r4.from_cache());
}

TEST(PoolLifecycle, DiffBasesNeverCrossAReload) {
  Harness h;
  v1::RecommendResponse base, same_model, after;
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), Rec(), &base).ok());
  v1::RecommendRequest diff = Rec();
  diff.set_encoding(v1::RESPONSE_ENCODING_DIFF);
  diff.set_previous_response_id(base.response_id());
  diff.set_previous_response_hash(base.response_hash());
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), diff, &same_model).ok());
  ASSERT_TRUE(same_model.has_diff()) << "an unchanged ranking of the same model is sent as a diff";
  h.SwapToB();
  ASSERT_TRUE(h.stub->Recommend(Ctx().get(), diff, &after).ok());
  EXPECT_FALSE(after.has_diff()) << "a diff against the replaced model's ranking";
  EXPECT_TRUE(after.has_compact());
}

TEST(PoolLifecycle, DrainRefusesNewRequestsAndReportsThePoolNotServingUntilASwap) {
  Harness h;
  EXPECT_EQ(h.Health("inferd.v1.Inference/default"), "SERVING");
  h.slot->StopAccepting();
  h.server->RefreshHealth();
  EXPECT_EQ(h.Health("inferd.v1.Inference/default"), "NOT_SERVING");
  EXPECT_EQ(h.Health(""), "SERVING") << "the server as a whole still serves (other pools, Control)";
  grpc::Status st;
  GenerateIds(h, kHello, 2, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(st.error_message().find("model pool 'default' is draining"), std::string::npos) << st.error_message();
  h.SwapToB();
  EXPECT_EQ(h.Health("inferd.v1.Inference/default"), "SERVING");
  GenerateIds(h, kHello, 2, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST(PoolLifecycle, PoolHealthIsNotServingBeforeTheServerServes) {
  ServerConfig config;
  config.grpc_address = "127.0.0.1:0";
  GrpcServer server(config);
  server.DeclarePools({"light"});
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthOf(channel, "inferd.v1.Inference/light"), "NOT_SERVING");
}

TEST(PoolLifecycle, AbortByRequestIdCancelsTheRunningRequest) {
  Harness h({}, {}, std::chrono::microseconds(3000));
  std::thread aborter([&] {
    for (int i = 0; i < 2000 && h.server->service().Abort("op-abort") == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  v1::GenerateRequest req;
  for (TokenId t : kLong) req.mutable_prompt_token_ids()->add_ids(t);
  req.set_request_id("op-abort");
  req.mutable_sampling()->set_max_tokens(1000);
  req.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse resp;
  grpc::Status st = h.stub->Generate(Ctx().get(), req, &resp);
  aborter.join();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
  EXPECT_EQ(h.server->service().Abort("op-abort"), 0) << "a finished request is no longer in flight";
}

TEST(ControlAccess, PeerAddressesParse) {
  EXPECT_EQ(PeerIp("ipv4:127.0.0.1:5000"), IpBytes("127.0.0.1"));
  EXPECT_EQ(PeerIp("ipv6:[::1]:5000"), IpBytes("::1"));
  EXPECT_EQ(PeerIp("ipv6:[::ffff:10.0.0.2]:1"), IpBytes("10.0.0.2"));
  EXPECT_EQ(PeerIp("unix:/tmp/s"), "");
  EXPECT_NE(IpBytes("127.0.0.1"), IpBytes("127.0.0.2"));
  EXPECT_EQ(IpBytes("localhost"), "");
}

TEST(ControlAccess, AnAddressNotListedIsRefused) {
  ControlConfig c;
  c.enabled = true;
  c.allowed_addresses = {"10.9.9.9"};
  Harness h(c);
  v1::ListPoolsResponse resp;
  grpc::Status st = h.control_stub->ListPools(Ctx().get(), v1::ListPoolsRequest(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("not in control.allowed_addresses"), std::string::npos) << st.error_message();
}

TEST(ControlAccess, ListedAddressReachesTheControllerAndItsAnswers) {
  ControlConfig c;
  c.enabled = true;
  c.allowed_addresses = {"127.0.0.1"};
  Harness h(c);
  v1::ListPoolsResponse list;
  ASSERT_TRUE(h.control_stub->ListPools(Ctx().get(), v1::ListPoolsRequest(), &list).ok());
  ASSERT_EQ(list.pools_size(), 1);
  EXPECT_EQ(list.pools(0).name(), "default");
  EXPECT_EQ(list.pools(0).state(), v1::POOL_STATE_SERVING);
  EXPECT_EQ(list.pools(0).checkpoint().path(), "/models/a");
  EXPECT_EQ(list.pools(0).checkpoint().config_hash(), "fnv1a64:0123456789abcdef");
  EXPECT_EQ(list.pools(0).checkpoint().generation(), 3u);
  EXPECT_EQ(list.pools(0).checkpoint().loaded_at_unix_seconds(), 1700000000.0);
  EXPECT_EQ(list.pools(0).health_service(), "inferd.v1.Inference/default");
  v1::ReloadPoolRequest req;
  req.set_pool("default");
  req.set_path("/models/b");
  v1::ReloadPoolResponse resp;
  grpc::Status st = h.control_stub->ReloadPool(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "needs 10 MiB, 4 MiB missing");
  EXPECT_EQ(h.controller.last_reload(), "default:/models/b");
  v1::AbortRequestRequest abort;
  abort.set_request_id("nobody");
  v1::AbortRequestResponse aborted;
  EXPECT_EQ(h.control_stub->AbortRequest(Ctx().get(), abort, &aborted).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::DrainPoolRequest drain;
  drain.set_pool("default");
  drain.set_timeout_seconds(-1);
  v1::DrainPoolResponse drained;
  EXPECT_EQ(h.control_stub->DrainPool(Ctx().get(), drain, &drained).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ControlAccess, TokensNeedTheControlPermission) {
  char dir[] = "/tmp/inferd-control-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/tokens";
  {
    std::ofstream out(file);
    out << "ops "
        << "sha256:" << auth::Sha256Hex("ops-secret") << " control\n";
    out << "app "
        << "sha256:" << auth::Sha256Hex("app-secret") << " inference\n";
  }
  ControlConfig c;
  c.enabled = true;
  c.token_file = file;
  Harness h(c);
  auto call = [&](const std::string& token) {
    auto ctx = Ctx();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    v1::ListPoolsResponse resp;
    return h.control_stub->ListPools(ctx.get(), v1::ListPoolsRequest(), &resp).error_code();
  };
  EXPECT_EQ(call(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("wrong"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("app-secret"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(call("ops-secret"), grpc::StatusCode::OK);
  std::remove(file.c_str());
  rmdir(dir);
}

TEST(ControlAccess, OffByDefault) {
  Harness h;
  v1::ListPoolsResponse resp;
  EXPECT_EQ(h.control_stub->ListPools(Ctx().get(), v1::ListPoolsRequest(), &resp).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace inferd::server
