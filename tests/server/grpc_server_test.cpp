// GrpcServer: health follows SetServing, a server without pools answers UNAVAILABLE, bad pools throw.
#include "server/grpc_server.h"

#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server/server_test_util.h"

namespace inferd::server {
namespace {

using testing::Ctx;
using testing::TestServer;

grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel,
                                                            const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  auto ctx = Ctx();
  EXPECT_TRUE(stub->Check(ctx.get(), req, &resp).ok());
  return resp.status();
}

TEST(GrpcServerTest, HealthFollowsSetServing) {
  TestServer ts;
  using S = grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(Health(ts.channel(), ""), S::SERVING);
  EXPECT_EQ(Health(ts.channel(), "inferd.v1.Inference"), S::SERVING);
  ts.server().SetServing(false);
  EXPECT_EQ(Health(ts.channel(), ""), S::NOT_SERVING);
  EXPECT_EQ(Health(ts.channel(), "inferd.v1.Inference"), S::NOT_SERVING);
}

TEST(GrpcServerTest, WithoutPoolsEveryRpcIsUnavailable) {
  ServerConfig cfg;
  cfg.grpc_address = "127.0.0.1:0";
  GrpcServer server(cfg, {}, {});
  server.SetServing(true);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(channel);
  v1::GenerateRequest g;
  g.set_prompt("hi");
  v1::GenerateResponse gr;
  auto c1 = Ctx();
  grpc::Status s = stub->Generate(c1.get(), g, &gr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("no model pool"), std::string::npos);
  v1::RecommendResponse rr;
  auto c2 = Ctx();
  EXPECT_EQ(stub->Recommend(c2.get(), v1::RecommendRequest(), &rr).error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::FeedbackRequest feedback;
  feedback.set_request_id("r-1");
  feedback.set_click(true);
  v1::FeedbackResponse fr;
  auto c3 = Ctx();
  EXPECT_EQ(stub->Feedback(c3.get(), feedback, &fr).error_code(), grpc::StatusCode::UNAVAILABLE);
  auto c5 = Ctx();  // malformed feedback is still named as such
  EXPECT_EQ(stub->Feedback(c5.get(), v1::FeedbackRequest(), &fr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto c4 = Ctx();
  auto reader = stub->GenerateStream(c4.get(), g);
  v1::GenerateDelta d;
  EXPECT_FALSE(reader->Read(&d));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  server.Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcServerTest, IncompletePoolsAreRejected) {
  ServerConfig cfg;
  cfg.grpc_address = "127.0.0.1:0";
  ServingPool no_engine{"m", {RequestClass::kRealtime}, testing::TestTokenizer(), nullptr, {}, 4096, ""};
  EXPECT_THROW(GrpcServer(cfg, {no_engine}), std::invalid_argument);
}

TEST(GrpcServerTest, ShutdownCancelsInFlightStreamsAndFreesTheirBlocks) {
  testing::PoolSpec spec;
  spec.step_delay = std::chrono::microseconds(1000);
  TestServer ts({spec});
  v1::GenerateRequest req;
  for (int i = 0; i < 40; ++i) req.mutable_prompt_token_ids()->add_ids(500 + i);
  req.mutable_sampling()->set_max_tokens(1000);
  req.mutable_sampling()->set_ignore_eos(true);
  auto ctx = Ctx();
  auto reader = ts.stub().GenerateStream(ctx.get(), req);
  v1::GenerateDelta msg;
  ASSERT_TRUE(reader->Read(&msg));
  ts.server().Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  while (reader->Read(&msg)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_TRUE(ts.WaitAllBlocksFree());
  ts.server().Shutdown(std::chrono::system_clock::now());  // idempotent
}

TEST(GrpcServerTest, StatusCodesMapOneToOne) {
  for (int c = 0; c <= 15; ++c) {  // every inferd::StatusCode
    grpc::Status g = ToGrpcStatus(Status(static_cast<StatusCode>(c), "m"));
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
  }
}

}  // namespace
}  // namespace inferd::server
