#include "metrics/engine_collector.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_util.h"

namespace inferd::metrics {
namespace {

using testing::Line;
using testing::Render;

FinishedRequestStats Recommend() {
  FinishedRequestStats f;
  f.cls = RequestClass::kRealtime;
  f.finish_reason = FinishReason::kScored;
  f.is_recommend = true;
  f.e2e_seconds = 0.07;
  f.queue_seconds = 0.003;
  f.prompt_tokens = 20;
  f.cached_prompt_tokens = 16;
  return f;
}

FinishedRequestStats Generate() {
  FinishedRequestStats f;
  f.cls = RequestClass::kComplex;
  f.finish_reason = FinishReason::kMaxTokens;
  f.e2e_seconds = 3.0;
  f.queue_seconds = 0.5;
  f.ttft_seconds = 0.7;
  f.inter_token_seconds = {0.02, 0.03, 0.2};
  f.prompt_tokens = 10;
  f.generated_tokens = 4;
  return f;
}

EngineStats PrefillStep() {
  EngineStats s;
  s.finished = {Recommend(), Generate()};
  s.running_requests = {1, 2};
  s.waiting_requests = {0, 5};
  s.kv_usage = 0.25;
  s.kv_num_blocks = 128;
  s.prefill_tokens = 30;
  s.decode_tokens = 2;
  s.batch_seqs = 3;
  s.step_seconds = 0.012;
  s.preemptions_total = 4;
  s.prefix_queried_tokens_total = 100;
  s.prefix_hit_tokens_total = 40;
  return s;
}

EngineStats DecodeStep() {
  EngineStats s;
  s.running_requests = {0, 2};
  s.waiting_requests = {1, 3};
  s.kv_usage = 0.5;
  s.kv_num_blocks = 128;
  s.decode_tokens = 3;
  s.batch_seqs = 3;
  s.step_seconds = 0.004;
  s.preemptions_total = 6;
  s.prefix_queried_tokens_total = 100;
  s.prefix_hit_tokens_total = 40;
  return s;
}

TEST(EngineCollectorTest, ExportsHandComputedValuesOfTwoSteps) {
  EngineCollector c;
  auto m = c.AddModel("m");
  m->set_recording(true);
  m->Record(PrefillStep());
  m->Record(DecodeStep());
  const std::string t = Render(c);
  const std::string rt = "{model=\"m\",class=\"realtime\"";
  const std::string cx = "{model=\"m\",class=\"complex\"";
  // 0.07 s: above the 0.06 edge, within 0.08.
  EXPECT_EQ(Line(t, "inferd_request_duration_seconds_bucket" + rt + ",le=\"0.06\"}"),
            "inferd_request_duration_seconds_bucket" + rt + ",le=\"0.06\"} 0");
  EXPECT_EQ(Line(t, "inferd_request_duration_seconds_bucket" + rt + ",le=\"0.08\"}"),
            "inferd_request_duration_seconds_bucket" + rt + ",le=\"0.08\"} 1");
  EXPECT_EQ(Line(t, "inferd_request_duration_seconds_count" + rt + "}"),
            "inferd_request_duration_seconds_count" + rt + "} 1");
  EXPECT_EQ(Line(t, "inferd_request_duration_seconds_bucket" + cx + ",le=\"2.5\"}"),
            "inferd_request_duration_seconds_bucket" + cx + ",le=\"2.5\"} 0");
  EXPECT_EQ(Line(t, "inferd_request_duration_seconds_bucket" + cx + ",le=\"5\"}"),
            "inferd_request_duration_seconds_bucket" + cx + ",le=\"5\"} 1");
  EXPECT_EQ(Line(t, "inferd_request_queue_seconds_bucket" + rt + ",le=\"0.0025\"}"),
            "inferd_request_queue_seconds_bucket" + rt + ",le=\"0.0025\"} 0");
  EXPECT_EQ(Line(t, "inferd_request_queue_seconds_bucket" + rt + ",le=\"0.005\"}"),
            "inferd_request_queue_seconds_bucket" + rt + ",le=\"0.005\"} 1");
  // A Recommend has no first token; the Generate's 0.7 s lands in (0.5, 0.75].
  EXPECT_EQ(Line(t, "inferd_time_to_first_token_seconds_count" + rt + "}"),
            "inferd_time_to_first_token_seconds_count" + rt + "} 0");
  EXPECT_EQ(Line(t, "inferd_time_to_first_token_seconds_bucket" + cx + ",le=\"0.5\"}"),
            "inferd_time_to_first_token_seconds_bucket" + cx + ",le=\"0.5\"} 0");
  EXPECT_EQ(Line(t, "inferd_time_to_first_token_seconds_bucket" + cx + ",le=\"0.75\"}"),
            "inferd_time_to_first_token_seconds_bucket" + cx + ",le=\"0.75\"} 1");
  // Inter-token gaps 0.02, 0.03, 0.2: an edge is inclusive.
  EXPECT_EQ(Line(t, "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"0.02\"}"),
            "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"0.02\"} 1");
  EXPECT_EQ(Line(t, "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"0.03\"}"),
            "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"0.03\"} 2");
  EXPECT_EQ(Line(t, "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"0.15\"}"),
            "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"0.15\"} 2");
  EXPECT_EQ(Line(t, "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"+Inf\"}"),
            "inferd_inter_token_latency_seconds_bucket" + cx + ",le=\"+Inf\"} 3");
  EXPECT_EQ(Line(t, "inferd_inter_token_latency_seconds_sum" + cx + "}"),
            "inferd_inter_token_latency_seconds_sum" + cx + "} 0.25");

  EXPECT_EQ(Line(t, "inferd_requests_total" + rt + ",outcome=\"scored\"}"),
            "inferd_requests_total" + rt + ",outcome=\"scored\"} 1");
  EXPECT_EQ(Line(t, "inferd_requests_total" + cx + ",outcome=\"max_tokens\"}"),
            "inferd_requests_total" + cx + ",outcome=\"max_tokens\"} 1");
  EXPECT_EQ(Line(t, "inferd_requests_total" + cx + ",outcome=\"error\"}"),
            "inferd_requests_total" + cx + ",outcome=\"error\"} 0");
  EXPECT_EQ(Line(t, "inferd_prompt_tokens_total" + rt + "}"), "inferd_prompt_tokens_total" + rt + "} 20");
  EXPECT_EQ(Line(t, "inferd_cached_prompt_tokens_total" + rt + "}"), "inferd_cached_prompt_tokens_total" + rt + "} 16");
  EXPECT_EQ(Line(t, "inferd_generated_tokens_total" + cx + "}"), "inferd_generated_tokens_total" + cx + "} 4");

  // Gauges: the latest step.
  EXPECT_EQ(Line(t, "inferd_running_requests" + cx + "}"), "inferd_running_requests" + cx + "} 2");
  EXPECT_EQ(Line(t, "inferd_waiting_requests" + rt + "}"), "inferd_waiting_requests" + rt + "} 1");
  EXPECT_EQ(Line(t, "inferd_gateway_queued_requests{model=\"m\"}"), "inferd_gateway_queued_requests{model=\"m\"} 4");
  EXPECT_EQ(Line(t, "inferd_gateway_running_requests{model=\"m\"}"), "inferd_gateway_running_requests{model=\"m\"} 2");
  EXPECT_EQ(Line(t, "inferd_kv_cache_usage_ratio{model=\"m\"}"), "inferd_kv_cache_usage_ratio{model=\"m\"} 0.5");
  EXPECT_EQ(Line(t, "inferd_preemptions_total{model=\"m\"}"), "inferd_preemptions_total{model=\"m\"} 6");
  EXPECT_EQ(Line(t, "inferd_prefix_cache_hit_tokens_total{model=\"m\"}"),
            "inferd_prefix_cache_hit_tokens_total{model=\"m\"} 40");
  EXPECT_EQ(Line(t, "inferd_engine_steps_total{model=\"m\"}"), "inferd_engine_steps_total{model=\"m\"} 2");
  EXPECT_EQ(Line(t, "inferd_engine_busy_seconds_total{model=\"m\"}"),
            "inferd_engine_busy_seconds_total{model=\"m\"} 0.016");

  // One step of each kind: 0.012 s in (0.01, 0.015], 0.004 s in (0.0025, 0.005].
  EXPECT_EQ(Line(t, "inferd_prefill_step_seconds_bucket{model=\"m\",le=\"0.01\"}"),
            "inferd_prefill_step_seconds_bucket{model=\"m\",le=\"0.01\"} 0");
  EXPECT_EQ(Line(t, "inferd_prefill_step_seconds_bucket{model=\"m\",le=\"0.015\"}"),
            "inferd_prefill_step_seconds_bucket{model=\"m\",le=\"0.015\"} 1");
  EXPECT_EQ(Line(t, "inferd_decode_step_seconds_bucket{model=\"m\",le=\"0.0025\"}"),
            "inferd_decode_step_seconds_bucket{model=\"m\",le=\"0.0025\"} 0");
  EXPECT_EQ(Line(t, "inferd_decode_step_seconds_bucket{model=\"m\",le=\"0.005\"}"),
            "inferd_decode_step_seconds_bucket{model=\"m\",le=\"0.005\"} 1");
  // Batch sizes 3 and 3; tokens per step 32 and 3.
  EXPECT_EQ(Line(t, "inferd_batch_size_bucket{model=\"m\",le=\"2\"}"),
            "inferd_batch_size_bucket{model=\"m\",le=\"2\"} 0");
  EXPECT_EQ(Line(t, "inferd_batch_size_bucket{model=\"m\",le=\"4\"}"),
            "inferd_batch_size_bucket{model=\"m\",le=\"4\"} 2");
  EXPECT_EQ(Line(t, "inferd_step_tokens_bucket{model=\"m\",le=\"4\"}"),
            "inferd_step_tokens_bucket{model=\"m\",le=\"4\"} 1");
  EXPECT_EQ(Line(t, "inferd_step_tokens_bucket{model=\"m\",le=\"16\"}"),
            "inferd_step_tokens_bucket{model=\"m\",le=\"16\"} 1");
  EXPECT_EQ(Line(t, "inferd_step_tokens_bucket{model=\"m\",le=\"32\"}"),
            "inferd_step_tokens_bucket{model=\"m\",le=\"32\"} 2");

  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out << t;
}

TEST(EngineCollectorTest, ExportsRealtimeProtectionSeries) {
  EngineCollector c;
  auto m = c.AddModel("m");
  m->set_recording(true);
  EngineStats a = PrefillStep();  // 0.5 s measured, 0.25 s predicted of which 0.0625 s complex
  a.step_seconds = 0.5;
  a.predicted_seconds = 0.25;
  a.complex_predicted_seconds = 0.0625;
  a.realtime_active = true;
  a.complex_capped = true;
  a.cost_model_ready = true;
  a.cost_model_median_error = 0.125;
  a.realtime_refused_total = 3;
  a.realtime_late_total = 1;
  EngineStats b = DecodeStep();  // 0.25 s measured, 0.125 s predicted, no realtime work
  b.step_seconds = 0.25;
  b.predicted_seconds = 0.125;
  b.cost_model_ready = true;
  b.cost_model_median_error = 0.25;
  b.realtime_refused_total = 5;
  b.realtime_predicted_late_total = 2;
  b.realtime_late_total = 1;
  m->Record(a);
  m->Record(b);
  const std::string t = Render(c);
  auto line = [&](const std::string& name) { return Line(t, name + "{model=\"m\"}"); };
  EXPECT_EQ(line("inferd_realtime_refused_total"), "inferd_realtime_refused_total{model=\"m\"} 5");
  EXPECT_EQ(line("inferd_realtime_predicted_late_total"), "inferd_realtime_predicted_late_total{model=\"m\"} 2");
  EXPECT_EQ(line("inferd_realtime_late_total"), "inferd_realtime_late_total{model=\"m\"} 1");
  EXPECT_EQ(line("inferd_step_cost_predicted_seconds_total"),
            "inferd_step_cost_predicted_seconds_total{model=\"m\"} 0.375");
  EXPECT_EQ(line("inferd_step_cost_observed_seconds_total"),
            "inferd_step_cost_observed_seconds_total{model=\"m\"} 0.75");
  EXPECT_EQ(line("inferd_step_cost_median_error_ratio"), "inferd_step_cost_median_error_ratio{model=\"m\"} 0.25");
  EXPECT_EQ(line("inferd_step_cost_model_ready"), "inferd_step_cost_model_ready{model=\"m\"} 1");
  EXPECT_EQ(line("inferd_realtime_active_seconds_total"), "inferd_realtime_active_seconds_total{model=\"m\"} 0.5");
  // 0.5 s x 0.0625 / 0.25.
  EXPECT_EQ(line("inferd_realtime_active_complex_seconds_total"),
            "inferd_realtime_active_complex_seconds_total{model=\"m\"} 0.125");
  EXPECT_EQ(line("inferd_complex_held_back_steps_total"), "inferd_complex_held_back_steps_total{model=\"m\"} 1");
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out;
}

TEST(EngineCollectorTest, IgnoresStatsUntilRecordingStarts) {
  EngineCollector c;
  auto m = c.AddModel("m");
  m->Record(PrefillStep());
  m->set_recording(true);
  m->Record(DecodeStep());
  const std::string t = Render(c);
  EXPECT_EQ(Line(t, "inferd_requests_total{model=\"m\",class=\"complex\",outcome=\"max_tokens\"}"),
            "inferd_requests_total{model=\"m\",class=\"complex\",outcome=\"max_tokens\"} 0");
  EXPECT_EQ(Line(t, "inferd_engine_steps_total{model=\"m\"}"), "inferd_engine_steps_total{model=\"m\"} 1");
}

TEST(EngineCollectorTest, SeveralModelsShareOneFamilyPerName) {
  EngineCollector c;
  for (const char* name : {"a", "b", "c"}) c.AddModel(name)->set_recording(true);
  const std::string t = Render(c);
  size_t families = 0;
  for (size_t p = t.find("# TYPE inferd_requests_total "); p != std::string::npos;
       p = t.find("# TYPE inferd_requests_total ", p + 1)) {
    ++families;
  }
  EXPECT_EQ(families, 1u);
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_NE(t.find(std::string("inferd_kv_cache_usage_ratio{model=\"") + name + "\"} 0"), std::string::npos) << t;
  }
  std::string out;
  EXPECT_EQ(testing::PromtoolCheck(t, &out), 0) << out;
}

TEST(AtomicHistogramTest, TwoThreadsLoseNoObservation) {
  AtomicHistogram h(kLatencyBuckets);
  auto work = [&] {
    for (int i = 0; i < 100000; ++i) h.Observe(0.05);
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  const auto r = h.Read();
  EXPECT_EQ(r.sample_count, 200000u);
  EXPECT_NEAR(r.sample_sum, 10000.0, 1e-6);
  EXPECT_EQ(r.bucket[5].cumulative_count, 0u);       // le 0.04
  EXPECT_EQ(r.bucket[6].cumulative_count, 200000u);  // le 0.06
}

TEST(AtomicHistogramTest, ObserveAllMatchesOneObserveEach) {
  const std::vector<double> values = {0.0005, 0.001, 0.02, 0.02, 0.7, 5.0, 1000.0};
  AtomicHistogram one(kStepBuckets), all(kStepBuckets);
  for (double v : values) one.Observe(v);
  all.ObserveAll(values);
  const auto a = one.Read(), b = all.Read();
  ASSERT_EQ(a.bucket.size(), b.bucket.size());
  for (size_t i = 0; i < a.bucket.size(); ++i)
    EXPECT_EQ(a.bucket[i].cumulative_count, b.bucket[i].cumulative_count) << i;
  EXPECT_EQ(b.sample_count, 7u);
  EXPECT_EQ(b.bucket.front().cumulative_count, 1u);      // le 0.0005
  EXPECT_EQ(b.bucket.rbegin()[1].cumulative_count, 6u);  // le 5: all but 1000
  EXPECT_DOUBLE_EQ(b.sample_sum, 1005.7415);
}

}  // namespace
}  // namespace inferd::metrics
