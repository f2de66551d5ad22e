// Generate and GenerateStream through the real gRPC protocol: outputs against the fake model's
// reference, stop strings, finish reasons, input forms, queue limits, cancellation and deadlines.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/server_test_util.h"

namespace inferd::server {
namespace {

using testing::Ctx;
using testing::ExpectedIds;
using testing::Ids;
using testing::PoolSpec;
using testing::TestServer;
using testing::TestTokenizer;

std::vector<TokenId> SomePrompt(int n) {
  std::vector<TokenId> ids;
  for (int i = 0; i < n; ++i) ids.push_back(1000 + 37 * i);
  return ids;
}

v1::GenerateRequest IdsRequest(const std::vector<TokenId>& prompt, int32_t max_tokens) {
  v1::GenerateRequest req;
  for (TokenId t : prompt) req.mutable_prompt_token_ids()->add_ids(t);
  req.mutable_sampling()->set_max_tokens(max_tokens);
  return req;
}

struct Streamed {
  grpc::Status status;
  std::vector<v1::GenerateDelta> messages;
  std::string text;
  std::vector<TokenId> ids;
};

Streamed RunStream(v1::Inference::Stub& stub, const v1::GenerateRequest& req) {
  Streamed out;
  auto ctx = Ctx();
  auto reader = stub.GenerateStream(ctx.get(), req);
  v1::GenerateDelta msg;
  while (reader->Read(&msg)) {
    out.text += msg.text();
    for (const auto& t : msg.tokens()) out.ids.push_back(t.token_id());
    out.messages.push_back(msg);
  }
  out.status = reader->Finish();
  return out;
}

TEST(GenerateTest, TokenIdsMatchTheModelReference) {
  TestServer ts;
  const std::vector<TokenId> prompt = SomePrompt(20);
  v1::GenerateRequest req = IdsRequest(prompt, 12);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &resp).ok());
  const std::vector<TokenId> want = ExpectedIds(prompt, 12);
  EXPECT_EQ(Ids(resp.tokens()), want);
  EXPECT_EQ(resp.text(), TestTokenizer()->Decode(want, /*skip_special_tokens=*/true));
  EXPECT_EQ(resp.finish_reason(), want.size() == 12 ? v1::FINISH_REASON_LENGTH : v1::FINISH_REASON_STOP);
  EXPECT_FALSE(resp.request_id().empty());
  EXPECT_EQ(resp.usage().prompt_tokens(), 20);
  EXPECT_EQ(resp.usage().generated_tokens(), static_cast<int32_t>(want.size()));
  EXPECT_GT(resp.usage().total_seconds(), 0.0);
  for (const auto& t : resp.tokens()) EXPECT_LE(t.logprob(), 0.0f);
}

TEST(GenerateTest, CallerRequestIdAndTopLogprobsComeBack) {
  TestServer ts;
  v1::GenerateRequest req = IdsRequest(SomePrompt(8), 4);
  req.set_request_id("caller-42");
  req.mutable_sampling()->set_top_logprobs(3);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.request_id(), "caller-42");
  ASSERT_FALSE(resp.tokens().empty());
  for (const auto& t : resp.tokens()) {
    ASSERT_EQ(t.top_size(), 3);
    EXPECT_EQ(t.top(0).token_id(), t.token_id());  // greedy: the sampled token is the best alternative
  }
}

TEST(GenerateTest, StreamDeltasConcatenateToTheUnaryResult) {
  TestServer ts;
  v1::GenerateRequest req;
  req.set_prompt("Write a product description for a waterproof hiking boot.");
  req.mutable_sampling()->set_max_tokens(30);
  v1::GenerateResponse unary;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &unary).ok());
  Streamed s = RunStream(ts.stub(), req);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.text, unary.text());
  EXPECT_EQ(s.ids, Ids(unary.tokens()));
  ASSERT_GE(s.messages.size(), 1u);
  EXPECT_FALSE(s.messages.front().request_id().empty());
  for (size_t i = 0; i < s.messages.size(); ++i) {
    const bool last = i + 1 == s.messages.size();
    if (i > 0) {
      EXPECT_TRUE(s.messages[i].request_id().empty()) << i;
    }
    EXPECT_EQ(s.messages[i].has_usage(), last) << i;
    EXPECT_EQ(s.messages[i].finish_reason() != v1::FINISH_REASON_UNSPECIFIED, last) << i;
  }
  EXPECT_EQ(s.messages.back().finish_reason(), unary.finish_reason());
  EXPECT_EQ(s.messages.back().usage().generated_tokens(), unary.usage().generated_tokens());
}

TEST(GenerateTest, PromptTextIsEncodedWithBos) {
  TestServer ts;
  const std::string text = "The quick brown fox";
  EncodeOptions no_special;
  no_special.add_special_tokens = false;
  std::vector<TokenId> prompt = TestTokenizer()->Encode(text, no_special).value();
  prompt.insert(prompt.begin(), 0);  // DeepSeek-V3: BOS id 0, add_bos_token true
  v1::GenerateRequest req;
  req.set_prompt(text);
  req.mutable_sampling()->set_max_tokens(6);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.usage().prompt_tokens(), static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(Ids(resp.tokens()), ExpectedIds(prompt, 6));
}

