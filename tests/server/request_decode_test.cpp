// Validation and classification: every malformed request is INVALID_ARGUMENT naming its field, over the
// real gRPC protocol; the classification rule as written in request_decode.h.
#include "server/request_decode.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "server/server_test_util.h"

namespace inferd::server {
namespace {

using testing::Ctx;
using testing::PoolSpec;
using testing::TestServer;

v1::GenerateRequest ValidGenerate() {
  v1::GenerateRequest req;
  req.set_prompt("hello");
  req.mutable_sampling()->set_max_tokens(4);
  return req;
}

v1::RecommendRequest ValidRecommend() {
  v1::RecommendRequest req;
  req.set_context("context");
  for (int i = 0; i < 3; ++i) {
    auto* c = req.add_candidates();
    c->set_item_id(i + 1);
    c->set_text("candidate " + std::to_string(i));
  }
  return req;
}

struct Case {
  const char* name;
  std::function<void(v1::GenerateRequest*)> generate;  // one of generate / recommend / feedback
  std::function<void(v1::RecommendRequest*)> recommend;
  std::function<void(v1::FeedbackRequest*)> feedback;
  std::string message_prefix;  // the message starts with the field name
};

std::vector<Case> Cases() {
  using G = v1::GenerateRequest*;
  using R = v1::RecommendRequest*;
  using F = v1::FeedbackRequest*;
  return {
      {"no input", [](G r) { r->clear_input(); }, nullptr, nullptr, "input: "},
      {"empty prompt", [](G r) { r->set_prompt(""); }, nullptr, nullptr, "prompt: must not be empty"},
      {"empty messages", [](G r) { r->mutable_messages(); }, nullptr, nullptr, "messages.messages: must not be empty"},
      {"bad role",
       [](G r) {
         auto* m = r->mutable_messages()->add_messages();
         m->set_role("user");
         m->set_content("hi");
         m = r->mutable_messages()->add_messages();
         m->set_role("robot");
       },
       nullptr, nullptr, "messages.messages[1].role: "},
      {"empty ids", [](G r) { r->mutable_prompt_token_ids(); }, nullptr, nullptr,
       "prompt_token_ids.ids: must not be empty"},
      {"id too large",
       [](G r) {
         r->mutable_prompt_token_ids()->add_ids(5);
         r->mutable_prompt_token_ids()->add_ids(10000000);
       },
       nullptr, nullptr, "prompt_token_ids.ids[1]: 10000000 is not a token id"},
      {"negative id", [](G r) { r->mutable_prompt_token_ids()->add_ids(-1); }, nullptr, nullptr,
       "prompt_token_ids.ids[0]: "},
      {"prompt too long",
       [](G r) {
         for (int i = 0; i < 65; ++i) r->mutable_prompt_token_ids()->add_ids(100 + i);
       },
       nullptr, nullptr, "prompt_token_ids.ids: 65 tokens exceeds the limit of 64"},
      {"temperature", [](G r) { r->mutable_sampling()->set_temperature(-1); }, nullptr, nullptr,
       "sampling.temperature: must be >= 0, got -1"},
      {"top_k", [](G r) { r->mutable_sampling()->set_top_k(-2); }, nullptr, nullptr, "sampling.top_k: "},
      {"top_p", [](G r) { r->mutable_sampling()->set_top_p(1.5f); }, nullptr, nullptr,
       "sampling.top_p: must be in [0, 1], got 1.5"},
      {"min_p", [](G r) { r->mutable_sampling()->set_min_p(2); }, nullptr, nullptr, "sampling.min_p: "},
      {"repetition_penalty", [](G r) { r->mutable_sampling()->set_repetition_penalty(-1); }, nullptr, nullptr,
       "sampling.repetition_penalty: "},
      {"presence_penalty", [](G r) { r->mutable_sampling()->set_presence_penalty(3); }, nullptr, nullptr,
       "sampling.presence_penalty: "},
      {"frequency_penalty", [](G r) { r->mutable_sampling()->set_frequency_penalty(-3); }, nullptr, nullptr,
       "sampling.frequency_penalty: "},
      {"top_logprobs", [](G r) { r->mutable_sampling()->set_top_logprobs(21); }, nullptr, nullptr,
       "sampling.top_logprobs: "},
      {"negative max_tokens", [](G r) { r->mutable_sampling()->set_max_tokens(-1); }, nullptr, nullptr,
       "sampling.max_tokens: must be >= 0"},
      {"max_tokens over the cap", [](G r) { r->mutable_sampling()->set_max_tokens(1025); }, nullptr, nullptr,
       "sampling.max_tokens: must be <= 1024, got 1025"},
      {"empty stop", [](G r) { r->mutable_sampling()->add_stop(""); }, nullptr, nullptr,
       "sampling.stop[0]: must not be empty"},
      {"too many stops",
       [](G r) {
         for (int i = 0; i < 17; ++i) r->mutable_sampling()->add_stop("s" + std::to_string(i));
       },
       nullptr, nullptr, "sampling.stop: "},
      {"generate class_hint", [](G r) { r->set_class_hint(static_cast<v1::RequestClass>(9)); }, nullptr, nullptr,
       "class_hint: unknown value 9"},
      {"generate request_id", [](G r) { r->set_request_id(std::string(300, 'x')); }, nullptr, nullptr, "request_id: "},
      {"empty context", nullptr, [](R r) { r->set_context(""); }, nullptr, "context: must not be empty"},
      {"context too long", nullptr,
       [](R r) {
         std::string text;
         for (int i = 0; i < 100; ++i) text += " word" + std::to_string(i);
         r->set_context(text);
       },
       nullptr, "context: "},
      {"no candidates", nullptr, [](R r) { r->clear_candidates(); }, nullptr, "candidates: must not be empty"},
      {"too many candidates", nullptr,
       [](R r) {
         for (int i = 0; i < 10; ++i) r->add_candidates()->set_item_id(100 + i);
       },
       nullptr, "candidates: 13 exceeds the limit of 8"},
      {"empty candidate text", nullptr, [](R r) { r->mutable_candidates(1)->set_text(""); }, nullptr,
       "candidates[1].text: must not be empty"},
      {"duplicate item id", nullptr, [](R r) { r->mutable_candidates(2)->set_item_id(1); }, nullptr,
       "candidates[2].item_id: 1 repeats candidates[0].item_id"},
      {"top_k", nullptr, [](R r) { r->set_top_k(-1); }, nullptr, "top_k: must be >= 0"},
      {"encoding", nullptr, [](R r) { r->set_encoding(static_cast<v1::ResponseEncoding>(7)); }, nullptr,
       "encoding: unknown value 7"},
      {"negative precision", nullptr, [](R r) { r->set_score_precision(-1); }, nullptr, "score_precision: "},
      {"tiny precision", nullptr, [](R r) { r->set_score_precision(1e-12); }, nullptr, "score_precision: "},
      {"recommend class_hint", nullptr, [](R r) { r->set_class_hint(static_cast<v1::RequestClass>(5)); }, nullptr,
       "class_hint: "},
      {"feedback request_id", nullptr, nullptr, [](F r) { r->clear_request_id(); }, "request_id: must not be empty"},
      {"no event", nullptr, nullptr, [](F r) { r->clear_event(); }, "event: "},
      {"quality above 1", nullptr, nullptr, [](F r) { r->set_quality_score(1.5); },
       "quality_score: must be in [0, 1], got 1.5"},
      {"quality below 0", nullptr, nullptr, [](F r) { r->set_quality_score(-0.1); }, "quality_score: "},
      {"impression false", nullptr, nullptr, [](F r) { r->set_impression(false); }, "impression: "},
      {"count with quality", nullptr, nullptr,
       [](F r) {
         r->set_quality_score(0.5);
         r->set_count(2);
       },
       "count: "},
  };
}

TEST(ValidationTest, EveryInvalidArgumentNamesItsField) {
  PoolSpec spec;
  spec.limits.max_prompt_tokens = 64;
  spec.limits.max_context_tokens = 64;
  spec.limits.max_candidates = 8;
  std::atomic<int> engine_steps{0};  // declared before the server: its engine calls back into it
  TestServer ts({spec});
  ts.engine().SetStatsCallback([&](const EngineStats&) { engine_steps.fetch_add(1); });
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto ctx = Ctx();
    grpc::Status s;
    if (c.generate) {
      v1::GenerateRequest req = ValidGenerate();
      c.generate(&req);
      v1::GenerateResponse resp;
      s = ts.stub().Generate(ctx.get(), req, &resp);
      // The streaming RPC validates the same way.
      auto sctx = Ctx();
      auto reader = ts.stub().GenerateStream(sctx.get(), req);
      v1::GenerateDelta d;
      EXPECT_FALSE(reader->Read(&d));
      grpc::Status ss = reader->Finish();
      EXPECT_EQ(ss.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(ss.error_message(), s.error_message());
    } else if (c.recommend) {
      v1::RecommendRequest req = ValidRecommend();
      c.recommend(&req);
      v1::RecommendResponse resp;
      s = ts.stub().Recommend(ctx.get(), req, &resp);
    } else {
      v1::FeedbackRequest req;
      req.set_request_id("r-1");
      req.set_click(true);
      c.feedback(&req);
      v1::FeedbackResponse resp;
      s = ts.stub().Feedback(ctx.get(), req, &resp);
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_EQ(s.error_message().rfind(c.message_prefix, 0), 0u) << "got: " << s.error_message();
  }
  // Nothing above reached the engine.
  EXPECT_EQ(engine_steps.load(), 0);
}

TEST(ValidationTest, ValidBaselinesPass) {
  PoolSpec spec;
  spec.limits.max_prompt_tokens = 64;
  spec.limits.max_candidates = 8;
  TestServer ts({spec});
  v1::GenerateResponse g;
  auto c1 = Ctx();
  EXPECT_TRUE(ts.stub().Generate(c1.get(), ValidGenerate(), &g).ok());
  v1::RecommendResponse r;
  auto c2 = Ctx();
  EXPECT_TRUE(ts.stub().Recommend(c2.get(), ValidRecommend(), &r).ok());
}


TEST(DecodeSamplingTest, OffValuesBecomeNeutral) {
  v1::SamplingParams s;
  StatusOr<SamplingParams> p = DecodeSampling(s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->top_p, 1.0f);
  EXPECT_EQ(p->repetition_penalty, 1.0f);
  EXPECT_FALSE(p->has_seed);
  s.set_seed(0);
  s.set_top_p(0.9f);
  p = DecodeSampling(s);
  EXPECT_TRUE(p->has_seed);
  EXPECT_EQ(p->top_p, 0.9f);
}

TEST(DecodeClassHintTest, NamesEachValue) {
  EXPECT_FALSE(DecodeClassHint(v1::REQUEST_CLASS_UNSPECIFIED)->has_value());
  EXPECT_EQ(*DecodeClassHint(v1::REQUEST_CLASS_REALTIME).value(), RequestClass::kRealtime);
  EXPECT_EQ(*DecodeClassHint(v1::REQUEST_CLASS_COMPLEX).value(), RequestClass::kComplex);
  EXPECT_FALSE(DecodeClassHint(3).ok());
}

}  // namespace
}  // namespace inferd::server
