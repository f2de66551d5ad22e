#include "auth/gate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

namespace inferd::auth {
namespace {

using namespace std::chrono_literals;

// printf %s s3cret-inference | sha256sum ; printf %s s3cret-feedback | sha256sum
constexpr const char* kInferenceHash = "d8b0525aa050ecb1b82569d9c4eb7d0123b7176fc59ae4d5cf11f61216c587c4";
constexpr const char* kFeedbackHash = "c8b86dfdcf4150df9db7a8760b0a516c2a1ff40b904733030cbc5517f6b67641";

std::shared_ptr<const TokenAuthenticator> Parse(const std::string& text) {
  auto t = TokenAuthenticator::Parse(text, "tokens");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : nullptr;
}

const RateLimiter::Clock::time_point kT0{};

TEST(GateTest, OpenGateAdmitsEverythingWithoutIdentity) {
  Gate gate(nullptr, nullptr);
  EXPECT_FALSE(gate.authenticates());
  const Admission a = gate.Admit("", Permission::kFeedback, "Feedback", kT0);
  EXPECT_TRUE(a.status.ok());
  EXPECT_EQ(a.identity, "");
  EXPECT_EQ(a.retry_after, 0ms);
}

TEST(GateTest, RefusesMissingUnknownAndUnderprivilegedTokens) {
  Gate gate(Parse(std::string("a sha256:") + kInferenceHash + " inference\n"), nullptr);
  EXPECT_TRUE(gate.authenticates());
  EXPECT_EQ(gate.Admit("", Permission::kInference, "Generate", kT0).status.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(gate.Admit("Bearer nope", Permission::kInference, "Generate", kT0).status.message(),
            "unknown bearer token");
  const Admission denied = gate.Admit("Bearer s3cret-inference", Permission::kFeedback, "/v1/x", kT0);
  EXPECT_EQ(denied.status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.status.message(), "identity 'a' may not call /v1/x (needs permission feedback)");
  const Admission ok = gate.Admit("Bearer s3cret-inference", Permission::kInference, "Generate", kT0);
  EXPECT_TRUE(ok.status.ok()) << ok.status.ToString();
  EXPECT_EQ(ok.identity, "a");
}

TEST(GateTest, RateLimitIsPerIdentityAndRefusalsTakeNoToken) {
  Gate gate(Parse(std::string("a sha256:") + kInferenceHash + " inference\nb sha256:" + kFeedbackHash + " inference\n"),
            std::make_shared<RateLimiter>(/*rate_per_second=*/2.0, /*burst=*/2.0));
  EXPECT_TRUE(gate.Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0).status.ok());
  // An unauthorized call with a's token does not spend a's bucket.
  EXPECT_EQ(gate.Admit("Bearer s3cret-inference", Permission::kFeedback, "r", kT0).status.code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(gate.Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0).status.ok());
  const Admission limited = gate.Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0);
  EXPECT_EQ(limited.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(limited.retry_after, 500ms);  // one token at 2 per second
  EXPECT_EQ(limited.status.message(),
            "rate limit of identity 'a' reached; retry after 500 ms (server.auth.rate_limit)");
  EXPECT_EQ(limited.identity, "a");
  EXPECT_TRUE(gate.Admit("Bearer s3cret-feedback", Permission::kInference, "r", kT0).status.ok());
  EXPECT_TRUE(gate.Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0 + 500ms).status.ok());
}

TEST(GateTest, SetTokensSwapsTheSetAndNullNeverOpensTheGate) {
  Gate gate(Parse(std::string("a sha256:") + kInferenceHash + " inference\n"), nullptr);
  gate.SetTokens(nullptr);
  EXPECT_EQ(gate.Admit("", Permission::kInference, "r", kT0).status.code(), StatusCode::kUnauthenticated);
  gate.SetTokens(Parse(std::string("b sha256:") + kFeedbackHash + " inference\n"));
  EXPECT_EQ(gate.Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0).status.code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(gate.Admit("Bearer s3cret-feedback", Permission::kInference, "r", kT0).identity, "b");
}

TEST(GateTest, LoadFromConfigValues) {
  StatusOr<std::shared_ptr<Gate>> open = Gate::Load("", 10, 0);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE((*open)->authenticates());
  StatusOr<std::shared_ptr<Gate>> missing = Gate::Load("/nonexistent/inferd-tokens", 0, 0);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/inferd-tokens"), std::string::npos);

  const std::string path = testing::TempDir() + "gate_test_tokens";
  std::ofstream(path) << "a sha256:" << kInferenceHash << " inference\n";
  // burst 0 = one second's worth: 3 calls at 3/s, the fourth waits 1/3 s.
  StatusOr<std::shared_ptr<Gate>> gate = Gate::Load(path, 3, 0);
  ASSERT_TRUE(gate.ok()) << gate.status().ToString();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE((*gate)->Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0).status.ok()) << i;
  }
  EXPECT_EQ((*gate)->Admit("Bearer s3cret-inference", Permission::kInference, "r", kT0).retry_after, 334ms);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace inferd::auth
