// The front end's edge features through the real gRPC protocol: the realtime response cache
// (from_cache, TTL, never across models, diff encoding on cached responses) and config-driven
// classification deciding which pool serves a request.
#include <gtest/gtest.h>

#include <thread>

#include "inferd/ranking_codec.h"
#include "server/ranking_proto.h"
#include "server/server_test_util.h"

namespace inferd::server {
namespace {

using testing::Ctx;
using testing::PoolSpec;
using testing::TestServer;

v1::RecommendRequest MakeRequest(const std::string& model = "") {
  v1::RecommendRequest req;
  req.set_model(model);
  req.set_context("Recently viewed: espresso machine, milk frother. Next:");
  const char* texts[] = {"coffee beans", "descaling tablets", "a garden hose", "ceramic cups", "tamper"};
  for (int i = 0; i < 5; ++i) {
    auto* c = req.add_candidates();
    c->set_item_id(500 + 11 * static_cast<uint64_t>(i));
    c->set_text(texts[i]);
  }
  req.set_encoding(v1::RESPONSE_ENCODING_PLAIN);
  return req;
}

v1::RecommendResponse Call(TestServer& ts, const v1::RecommendRequest& req) {
  v1::RecommendResponse resp;
  auto ctx = Ctx();
  grpc::Status s = ts.stub().Recommend(ctx.get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

std::vector<uint64_t> PlainIds(const v1::RecommendResponse& r) {
  std::vector<uint64_t> ids;
  for (const auto& item : r.plain().items()) ids.push_back(item.item_id());
  return ids;
}

InferenceServiceOptions WithCache(std::chrono::milliseconds ttl) {
  InferenceServiceOptions o;
  o.cache = std::make_shared<cache::ResponseCache>(1 << 20, ttl);
  return o;
}

// Requests engine i finished, counted by its stats callback (set before any request).
class FinishedCounter {
 public:
  FinishedCounter(TestServer& ts, size_t i) : count_(std::make_shared<std::atomic<int>>(0)) {
    ts.engine(i).SetStatsCallback(
        [c = count_](const EngineStats& s) { c->fetch_add(static_cast<int>(s.finished.size())); });
  }
  // Waits until at least `n` finished (the callback runs just after the outcome is published).
  int WaitFor(int n) const {
    for (int i = 0; i < 400 && count_->load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return count_->load();
  }
  // The count after letting a late callback land.
  int Settled() const {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return count_->load();
  }

 private:
  std::shared_ptr<std::atomic<int>> count_;
};

v1::RecommendRequest ManyCandidates(int n) {
  v1::RecommendRequest req = MakeRequest();
  req.clear_candidates();
  for (int i = 0; i < n; ++i) {
    auto* c = req.add_candidates();
    c->set_item_id(1000000000000ull + 7919ull * static_cast<uint64_t>(i) * 104729ull);
    c->set_text("item " + std::to_string(i) + (i % 3 ? " hiking pole" : " rain jacket"));
  }
  return req;
}

TEST(ResponseCacheServingTest, SecondIdenticalRecommendIsServedFromCacheWithoutTheEngine) {
  InferenceServiceOptions options = WithCache(std::chrono::seconds(60));
  auto cache = options.cache;
  TestServer ts({PoolSpec{}}, options);
  FinishedCounter finished(ts, 0);
  const v1::RecommendRequest req = MakeRequest();
  v1::RecommendResponse first = Call(ts, req);
  EXPECT_FALSE(first.from_cache());
  ASSERT_EQ(first.plain().items_size(), 5);
  EXPECT_EQ(finished.WaitFor(1), 1);
  v1::RecommendResponse second = Call(ts, req);
  EXPECT_TRUE(second.from_cache());
  EXPECT_EQ(finished.Settled(), 1);  // the engine never saw the second request
  EXPECT_EQ(PlainIds(second), PlainIds(first));
  for (int i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(second.plain().items(i).sum_logprob(), first.plain().items(i).sum_logprob());
  }
  EXPECT_NE(second.response_id(), first.response_id());
  EXPECT_EQ(second.response_hash(), first.response_hash());
  const cache::CacheStats s = cache->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.entries, 1);
  EXPECT_GT(s.bytes, 0);
}

// A repeat is found by its texts before tokenizing; a request with those texts but a repeated item id is
// still refused as it would be without the cache, and a changed text is a miss.
TEST(ResponseCacheServingTest, RepeatIsAHitByItsTextsButRepeatedItemIdsStillGetTheirError) {
  InferenceServiceOptions options = WithCache(std::chrono::seconds(60));
  auto cache = options.cache;
  TestServer ts({PoolSpec{}}, options);
  v1::RecommendRequest req = MakeRequest();
  EXPECT_FALSE(Call(ts, req).from_cache());
  EXPECT_TRUE(Call(ts, req).from_cache());
  v1::RecommendRequest dup = req;
  dup.mutable_candidates(3)->set_item_id(req.candidates(1).item_id());
  v1::RecommendResponse resp;
  auto ctx = Ctx();
  grpc::Status st = ts.stub().Recommend(ctx.get(), dup, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "candidates[3].item_id: 511 repeats candidates[1].item_id");
  req.mutable_candidates(4)->set_text("a tamper");
  EXPECT_FALSE(Call(ts, req).from_cache());
  const cache::CacheStats s = cache->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 2);
}

TEST(ResponseCacheServingTest, KeyIgnoresEncodingAndItemIdsButNotTopK) {
  TestServer ts({PoolSpec{}}, WithCache(std::chrono::seconds(60)));
  v1::RecommendRequest req = MakeRequest();
  v1::RecommendResponse plain = Call(ts, req);
  req.set_encoding(v1::RESPONSE_ENCODING_COMPACT);
  for (auto& c : *req.mutable_candidates()) c.set_item_id(c.item_id() + 1000);
  v1::RecommendResponse compact = Call(ts, req);
  EXPECT_TRUE(compact.from_cache());
  StatusOr<Ranking> decoded = DecodeCompact(FromProto(compact.compact()));
  ASSERT_TRUE(decoded.ok());
  std::vector<uint64_t> shifted = PlainIds(plain);
  for (auto& id : shifted) id += 1000;  // same ranks, the new request's ids
  EXPECT_EQ(decoded->ids, shifted);
  req.set_top_k(2);
  EXPECT_FALSE(Call(ts, req).from_cache());
}

TEST(ResponseCacheServingTest, DiffEncodingWorksAgainstAndOnCachedResponses) {
  TestServer ts({PoolSpec{}}, WithCache(std::chrono::seconds(60)));
  v1::RecommendRequest req = ManyCandidates(40);  // large ids: the diff is smaller than the compact form
  v1::RecommendResponse base = Call(ts, req);
  req.set_encoding(v1::RESPONSE_ENCODING_DIFF);
  req.set_previous_response_id(base.response_id());
  req.set_previous_response_hash(base.response_hash());
  v1::RecommendResponse diff = Call(ts, req);
  EXPECT_TRUE(diff.from_cache());
  ASSERT_TRUE(diff.has_diff()) << diff.DebugString();
  const std::vector<uint64_t> base_ids = PlainIds(base);
  StatusOr<Ranking> decoded = DecodeDiff(base_ids, FromProto(diff.diff()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->ids, base_ids);
}

TEST(ResponseCacheServingTest, EntriesExpireAfterTheTtl) {
  TestServer ts({PoolSpec{}}, WithCache(std::chrono::milliseconds(150)));
  const v1::RecommendRequest req = MakeRequest();
  EXPECT_FALSE(Call(ts, req).from_cache());
  EXPECT_TRUE(Call(ts, req).from_cache());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(Call(ts, req).from_cache());
  EXPECT_TRUE(Call(ts, req).from_cache());
}

TEST(ResponseCacheServingTest, NeverAcrossModelsAndNotForComplexRequests) {
  PoolSpec a;
  a.name = "a";
  a.classes = {RequestClass::kRealtime};
  PoolSpec b;
  b.name = "b";
  b.classes = {RequestClass::kComplex};
  TestServer ts({a, b}, WithCache(std::chrono::seconds(60)));
  EXPECT_FALSE(Call(ts, MakeRequest("a")).from_cache());
  EXPECT_TRUE(Call(ts, MakeRequest("a")).from_cache());
  EXPECT_FALSE(Call(ts, MakeRequest("b")).from_cache());
  v1::RecommendRequest complex = MakeRequest("b");
  complex.set_class_hint(v1::REQUEST_CLASS_COMPLEX);
  EXPECT_FALSE(Call(ts, complex).from_cache());
  EXPECT_FALSE(Call(ts, complex).from_cache());
}

TEST(ClassificationRoutingTest, ConfigRuleSendsLargeRecommendsToTheComplexPool) {
  PoolSpec light;
  light.name = "light";
  light.classes = {RequestClass::kRealtime};
  PoolSpec full;
  full.name = "full";
  full.classes = {RequestClass::kComplex};
  InferenceServiceOptions options;
  ClassRuleConfig rule;
  rule.name = "many-candidates";
  rule.match.rpc = {"recommend"};
  rule.match.candidates = {5, std::nullopt};
  rule.cls = "complex";
  options.classification.rules.push_back(rule);
  TestServer ts({light, full}, options);
  FinishedCounter on_light(ts, 0), on_full(ts, 1);

  v1::RecommendRequest small = MakeRequest();
  small.mutable_candidates()->RemoveLast();  // 4 candidates: the RPC default, realtime
  Call(ts, small);
  EXPECT_EQ(on_light.WaitFor(1), 1);
  EXPECT_EQ(on_full.Settled(), 0);
  Call(ts, MakeRequest());  // 5 candidates: the rule, complex
  EXPECT_EQ(on_full.WaitFor(1), 1);
  EXPECT_EQ(on_light.Settled(), 1);
  classify::ClassifierStats stats = ts.server().classifier_stats();
  ASSERT_GE(stats.decisions.size(), 2u);
  EXPECT_EQ(stats.decisions[1].name, "many-candidates");
  EXPECT_EQ(stats.decisions[1].count, 1u);
}

TEST(ClassificationRoutingTest, InvalidRulesAreRejectedAtConstruction) {
  InferenceServiceOptions options;
  ClassRuleConfig rule;
  rule.name = "backwards";
  rule.match.max_tokens = {9, 1};
  options.classification.rules = {rule};
  EXPECT_THROW(TestServer({PoolSpec{}}, options), std::invalid_argument);
}

// The realtime path on gRPC's callback threads: what waits (a cache miss) runs on a pool of at most
// server.max_threads threads; a cache hit and local feedback need none of them, and deadlines and client
// cancellation still end a waiting Recommend and free its KV blocks.
v1::RecommendRequest Distinct(const std::string& context) {
  v1::RecommendRequest req = MakeRequest();
  req.set_context(context);
  return req;
}

// Waits until `n` Recommend / Feedback calls hold a thread of the blocking pool (false after 10 s).
bool WaitWaitingCalls(TestServer& ts, size_t n) {
  for (int i = 0; i < 2000; ++i) {
    if (ts.server().waiting_calls() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(RealtimeCallbackPathTest, HitsAndLocalFeedbackAreServedWhileEveryWaitingThreadIsBusy) {
  InferenceServiceOptions options = WithCache(std::chrono::seconds(600));
  ServerConfig cfg;
  cfg.max_threads = 4;
  PoolSpec slow;
  slow.step_delay = std::chrono::milliseconds(1500);  // each engine step: misses stay in flight
  TestServer ts({slow}, options, cfg);
  const v1::RecommendRequest cached = MakeRequest();
  const v1::RecommendResponse first = Call(ts, cached);
  ASSERT_FALSE(first.from_cache());

  std::vector<std::thread> misses;
  std::vector<grpc::Status> miss_status(4);
  for (int i = 0; i < 4; ++i) {
    misses.emplace_back([&, i] {
      v1::RecommendResponse resp;
      auto ctx = Ctx();
      miss_status[i] = ts.stub().Recommend(ctx.get(), Distinct("busy " + std::to_string(i)), &resp);
    });
  }
  ASSERT_TRUE(WaitWaitingCalls(ts, 4)) << ts.server().waiting_calls();

  v1::RecommendResponse refused_resp;
  auto refused_ctx = Ctx();
  const grpc::Status refused = ts.stub().Recommend(refused_ctx.get(), Distinct("one too many"), &refused_resp);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("server.max_threads"), std::string::npos) << refused.error_message();
  EXPECT_EQ(refused_ctx->GetServerTrailingMetadata().count("retry-after-ms"), 1u);

  const v1::RecommendResponse hit = Call(ts, cached);
  EXPECT_TRUE(hit.from_cache());
  EXPECT_EQ(PlainIds(hit), PlainIds(first));

  v1::FeedbackRequest fb;
  fb.set_request_id(first.request_id());
  fb.set_click(true);
  v1::FeedbackResponse fb_resp;
  auto fb_ctx = Ctx();
  EXPECT_TRUE(ts.stub().Feedback(fb_ctx.get(), fb, &fb_resp).ok());
  EXPECT_EQ(ts.server().waiting_calls(), 4u);  // the three calls above took no thread of the pool

  for (std::thread& t : misses) t.join();
  for (const grpc::Status& st : miss_status) EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST(RealtimeCallbackPathTest, ClientDeadlineEndsAWaitingRecommendAndFreesItsKvBlocks) {
  PoolSpec slow;
  slow.step_delay = std::chrono::milliseconds(500);
  TestServer ts({slow}, WithCache(std::chrono::seconds(60)));
  v1::RecommendResponse resp;
  auto ctx = Ctx(std::chrono::milliseconds(100));
  const grpc::Status st = ts.stub().Recommend(ctx.get(), MakeRequest(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_TRUE(ts.WaitAllBlocksFree());
}

TEST(RealtimeCallbackPathTest, ClientCancelEndsAWaitingRecommendAndFreesItsKvBlocks) {
  PoolSpec slow;
  slow.step_delay = std::chrono::milliseconds(500);
  TestServer ts({slow}, WithCache(std::chrono::seconds(60)));
  auto ctx = Ctx();
  grpc::Status st;
  std::thread call([&] {
    v1::RecommendResponse resp;
    st = ts.stub().Recommend(ctx.get(), MakeRequest(), &resp);
  });
  ASSERT_TRUE(WaitWaitingCalls(ts, 1));
  ctx->TryCancel();
  call.join();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
  EXPECT_TRUE(ts.WaitAllBlocksFree());
  for (int i = 0; i < 2000 && ts.server().waiting_calls() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(ts.server().waiting_calls(), 0u);  // the pool thread ended the call
}

}  // namespace
}  // namespace inferd::server