TEST(GenerateTest, ChatMessagesUseTheTemplateWithAGenerationPrompt) {
  TestServer ts;
  v1::GenerateRequest req;
  auto* sys = req.mutable_messages()->add_messages();
  sys->set_role("system");
  sys->set_content("You write short product copy.");
  auto* user = req.mutable_messages()->add_messages();
  user->set_role("user");
  user->set_content("Describe a steel water bottle.");
  req.mutable_sampling()->set_max_tokens(5);
  // The DeepSeek-V3 template renders BOS + system + <｜User｜>content + <｜Assistant｜>.
  EncodeOptions no_special;
  no_special.add_special_tokens = false;
  const std::string rendered =
      "<｜begin▁of▁sentence｜>You write short product copy.<｜User｜>Describe a steel "
      "water bottle.<｜Assistant｜>";
  const std::vector<TokenId> prompt = TestTokenizer()->Encode(rendered, no_special).value();
  ASSERT_EQ(prompt.front(), 0);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.usage().prompt_tokens(), static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(Ids(resp.tokens()), ExpectedIds(prompt, 5));
}

TEST(GenerateTest, ZeroMaxTokensMeansTheDefault) {
  PoolSpec spec;
  spec.limits.default_max_tokens = 7;
  TestServer ts({spec});
  v1::GenerateRequest req = IdsRequest(SomePrompt(10), 0);
  req.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.tokens_size(), 7);
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_LENGTH);
}

// The first occurrence of a few code points taken from the middle of `text`.
std::string MiddleSnippet(const std::string& text) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(text.size());
  const size_t n = starts.size() - 1;
  if (n < 8) return "";
  const size_t a = starts[n / 2], b = starts[n / 2 + 3];
  return text.substr(a, b - a);
}

