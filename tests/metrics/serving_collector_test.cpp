#include "metrics/serving_collector.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace inferd::metrics {
namespace {

using testing::Line;
using testing::Render;

RpcStats Rpcs() {
  RpcStats r;
  r.pool_names = {"a"};
  r.rpcs.resize(2);
  r.rpcs[0][0][static_cast<size_t>(RpcMethod::kRecommend)][0] = 7;  // a, realtime, OK
  r.rpcs[0][1][static_cast<size_t>(RpcMethod::kGenerate)][8] = 2;   // a, complex, RESOURCE_EXHAUSTED
  r.rpcs[1][2][static_cast<size_t>(RpcMethod::kFeedback)][3] = 1;   // none, none, INVALID_ARGUMENT
  r.rule_names = {"tiny_generate", "class_hint"};
  r.classified.assign(1, std::vector<std::array<uint64_t, kNumRequestClasses>>(2));
  r.classified[0][0][0] = 5;
  return r;
}

BusinessStats Business() {
  BusinessStats b;
  b.pool_names = {"a"};
  b.per_class.resize(1);
  ModelBusinessStats& rt = b.per_class[0][0];
  rt.impressions = 100;
  rt.clicks = 9;
  rt.conversions = 2;
  ModelBusinessStats& cx = b.per_class[0][1];
  cx.quality_count = 3;
  cx.quality_sum = 0.05 + 0.85 + 0.9;
  cx.quality_buckets[0] = 1;
  cx.quality_buckets[8] = 2;
  b.unknown_request_feedback = 4;
  return b;
}

TEST(ServingCollectorTest, ExportsRpcsClassesAndBusinessCounters) {
  ServingCollector c(Rpcs, Business);
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_grpc_requests_total{model=\"a\",class=\"realtime\",method=\"Recommend\",code=\"OK\"}"),
            "inferd_grpc_requests_total{model=\"a\",class=\"realtime\",method=\"Recommend\",code=\"OK\"} 7");
  EXPECT_EQ(
      Line(t,
           "inferd_grpc_requests_total{model=\"a\",class=\"complex\",method=\"Generate\",code=\"RESOURCE_EXHAUSTED\"}"),
      "inferd_grpc_requests_total{model=\"a\",class=\"complex\",method=\"Generate\",code=\"RESOURCE_EXHAUSTED\"} 2");
  EXPECT_EQ(
      Line(t,
           "inferd_grpc_requests_total{model=\"none\",class=\"none\",method=\"Feedback\",code=\"INVALID_ARGUMENT\"}"),
      "inferd_grpc_requests_total{model=\"none\",class=\"none\",method=\"Feedback\",code=\"INVALID_ARGUMENT\"} 1");
  // OK is exported at zero for every routed (pool, class, method); other codes only once seen.
  EXPECT_EQ(Line(t, "inferd_grpc_requests_total{model=\"a\",class=\"complex\",method=\"Feedback\",code=\"OK\"}"),
            "inferd_grpc_requests_total{model=\"a\",class=\"complex\",method=\"Feedback\",code=\"OK\"} 0");
  EXPECT_EQ(t.find("code=\"DATA_LOSS\""), std::string::npos);
  EXPECT_EQ(Line(t, "inferd_classifications_total{model=\"a\",rule=\"tiny_generate\",class=\"realtime\"}"),
            "inferd_classifications_total{model=\"a\",rule=\"tiny_generate\",class=\"realtime\"} 5");
  EXPECT_EQ(Line(t, "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\"}"),
            "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\"} 100");
  EXPECT_EQ(Line(t, "inferd_recommendation_clicks_total{model=\"a\",class=\"realtime\"}"),
            "inferd_recommendation_clicks_total{model=\"a\",class=\"realtime\"} 9");
  EXPECT_EQ(Line(t, "inferd_recommendation_conversions_total{model=\"a\",class=\"realtime\"}"),
            "inferd_recommendation_conversions_total{model=\"a\",class=\"realtime\"} 2");
  // Quality scores 0.05, 0.85, 0.9: cumulative buckets.
  EXPECT_EQ(Line(t, "inferd_quality_score_bucket{model=\"a\",class=\"complex\",le=\"0.1\"}"),
            "inferd_quality_score_bucket{model=\"a\",class=\"complex\",le=\"0.1\"} 1");
  EXPECT_EQ(Line(t, "inferd_quality_score_bucket{model=\"a\",class=\"complex\",le=\"0.8\"}"),
            "inferd_quality_score_bucket{model=\"a\",class=\"complex\",le=\"0.8\"} 1");
  EXPECT_EQ(Line(t, "inferd_quality_score_bucket{model=\"a\",class=\"complex\",le=\"0.9\"}"),
            "inferd_quality_score_bucket{model=\"a\",class=\"complex\",le=\"0.9\"} 3");
  EXPECT_EQ(Line(t, "inferd_quality_score_count{model=\"a\",class=\"complex\"}"),
            "inferd_quality_score_count{model=\"a\",class=\"complex\"} 3");
  EXPECT_EQ(Line(t, "inferd_feedback_unknown_request_total"), "inferd_feedback_unknown_request_total 4");
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

TEST(ServingCollectorTest, ConfiguredVariantsAddAVariantLabelToBusinessSeries) {
  auto business = [] {
    BusinessStats b = Business();
    b.variants = {"treatment"};
    b.per_variant.assign(2, b.per_class);
    b.per_variant[0][0][0].impressions = 60;  // none
    b.per_variant[1][0][0].impressions = 40;  // treatment
    return b;
  };
  ServingCollector c(Rpcs, business);
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\",variant=\"none\"}"),
            "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\",variant=\"none\"} 60");
  EXPECT_EQ(Line(t, "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\",variant=\"treatment\"}"),
            "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\",variant=\"treatment\"} 40");
  EXPECT_EQ(Line(t, "inferd_recommendation_impressions_total{model=\"a\",class=\"realtime\"}"), "");
  EXPECT_NE(t.find("inferd_quality_score_count{model=\"a\",class=\"complex\",variant=\"treatment\"} 3"),
            std::string::npos);
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out;
}

}  // namespace
}  // namespace inferd::metrics
