// Recommend and Feedback through the real gRPC protocol: ranking against the fake model's reference
// scores, top_k, ties, the three response encodings, diff fallbacks, business counters.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "server/ranking_proto.h"
#include "server/server_test_util.h"

namespace inferd::server {
namespace {

using testing::Ctx;
using testing::PoolSpec;
using testing::TestServer;
using testing::TestTokenizer;

constexpr const char* kContext = "User viewed: trail running shoes, merino socks. Next purchase:";

std::vector<TokenId> NoSpecial(const std::string& text) {
  EncodeOptions opts;
  opts.add_special_tokens = false;
  return TestTokenizer()->Encode(text, opts).value();
}

v1::RecommendRequest MakeRequest(int n, int top_k) {
  v1::RecommendRequest req;
  req.set_context(kContext);
  for (int i = 0; i < n; ++i) {
    auto* c = req.add_candidates();
    c->set_item_id(100000 + 7919 * static_cast<uint64_t>(i));
    c->set_text("item " + std::to_string(i) + (i % 3 ? " hiking pole" : " rain jacket, size " + std::to_string(i)));
  }
  req.set_top_k(top_k);
  return req;
}

struct Expected {
  uint64_t id;
  double sum;
  double mean;
  int32_t num_tokens;
};

// Reference ranking from the fake model's scores: by sum (or mean), ties by request order.
std::vector<Expected> ReferenceRanking(const v1::RecommendRequest& req, bool by_mean) {
  std::vector<TokenId> context = NoSpecial(req.context());
  context.insert(context.begin(), 0);  // BOS
  std::vector<Expected> all;
  for (const auto& c : req.candidates()) {
    const std::vector<TokenId> ids = NoSpecial(c.text());
    const double sum = engine::FakeExecutor::ReferenceScore(context, ids);
    all.push_back({c.item_id(), sum, sum / static_cast<double>(ids.size()), static_cast<int32_t>(ids.size())});
  }
  std::stable_sort(all.begin(), all.end(),
                   [&](const Expected& a, const Expected& b) { return by_mean ? a.mean > b.mean : a.sum > b.sum; });
  if (req.top_k() > 0 && static_cast<size_t>(req.top_k()) < all.size()) all.resize(req.top_k());
  return all;
}

v1::RecommendResponse Call(TestServer& ts, const v1::RecommendRequest& req) {
  v1::RecommendResponse resp;
  auto ctx = Ctx();
  grpc::Status s = ts.stub().Recommend(ctx.get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

std::vector<uint64_t> IdsOf(const std::vector<Expected>& e) {
  std::vector<uint64_t> ids;
  for (const auto& x : e) ids.push_back(x.id);
  return ids;
}

TEST(RecommendTest, PlainRankingMatchesTheReferenceScores) {
  TestServer ts;
  for (bool by_mean : {false, true}) {
    v1::RecommendRequest req = MakeRequest(12, 5);
    req.set_score_by_mean(by_mean);
    v1::RecommendResponse resp = Call(ts, req);
    const std::vector<Expected> want = ReferenceRanking(req, by_mean);
    ASSERT_EQ(resp.ranking_case(), v1::RecommendResponse::kPlain);
    ASSERT_EQ(resp.plain().items_size(), 5);
    for (int i = 0; i < 5; ++i) {
      const v1::ScoredItem& item = resp.plain().items(i);
      EXPECT_EQ(item.item_id(), want[i].id) << "rank " << i << " by_mean " << by_mean;
      EXPECT_NEAR(item.sum_logprob(), want[i].sum, 1e-4);
      EXPECT_NEAR(item.mean_logprob(), want[i].mean, 1e-4);
      EXPECT_EQ(item.num_tokens(), want[i].num_tokens);
    }
    EXPECT_FALSE(resp.response_id().empty());
    EXPECT_EQ(resp.response_hash(), RankingHash(IdsOf(want)));
    EXPECT_GT(resp.usage().prompt_tokens(), 0);
  }
}

TEST(RecommendTest, TopKZeroRanksEveryCandidate) {
  TestServer ts;
  v1::RecommendRequest req = MakeRequest(9, 0);
  v1::RecommendResponse resp = Call(ts, req);
  EXPECT_EQ(resp.plain().items_size(), 9);
  req.set_top_k(50);  // larger than the candidate count
  EXPECT_EQ(Call(ts, req).plain().items_size(), 9);
}

TEST(RecommendTest, TiesKeepRequestOrder) {
  TestServer ts;
  v1::RecommendRequest req;
  req.set_context(kContext);
  const uint64_t ids[] = {42, 7, 99, 3};
  const char* texts[] = {"same text", "same text", "other text entirely", "same text"};
  for (int i = 0; i < 4; ++i) {
    auto* c = req.add_candidates();
    c->set_item_id(ids[i]);
    c->set_text(texts[i]);
  }
  v1::RecommendResponse resp = Call(ts, req);
  std::vector<uint64_t> got;
  for (const auto& item : resp.plain().items()) got.push_back(item.item_id());
  ASSERT_EQ(got.size(), 4u);
  // The three "same text" candidates score equally and keep their request order among themselves.
  std::vector<uint64_t> same;
  for (uint64_t id : got) {
    if (id != 99) same.push_back(id);
  }
  EXPECT_EQ(same, (std::vector<uint64_t>{42, 7, 3}));
  EXPECT_EQ(IdsOf(ReferenceRanking(req, false)), got);
}

TEST(RecommendTest, AllEncodingsDecodeToTheSameRanking) {
  TestServer ts;
  v1::RecommendRequest req = MakeRequest(60, 40);
  const std::vector<Expected> want = ReferenceRanking(req, false);

  req.set_encoding(v1::RESPONSE_ENCODING_PLAIN);
  v1::RecommendResponse plain = Call(ts, req);
  req.set_encoding(v1::RESPONSE_ENCODING_COMPACT);
  req.set_score_precision(1e-3);
  v1::RecommendResponse compact = Call(ts, req);
  req.set_encoding(v1::RESPONSE_ENCODING_DIFF);
  req.set_previous_response_id(plain.response_id());
  req.set_previous_response_hash(plain.response_hash());
  v1::RecommendResponse diff = Call(ts, req);

  ASSERT_EQ(compact.ranking_case(), v1::RecommendResponse::kCompact);
  ASSERT_EQ(diff.ranking_case(), v1::RecommendResponse::kDiff);
  EXPECT_EQ(diff.diff().base_response_id(), plain.response_id());
  EXPECT_LT(compact.ByteSizeLong(), plain.ByteSizeLong());
  EXPECT_LT(diff.ByteSizeLong(), compact.ByteSizeLong());

  const std::vector<uint64_t> want_ids = IdsOf(want);
  StatusOr<Ranking> p = DecodeRankingResponse(plain, false);
  StatusOr<Ranking> c = DecodeRankingResponse(compact, false);
  StatusOr<Ranking> d = DecodeRankingResponse(diff, false, want_ids);
  for (const StatusOr<Ranking>* r : {&p, &c, &d}) {
    ASSERT_TRUE(r->ok()) << r->status().ToString();
    EXPECT_EQ((*r)->ids, want_ids);
    ASSERT_EQ((*r)->scores.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*r)->scores[i], want[i].sum, 0.5e-3 + 1e-6);
  }
  EXPECT_EQ(plain.response_hash(), compact.response_hash());
  EXPECT_EQ(diff.response_hash(), RankingHash(want_ids));
}

TEST(RecommendTest, DiffAgainstAnEditedRankingRoundTrips) {
  TestServer ts;
  v1::RecommendRequest first = MakeRequest(80, 50);
  v1::RecommendResponse base = Call(ts, first);
  StatusOr<Ranking> base_ranking = DecodeRankingResponse(base, false);
  ASSERT_TRUE(base_ranking.ok());
  // The next page view: five candidates are new items, five others are gone.
  v1::RecommendRequest next = MakeRequest(80, 50);
  for (int i = 0; i < 5; ++i) next.mutable_candidates(i)->set_item_id(900000 + i);
  next.mutable_candidates()->DeleteSubrange(20, 5);
  next.set_encoding(v1::RESPONSE_ENCODING_DIFF);
  next.set_previous_response_id(base.response_id());
  next.set_previous_response_hash(base.response_hash());
  v1::RecommendResponse resp = Call(ts, next);
  ASSERT_EQ(resp.ranking_case(), v1::RecommendResponse::kDiff);
  EXPECT_GT(resp.diff().inserted_ids_size(), 0);
  StatusOr<Ranking> got = DecodeRankingResponse(resp, false, base_ranking->ids);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ids, IdsOf(ReferenceRanking(next, false)));
}

TEST(RecommendTest, DiffFallsBackToCompactWithoutAMatchingBase) {
  InferenceServiceOptions options;
  options.response_store_entries = 2;
  TestServer ts({PoolSpec{}}, options);
  v1::RecommendRequest req = MakeRequest(60, 40);
  v1::RecommendResponse base = Call(ts, req);
  req.set_encoding(v1::RESPONSE_ENCODING_DIFF);

  req.set_previous_response_id("rsp-unknown");
  req.set_previous_response_hash(base.response_hash());
  EXPECT_EQ(Call(ts, req).ranking_case(), v1::RecommendResponse::kCompact);

  req.set_previous_response_id(base.response_id());
  req.set_previous_response_hash(base.response_hash() ^ 1);  // the client holds something else
  EXPECT_EQ(Call(ts, req).ranking_case(), v1::RecommendResponse::kCompact);

  req.set_previous_response_hash(base.response_hash());
  v1::RecommendResponse ok = Call(ts, req);
  EXPECT_EQ(ok.ranking_case(), v1::RecommendResponse::kDiff);

  // Three more responses evict the base from a two-entry store.
  req.set_encoding(v1::RESPONSE_ENCODING_PLAIN);
  for (int i = 0; i < 3; ++i) Call(ts, req);
  req.set_encoding(v1::RESPONSE_ENCODING_DIFF);
  v1::RecommendResponse evicted = Call(ts, req);
  EXPECT_EQ(evicted.ranking_case(), v1::RecommendResponse::kCompact);
  StatusOr<Ranking> r = DecodeRankingResponse(evicted, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids, IdsOf(ReferenceRanking(req, false)));
}

TEST(RecommendTest, TooManyCandidatesIsInvalid) {
  PoolSpec spec;
  spec.limits.max_candidates = 8;
  TestServer ts({spec});
  v1::RecommendResponse resp;
  auto ctx = Ctx();
  grpc::Status s = ts.stub().Recommend(ctx.get(), MakeRequest(9, 0), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "candidates: 9 exceeds the limit of 8 (limits.max_candidates)");
}

TEST(RecommendTest, UnknownModelIsNotFound) {
  TestServer ts;
  v1::RecommendRequest req = MakeRequest(3, 0);
  req.set_model("nope");
  v1::RecommendResponse resp;
  auto ctx = Ctx();
  EXPECT_EQ(ts.stub().Recommend(ctx.get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(FeedbackTest, EventsAreAttributedToTheModelAndClassOfTheNamedRequest) {
  PoolSpec a, b;
  a.name = "alpha";
  b.name = "beta";
  TestServer ts({a, b});
  auto send = [&](v1::FeedbackRequest req) {
    v1::FeedbackResponse resp;
    auto ctx = Ctx();
    grpc::Status s = ts.stub().Feedback(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  };
  // A realtime Recommend on alpha (server-assigned id) and a complex Generate on beta (caller's id).
  v1::RecommendRequest rec = MakeRequest(3, 0);
  rec.set_model("alpha");
  v1::RecommendResponse rec_resp;
  {
    auto ctx = Ctx();
    ASSERT_TRUE(ts.stub().Recommend(ctx.get(), rec, &rec_resp).ok());
  }
  ASSERT_FALSE(rec_resp.request_id().empty());
  v1::GenerateRequest gen;
  gen.set_model("beta");
  gen.set_prompt("Describe a mug.");
  gen.set_request_id("caller-gen-7");
  gen.mutable_sampling()->set_max_tokens(2);
  v1::GenerateResponse gen_resp;
  {
    auto ctx = Ctx();
    ASSERT_TRUE(ts.stub().Generate(ctx.get(), gen, &gen_resp).ok());
  }

  v1::FeedbackRequest req;
  req.set_request_id(rec_resp.request_id());
  req.set_impression(true);
  req.set_count(3);
  send(req);
  req.set_click(true);
  req.set_count(0);
  send(req);
  req.set_request_id("caller-gen-7");
  req.set_model("beta");
  req.set_conversion(true);
  send(req);
  req.set_quality_score(0.85);
  send(req);
  req.set_quality_score(0.0);
  send(req);
  req.set_request_id("never-served");
  req.set_click(true);
  send(req);  // OK, counted apart
  req.set_model("nope");
  v1::FeedbackResponse resp;
  auto ctx = Ctx();
  EXPECT_EQ(ts.stub().Feedback(ctx.get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  const BusinessStats stats = ts.server().business_stats();
  const ModelBusinessStats& alpha = stats.At("alpha", RequestClass::kRealtime);
  EXPECT_EQ(alpha.impressions, 3u);
  EXPECT_EQ(alpha.clicks, 1u);
  EXPECT_EQ(alpha.conversions, 0u);
  EXPECT_EQ(stats.At("alpha", RequestClass::kComplex).impressions, 0u);
  const ModelBusinessStats& beta = stats.At("beta", RequestClass::kComplex);
  EXPECT_EQ(beta.impressions, 0u);
  EXPECT_EQ(beta.clicks, 0u);
  EXPECT_EQ(beta.conversions, 1u);
  EXPECT_EQ(beta.quality_count, 2u);
  EXPECT_DOUBLE_EQ(beta.quality_sum, 0.85);
  EXPECT_EQ(beta.quality_buckets[8], 1u);  // (0.8, 0.9]
  EXPECT_EQ(beta.quality_buckets[0], 1u);  // [0, 0.1]
  EXPECT_EQ(stats.At("beta", RequestClass::kRealtime).quality_count, 0u);
  EXPECT_EQ(stats.unknown_request_feedback, 1u);
  EXPECT_THROW(stats.At("nope", RequestClass::kRealtime), std::out_of_range);
}

TEST(FeedbackTest, ExperimentVariantComesFromRequestMetadataAndIsLimitedToTheConfiguredValues) {
  InferenceServiceOptions options;
  options.experiment_variants = {"control", "treatment"};
  TestServer ts({PoolSpec{}}, options);
  auto recommend = [&](const char* variant) {
    v1::RecommendResponse resp;
    auto ctx = Ctx();
    if (variant != nullptr) ctx->AddMetadata("inferd-variant", variant);
    EXPECT_TRUE(ts.stub().Recommend(ctx.get(), MakeRequest(2, 0), &resp).ok());
    return resp.request_id();
  };
  const std::string treated = recommend("treatment");
  const std::string unlisted = recommend("bogus");
  const std::string plain = recommend(nullptr);
  for (const std::string& id : {treated, treated, unlisted, plain}) {
    v1::FeedbackRequest req;
    req.set_request_id(id);
    req.set_impression(true);
    v1::FeedbackResponse resp;
    auto ctx = Ctx();
    EXPECT_TRUE(ts.stub().Feedback(ctx.get(), req, &resp).ok());
  }
  const BusinessStats s = ts.server().business_stats();
  ASSERT_EQ(s.variants, (std::vector<std::string>{"control", "treatment"}));
  ASSERT_EQ(s.per_variant.size(), 3u);
  const size_t rt = static_cast<size_t>(RequestClass::kRealtime);
  EXPECT_EQ(s.per_variant[0][0][rt].impressions, 2u);  // "bogus" and no header: none
  EXPECT_EQ(s.per_variant[1][0][rt].impressions, 0u);  // control
  EXPECT_EQ(s.per_variant[2][0][rt].impressions, 2u);  // treatment
  EXPECT_EQ(s.At("default", RequestClass::kRealtime).impressions, 4u);
}

TEST(RpcStatsTest, CountsEveryRpcByPoolClassMethodAndCode) {
  PoolSpec a, b;
  a.name = "alpha";
  a.classes = {RequestClass::kRealtime};
  b.name = "beta";
  b.classes = {RequestClass::kComplex};
  TestServer ts({a, b});
  v1::RecommendResponse rr;
  for (int i = 0; i < 2; ++i) {
    auto ctx = Ctx();
    ASSERT_TRUE(ts.stub().Recommend(ctx.get(), MakeRequest(2, 0), &rr).ok());  // realtime -> alpha
  }
  v1::RecommendRequest unknown = MakeRequest(2, 0);
  unknown.set_model("nope");
  {
    auto ctx = Ctx();
    EXPECT_EQ(ts.stub().Recommend(ctx.get(), unknown, &rr).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  v1::GenerateRequest gen;
  gen.set_prompt("Hello");
  gen.mutable_sampling()->set_max_tokens(2);
  v1::GenerateResponse gr;
  {
    auto ctx = Ctx();
    ASSERT_TRUE(ts.stub().Generate(ctx.get(), gen, &gr).ok());  // complex -> beta
  }
  gen.mutable_sampling()->set_top_p(2.0f);
  {
    auto ctx = Ctx();
    EXPECT_EQ(ts.stub().Generate(ctx.get(), gen, &gr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::FeedbackResponse fr;
  {
    auto ctx = Ctx();
    EXPECT_EQ(ts.stub().Feedback(ctx.get(), v1::FeedbackRequest(), &fr).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  const RpcStats s = ts.server().rpc_stats();
  ASSERT_EQ(s.pool_names, (std::vector<std::string>{"alpha", "beta"}));
  const size_t rt = 0, cx = 1, none_cls = 2, none_pool = 2;
  const size_t rec = static_cast<size_t>(RpcMethod::kRecommend), gen_m = static_cast<size_t>(RpcMethod::kGenerate),
               fb = static_cast<size_t>(RpcMethod::kFeedback);
  EXPECT_EQ(s.rpcs[0][rt][rec][0], 2u);           // OK
  EXPECT_EQ(s.rpcs[none_pool][rt][rec][5], 1u);   // NOT_FOUND: classified, not routed
  EXPECT_EQ(s.rpcs[1][cx][gen_m][0], 1u);
  EXPECT_EQ(s.rpcs[1][cx][gen_m][3], 1u);         // INVALID_ARGUMENT after routing
  EXPECT_EQ(s.rpcs[none_pool][none_cls][fb][3], 1u);
  auto rule = [&](const std::string& name) {
    const auto it = std::find(s.rule_names.begin(), s.rule_names.end(), name);
    EXPECT_NE(it, s.rule_names.end()) << name;
    return static_cast<size_t>(it - s.rule_names.begin());
  };
  EXPECT_EQ(s.classified[0][rule("default:recommend")][rt], 2u);
  EXPECT_EQ(s.classified[1][rule("default:generate")][cx], 2u);
  uint64_t total = 0;
  for (const auto& p : s.rpcs)
    for (const auto& c : p)
      for (const auto& m : c)
        for (uint64_t n : m) total += n;
  EXPECT_EQ(total, 6u);
}

}  // namespace
}  // namespace inferd::server
