// InferenceFront through the real gRPC server on loopback: the port is open (health NOT_SERVING) before any
// pool is attached; raw bytes that do not parse and invalid UTF-8 get INVALID_ARGUMENT naming the field;
// errors echoing caller input stay bounded; caps reject before the engine runs; bearer tokens with
// permissions; per-identity rate limits with retry-after-ms.
#include "server/inference_front.h"

#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server/server_test_util.h"

namespace inferd::server {
namespace {

using testing::BuildPools;
using testing::Ctx;
using testing::PoolSpec;
using testing::TestServer;

using HealthStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

HealthStatus Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  auto ctx = Ctx();
  EXPECT_TRUE(stub->Check(ctx.get(), req, &resp).ok());
  return resp.status();
}

// Sends `bytes` as the request message of `method` ("/inferd.v1.Inference/Generate") and returns the status.
grpc::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status st) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(st);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

v1::GenerateRequest SmallGenerate() {
  v1::GenerateRequest req;
  req.set_prompt("hello there");
  req.mutable_sampling()->set_max_tokens(2);
  return req;
}

TEST(InferenceFrontTest, PortOpensBeforeAttachWithHealthNotServing) {
  ServerConfig cfg;
  cfg.grpc_address = "127.0.0.1:0";
  std::vector<std::unique_ptr<Engine>> engines;
  GrpcServer server(cfg);
  server.SetServing(true);  // no effect without a backend
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Health(channel), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  auto stub = v1::Inference::NewStub(channel);
  v1::GenerateResponse resp;
  auto c1 = Ctx();
  grpc::Status s = stub->Generate(c1.get(), SmallGenerate(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("starting up"), std::string::npos) << s.error_message();

  server.Attach(BuildPools({PoolSpec{}}, &engines));
  EXPECT_EQ(Health(channel), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  server.SetServing(true);
  EXPECT_EQ(Health(channel), grpc::health::v1::HealthCheckResponse::SERVING);
  auto c2 = Ctx();
  EXPECT_TRUE(stub->Generate(c2.get(), SmallGenerate(), &resp).ok());
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

TEST(InferenceFrontTest, BytesThatDoNotParseAreInvalidArgument) {
  TestServer ts;
  // Field 2 (prompt) declared 100 bytes long, followed by 3.
  const grpc::Status s = CallRaw(ts.channel(), "/inferd.v1.Inference/Generate",
                                 std::string("\x12\x64"
                                             "abc",
                                             5));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "request: 5 bytes do not parse as inferd.v1.GenerateRequest");
  const grpc::Status r = CallRaw(ts.channel(), "/inferd.v1.Inference/Recommend", std::string("\xff\xff\xff", 3));
  EXPECT_EQ(r.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.error_message(), "request: 3 bytes do not parse as inferd.v1.RecommendRequest");
}

// The serialized message with the placeholder bytes `mark` replaced by `replacement` (same length).
std::string Patch(const google::protobuf::Message& msg, const std::string& mark, const std::string& replacement) {
  std::string bytes = msg.SerializeAsString();
  const size_t at = bytes.find(mark);
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(mark.size(), replacement.size());
  bytes.replace(at, mark.size(), replacement);
  return bytes;
}

TEST(InferenceFrontTest, InvalidUtf8NamesTheField) {
  TestServer ts;
  v1::GenerateRequest prompt = SmallGenerate();
  prompt.set_prompt("ab@@");
  grpc::Status s = CallRaw(ts.channel(), "/inferd.v1.Inference/Generate", Patch(prompt, "@@", "\xc3\x28"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "prompt: not valid UTF-8 (byte offset 2); string fields must be UTF-8");

  v1::GenerateRequest chat;
  auto* m0 = chat.mutable_messages()->add_messages();
  m0->set_role("user");
  m0->set_content("hi");
  auto* m1 = chat.mutable_messages()->add_messages();
  m1->set_role("u@@r");
  m1->set_content("there");
  s = CallRaw(ts.channel(), "/inferd.v1.Inference/GenerateStream", Patch(chat, "@@", "\xed\xa0"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "messages.messages[1].role: not valid UTF-8 (byte offset 1); string fields must be UTF-8");

  v1::RecommendRequest rec;
  rec.set_context("ctx");
  rec.add_candidates()->set_text("fine");
  rec.add_candidates()->set_text("b@@d");
  s = CallRaw(ts.channel(), "/inferd.v1.Inference/Recommend", Patch(rec, "@@", "\xff\xfe"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "candidates[1].text: not valid UTF-8 (byte offset 1); string fields must be UTF-8");
}

TEST(InferenceFrontTest, LongUnknownModelAndRoleGiveBoundedErrors) {
  TestServer ts;
  const std::string huge(64 * 1024, 'm');
  v1::GenerateRequest req = SmallGenerate();
  req.set_model(huge);
  v1::GenerateResponse resp;
  auto c1 = Ctx();
  grpc::Status s = ts.stub().Generate(c1.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(s.error_message().size(), 256u);
  EXPECT_NE(s.error_message().find("(65536 bytes)"), std::string::npos) << s.error_message();

  v1::FeedbackRequest fb;
  fb.set_request_id("r-1");
  fb.set_click(true);
  fb.set_model(huge);
  v1::FeedbackResponse fr;
  auto c2 = Ctx();
  s = ts.stub().Feedback(c2.get(), fb, &fr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(s.error_message().size(), 256u);

  for (size_t len : {10u * 1024, 64u * 1024}) {
    v1::GenerateRequest chat;
    auto* m = chat.mutable_messages()->add_messages();
    m->set_role(std::string(len, 'r'));
    m->set_content("hi");
    auto c3 = Ctx();
    s = ts.stub().Generate(c3.get(), chat, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_LT(s.error_message().size(), 256u);
    EXPECT_NE(s.error_message().find("(" + std::to_string(len) + " bytes)"), std::string::npos) << s.error_message();
  }
}

TEST(InferenceFrontTest, CapsRejectBeforeTheEngineRuns) {
  PoolSpec spec;
  spec.limits.max_candidate_tokens = 256;
  spec.limits.max_total_candidate_tokens = 1000;
  spec.limits.max_stop_strings = 4;
  spec.limits.max_context_tokens = 64;
  ServerConfig cfg;
  cfg.max_request_id_bytes = 16;
  std::atomic<int> engine_steps{0};
  TestServer ts({spec}, {}, cfg);
  ts.engine().SetStatsCallback([&](const EngineStats&) { engine_steps.fetch_add(1); });
  auto words = [](int n) {
    std::string t;
    for (int i = 0; i < n; ++i) t += " word";
    return t;
  };
  struct Case {
    std::string name;
    std::function<void(v1::RecommendRequest*)> edit;
    std::string expected_prefix;
  };
  const std::vector<Case> cases = {
      // " word" is one token of the DeepSeek-V3 tokenizer; 20000 of them are 100000 bytes, more than 256
      // tokens of at most 128 bytes can cover.
      {"20k-token candidate", [&](v1::RecommendRequest* r) { r->mutable_candidates(0)->set_text(words(20000)); },
       "candidates[0].text: 100000 bytes encode to more than the limit of 256 tokens (limits.max_candidate_tokens"},
      {"5k-token candidate", [&](v1::RecommendRequest* r) { r->mutable_candidates(0)->set_text(words(5000)); },
       "candidates[0].text: 5000 tokens exceeds the limit of 256 (limits.max_candidate_tokens)"},
      {"total over cap",
       [&](v1::RecommendRequest* r) {
         for (int i = 0; i < 6; ++i) {
           auto* c = r->add_candidates();
           c->set_item_id(100 + i);
           c->set_text(words(200));
         }
       },
       "candidates: candidates[0..5] are already 1001 tokens, over the limit of 1000 "
       "(limits.max_total_candidate_tokens)"},
      {"context", [&](v1::RecommendRequest* r) { r->set_context(words(65)); },
       "context: 66 tokens exceeds the limit of 64 (limits.max_context_tokens)"},
      {"request id", [&](v1::RecommendRequest* r) { r->set_request_id(std::string(17, 'x')); },
       "request_id: must be at most 16 bytes (server.max_request_id_bytes), got 17"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::RecommendRequest req;
    req.set_context("user likes");
    auto* cand = req.add_candidates();
    cand->set_item_id(1);
    cand->set_text(" shoes");
    c.edit(&req);
    v1::RecommendResponse resp;
    auto ctx = Ctx();
    const grpc::Status s = ts.stub().Recommend(ctx.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message().rfind(c.expected_prefix, 0), 0u) << s.error_message();
  }
  v1::GenerateRequest stops = SmallGenerate();
  for (int i = 0; i < 5; ++i) stops.mutable_sampling()->add_stop("s" + std::to_string(i));
  v1::GenerateResponse gr;
  auto ctx = Ctx();
  const grpc::Status s = ts.stub().Generate(ctx.get(), stops, &gr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "sampling.stop: at most 4 stop strings (limits.max_stop_strings), got 5");
  EXPECT_EQ(engine_steps.load(), 0);
}

// A token file in a fresh directory; removed with the fixture.
class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("inferd-auth-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    // Hashes from: printf %s s3cret-inference | sha256sum  (and likewise for the others).
    std::ofstream(dir_ / "tokens")
        << "# test tokens\n"
        << "svc-a sha256:d8b0525aa050ecb1b82569d9c4eb7d0123b7176fc59ae4d5cf11f61216c587c4 "
           "inference\n"
        << "svc-fb sha256:c8b86dfdcf4150df9db7a8760b0a516c2a1ff40b904733030cbc5517f6b67641 "
           "feedback\n"
        << "svc-both sha256:f9a023c8c8939050bafce7dcf233d681c888c4f0a585c04bf4ff49ab27281f7f "
           "inference,feedback\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  ServerConfig Config() const {
    ServerConfig cfg;
    cfg.auth.token_file = (dir_ / "tokens").string();
    return cfg;
  }
  std::filesystem::path dir_;
};

std::unique_ptr<grpc::ClientContext> WithToken(const std::string& token) {
  auto ctx = Ctx();
  if (!token.empty()) ctx->AddMetadata("authorization", token);
  return ctx;
}

TEST_F(AuthTest, NoneWrongAndRightTokens) {
  TestServer ts({PoolSpec{}}, {}, Config());
  v1::GenerateResponse resp;
  auto c0 = WithToken("");
  grpc::Status s = ts.stub().Generate(c0.get(), SmallGenerate(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message().rfind("missing bearer token", 0), 0u) << s.error_message();
  auto c1 = WithToken("Bearer not-a-token");
  s = ts.stub().Generate(c1.get(), SmallGenerate(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "unknown bearer token");
  EXPECT_EQ(s.error_message().find("not-a-token"), std::string::npos);
  auto c2 = WithToken("Basic czNjcmV0");
  s = ts.stub().Generate(c2.get(), SmallGenerate(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "malformed authorization header (expected 'Bearer <token>')");
  auto c3 = WithToken("Bearer s3cret-feedback");
  s = ts.stub().Generate(c3.get(), SmallGenerate(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "identity 'svc-fb' may not call Generate (needs permission inference)");
  auto c4 = WithToken("Bearer s3cret-inference");
  EXPECT_TRUE(ts.stub().Generate(c4.get(), SmallGenerate(), &resp).ok());
  v1::FeedbackRequest fb;
  fb.set_request_id(resp.request_id());
  fb.set_click(true);
  v1::FeedbackResponse fr;
  auto c5 = WithToken("Bearer s3cret-inference");
  s = ts.stub().Feedback(c5.get(), fb, &fr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto c6 = WithToken("Bearer s3cret-both");
  EXPECT_TRUE(ts.stub().Feedback(c6.get(), fb, &fr).ok());
  // Health stays open to load balancers.
  EXPECT_EQ(Health(ts.channel()), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(AuthTest, RateLimitPerIdentityAnswersRetryAfter) {
  ServerConfig cfg = Config();
  cfg.auth.rate_limit.requests_per_second = 0.01;  // one token per 100 s: the bucket does not refill in the test
  cfg.auth.rate_limit.burst = 2;
  TestServer ts({PoolSpec{}}, {}, cfg);
  v1::GenerateResponse resp;
  for (int i = 0; i < 2; ++i) {
    auto ctx = WithToken("Bearer s3cret-inference");
    EXPECT_TRUE(ts.stub().Generate(ctx.get(), SmallGenerate(), &resp).ok());
  }
  auto ctx = WithToken("Bearer s3cret-inference");
  const grpc::Status s = ts.stub().Generate(ctx.get(), SmallGenerate(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message().rfind("rate limit of identity 'svc-a' reached; retry after ", 0), 0u)
      << s.error_message();
  const auto& md = ctx->GetServerTrailingMetadata();
  const auto it = md.find("retry-after-ms");
  ASSERT_NE(it, md.end());
  const long retry_ms = std::stol(std::string(it->second.data(), it->second.size()));
  // About 100 s minus the little time the two calls took.
  EXPECT_GT(retry_ms, 90000);
  EXPECT_LE(retry_ms, 100000);
  // Another identity has its own bucket.
  auto other = WithToken("Bearer s3cret-both");
  EXPECT_TRUE(ts.stub().Generate(other.get(), SmallGenerate(), &resp).ok());
}

TEST_F(AuthTest, ReloadReplacesTheTokensAndKeepsThemOnABadFile) {
  ServerConfig cfg = Config();
  TestServer ts({PoolSpec{}}, {}, cfg);
  v1::GenerateResponse resp;
  std::ofstream(dir_ / "tokens") << "svc-fb sha256:c8b86dfdcf4150df9db7a8760b0a516c2a1ff40b904733030cbc5517f6b67641 "
                                    "inference\n";
  EXPECT_TRUE(ts.server().Reload().ok());
  auto c1 = WithToken("Bearer s3cret-inference");
  EXPECT_EQ(ts.stub().Generate(c1.get(), SmallGenerate(), &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto c2 = WithToken("Bearer s3cret-feedback");
  EXPECT_TRUE(ts.stub().Generate(c2.get(), SmallGenerate(), &resp).ok());
  std::ofstream(dir_ / "tokens") << "broken line\n";
  const Status st = ts.server().Reload();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("tokens:1:"), std::string::npos) << st.message();
  auto c3 = WithToken("Bearer s3cret-feedback");
  EXPECT_TRUE(ts.stub().Generate(c3.get(), SmallGenerate(), &resp).ok());
}

}  // namespace
}  // namespace inferd::server