TEST(GenerateTest, StopStringEndsTheTextBeforeIt) {
  TestServer ts;
  const std::vector<TokenId> prompt = SomePrompt(12);
  v1::GenerateRequest req = IdsRequest(prompt, 40);
  req.mutable_sampling()->set_ignore_eos(true);
  const std::vector<TokenId> all = engine::FakeExecutor::ReferenceGenerate(prompt, 40, TestTokenizer()->vocab_size());
  const std::string full = TestTokenizer()->Decode(all, true);
  const std::string stop = MiddleSnippet(full);
  ASSERT_FALSE(stop.empty()) << full;
  const std::string want = full.substr(0, full.find(stop));
  req.mutable_sampling()->add_stop("a stop string that never appears");
  req.mutable_sampling()->add_stop(stop);

  v1::GenerateResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(ts.stub().Generate(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_STOP_STRING);
  EXPECT_EQ(resp.text(), want);
  EXPECT_LT(resp.tokens_size(), 40);
  Streamed s = RunStream(ts.stub(), req);
  ASSERT_TRUE(s.status.ok());
  EXPECT_EQ(s.text, want);
  EXPECT_EQ(s.messages.back().finish_reason(), v1::FINISH_REASON_STOP_STRING);
}

TEST(GenerateTest, UnknownModelIsNotFound) {
  TestServer ts;
  v1::GenerateRequest req = IdsRequest(SomePrompt(4), 2);
  req.set_model("no-such-model");
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  grpc::Status s = ts.stub().Generate(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("no-such-model"), std::string::npos);
  Streamed st = RunStream(ts.stub(), req);
  EXPECT_EQ(st.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(GenerateTest, ClassesRouteToThePoolServingThem) {
  PoolSpec rt, cx;
  rt.name = "light";
  rt.classes = {RequestClass::kRealtime};
  cx.name = "full";
  cx.classes = {RequestClass::kComplex};
  std::atomic<int> finished[2] = {0, 0};  // declared before the server: its engines call back into them
  std::atomic<int> realtime_seen[2] = {0, 0};
  TestServer ts({rt, cx});
  for (int i = 0; i < 2; ++i) {
    ts.engine(i).SetStatsCallback([&, i](const EngineStats& st) {
      for (const auto& f : st.finished) {
        finished[i].fetch_add(1);
        if (f.cls == RequestClass::kRealtime) realtime_seen[i].fetch_add(1);
      }
    });
  }
  auto call = [&](v1::GenerateRequest req) {
    v1::GenerateResponse resp;
    auto ctx = Ctx();
    grpc::Status s = ts.stub().Generate(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  };
  v1::GenerateRequest small = IdsRequest(SomePrompt(6), 8);
  small.set_latency_budget_ms(5000);
  call(small);                         // tiny max_tokens + budget: realtime -> light
  call(IdsRequest(SomePrompt(6), 8));  // no budget: complex -> full
  v1::GenerateRequest hinted = IdsRequest(SomePrompt(6), 100);
  hinted.set_class_hint(v1::REQUEST_CLASS_REALTIME);
  call(hinted);  // hint wins -> light
  v1::GenerateRequest named = IdsRequest(SomePrompt(6), 4);
  named.set_model("light");
  call(named);  // complex, but the model is named -> light
  ts.engine(0).Drain(std::chrono::milliseconds(1000));
  ts.engine(1).Drain(std::chrono::milliseconds(1000));
  EXPECT_EQ(finished[0].load(), 3);
  EXPECT_EQ(realtime_seen[0].load(), 2);
  EXPECT_EQ(finished[1].load(), 1);
  EXPECT_EQ(realtime_seen[1].load(), 0);
}

TEST(GenerateTest, FullQueueIsResourceExhaustedWithARetryHint) {
  PoolSpec spec;
  spec.max_running = 1;
  spec.max_waiting_complex = 1;
  spec.step_delay = std::chrono::microseconds(500);
  TestServer ts({spec});
  // Occupy the only running slot, then the only queue place, directly on the engine.
  GenerateRequest hog;
  hog.prompt = SomePrompt(10);
  hog.max_tokens = 100000;
  hog.ignore_eos = true;
  SubmitResult running = ts.engine().Submit(hog);
  ASSERT_TRUE(running.status.ok());
  TokenDelta d;
  ASSERT_EQ(running.stream->Read(&d, std::chrono::milliseconds(5000)), RequestStream::ReadResult::kDelta);
  SubmitResult queued = ts.engine().Submit(hog);
  ASSERT_TRUE(queued.status.ok());

  v1::GenerateRequest req = IdsRequest(SomePrompt(5), 4);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  grpc::Status s = ts.stub().Generate(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  const auto& trailers = ctx->GetServerTrailingMetadata();
  auto it = trailers.find("retry-after-ms");
  ASSERT_NE(it, trailers.end());
  EXPECT_GE(std::stoll(std::string(it->second.data(), it->second.size())), 1);

  ts.engine().Cancel(running.stream->id());
  ts.engine().Cancel(queued.stream->id());
  EXPECT_TRUE(ts.WaitAllBlocksFree());
}

v1::GenerateRequest EndlessRequest() {
  v1::GenerateRequest req = IdsRequest(SomePrompt(40), 1000);
  req.mutable_sampling()->set_ignore_eos(true);
  return req;
}

TEST(GenerateTest, ClientCancelFreesTheKvBlocks) {
  PoolSpec spec;
  spec.step_delay = std::chrono::microseconds(1000);
  TestServer ts({spec});
  auto ctx = Ctx();
  auto reader = ts.stub().GenerateStream(ctx.get(), EndlessRequest());
  v1::GenerateDelta msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_LT(ts.engine().LastStats().kv_free_blocks, ts.engine().num_blocks());  // the request holds blocks
  ctx->TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(ts.WaitAllBlocksFree());
}

TEST(GenerateTest, LatencyBudgetBecomesTheDeadline) {
  PoolSpec spec;
  spec.step_delay = std::chrono::microseconds(1000);
  TestServer ts({spec});
  v1::GenerateRequest req = EndlessRequest();
  req.set_latency_budget_ms(50);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  grpc::Status s = ts.stub().Generate(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_TRUE(ts.WaitAllBlocksFree());

  req.set_latency_budget_ms(150);
  Streamed st = RunStream(ts.stub(), req);
  EXPECT_EQ(st.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  if (!st.messages.empty()) {  // output streamed before the deadline: the last message says why it ended
    EXPECT_EQ(st.messages.back().finish_reason(), v1::FINISH_REASON_DEADLINE);
    EXPECT_TRUE(st.messages.back().has_usage());
  }
  EXPECT_TRUE(ts.WaitAllBlocksFree());
}

TEST(GenerateTest, ClientDeadlineFreesTheKvBlocks) {
  PoolSpec spec;
  spec.step_delay = std::chrono::microseconds(1000);
  TestServer ts({spec});
  v1::GenerateResponse resp;
  auto ctx = Ctx(std::chrono::milliseconds(80));
  grpc::Status s = ts.stub().Generate(ctx.get(), EndlessRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(ts.WaitAllBlocksFree());
}

TEST(GenerateTest, NotServingIsUnavailable) {
  TestServer ts;
  ts.server().SetServing(false);
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  EXPECT_EQ(ts.stub().Generate(ctx.get(), IdsRequest(SomePrompt(4), 2), &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ts.server().SetServing(true);
  auto ctx2 = Ctx();
  EXPECT_TRUE(ts.stub().Generate(ctx2.get(), IdsRequest(SomePrompt(4), 2), &resp).ok());
}

TEST(GenerateTest, DrainingEngineIsUnavailable) {
  TestServer ts;
  ts.engine().Drain(std::chrono::milliseconds(100));
  v1::GenerateResponse resp;
  auto ctx = Ctx();
  EXPECT_EQ(ts.stub().Generate(ctx.get(), IdsRequest(SomePrompt(4), 2), &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace inferd::server
