#include "auth/token_auth.h"

#include <gtest/gtest.h>

namespace inferd::auth {
namespace {

// printf %s s3cret-inference | sha256sum ; printf %s s3cret-feedback | sha256sum
constexpr const char* kInferenceHash = "d8b0525aa050ecb1b82569d9c4eb7d0123b7176fc59ae4d5cf11f61216c587c4";
constexpr const char* kFeedbackHash = "c8b86dfdcf4150df9db7a8760b0a516c2a1ff40b904733030cbc5517f6b67641";

std::shared_ptr<const TokenAuthenticator> Tokens() {
  auto t = TokenAuthenticator::Parse(std::string("  # comment\n\nsvc-a sha256:") + kInferenceHash +
                                         " inference   # trailing comment\r\n" + "svc.fb sha256:" + kFeedbackHash +
                                         " feedback\n",
                                     "tokens.txt");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return *t;
}

TEST(Sha256Test, MatchesSha256sum) {
  EXPECT_EQ(Sha256Hex("s3cret-inference"), kInferenceHash);
  // printf %s '' | sha256sum
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TokenAuthenticatorTest, AuthorizesByPermission) {
  auto tokens = Tokens();
  ASSERT_EQ(tokens->size(), 2u);
  StatusOr<Identity> a = tokens->Authorize("Bearer s3cret-inference", Permission::kInference, "Generate");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->name, "svc-a");
  StatusOr<Identity> denied = tokens->Authorize("Bearer s3cret-inference", Permission::kFeedback, "Feedback");
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.status().message(), "identity 'svc-a' may not call Feedback (needs permission feedback)");
  StatusOr<Identity> fb = tokens->Authorize("Bearer s3cret-feedback", Permission::kFeedback, "Feedback");
  ASSERT_TRUE(fb.ok());
  EXPECT_EQ(fb->name, "svc.fb");
}

TEST(TokenAuthenticatorTest, RefusalsNeverEchoTheToken) {
  auto tokens = Tokens();
  struct Case {
    std::string header;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "missing bearer token (send the header or metadata 'authorization: Bearer <token>')"},
           {"Bearer ", "malformed authorization header (expected 'Bearer <token>')"},
           {"bearer s3cret-inference", "malformed authorization header (expected 'Bearer <token>')"},
           {"Bearer s3cret-inferencE", "unknown bearer token"},
           {"Bearer s3cret-inference ", "unknown bearer token"},
           // The hash itself is not a token.
           {std::string("Bearer ") + kInferenceHash, "unknown bearer token"},
       }) {
    StatusOr<Identity> r = tokens->Authorize(c.header, Permission::kInference, "Generate");
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << c.header;
    EXPECT_EQ(r.status().message(), c.message);
  }
}

TEST(TokenAuthenticatorTest, BadFilesNameTheLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::string h = std::string("sha256:") + kInferenceHash;
  for (const Case& c : std::vector<Case>{
           {"", "f: no tokens (every caller would be refused)"},
           {"a " + h, "f:1: expected '<identity> sha256:<hex> <permission>[,<permission>]'"},
           {"a " + h + " inference extra", "f:1: unexpected text after the permissions"},
           {"\na/b " + h + " inference", "f:2: identity: use 1 to 64 of A-Z a-z 0-9 _ - ."},
           {"a " + h + " inference\na " + h + " feedback", "f:2: identity 'a' appears twice"},
           {"a sha1:abc inference", "f:1: hash of 'a': expected sha256: and 64 lowercase hex digits"},
           {"a sha256:" + std::string(64, 'G') + " inference",
            "f:1: hash of 'a': expected sha256: and 64 lowercase hex digits"},
           {"a " + h + " inference,admin", "f:1: permission 'admin' of 'a': expected inference, feedback or control"},
       }) {
    auto r = TokenAuthenticator::Parse(c.text, "f");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(r.status().message(), c.message);
  }
  EXPECT_EQ(TokenAuthenticator::Load("/nonexistent/tokens").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace inferd::auth
