// Realtime protection against a synthetic step cost: the cost model's fit, the complex allowance under the
// realtime step budget, complex work's minimum share, the per-request share inside the realtime class, and
// deadline-aware admission. Step times come from SyntheticCost (not from the code under test).
#include <gtest/gtest.h>

#include <random>

#include "scheduler/deadline_admission.h"
#include "scheduler/step_cost_model.h"
#include "sim.h"

namespace inferd::scheduler {
namespace {

using testing::Prompt;
using testing::Sim;

// The "hardware": 2 ms per step, 20 us per prefill token, 400 us per decode row, 150 us per logit row,
// 2 us per 1000 attended positions.
constexpr double kStep = 2e-3, kTok = 20e-6, kRow = 400e-6, kLogit = 150e-6, kAttn = 2e-6;
double SyntheticCost(const StepFeatures& f) {
  return kStep * f.steps + kTok * f.prefill_tokens + kRow * f.decode_rows + kLogit * f.logit_rows + kAttn * f.attention;
}

TEST(StepCostModel, RecoversTheCoefficientsOfALinearCost) {
  StepCostModel m;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> tokens(0, 512), rows(0, 32);
  for (int i = 0; i < 300; ++i) {
    StepFeatures f;
    f.steps = 1;
    f.prefill_tokens = tokens(rng);
    f.decode_rows = rows(rng);
    f.logit_rows = f.decode_rows + rows(rng) / 4;
    f.attention = (f.prefill_tokens * tokens(rng) + f.decode_rows * tokens(rng) * 4) / 1000.0;
    EXPECT_EQ(m.ready(), i >= StepCostModel::kMinObservations);
    m.Observe(f, SyntheticCost(f));
  }
  const auto& c = m.coefficients().seconds;
  EXPECT_NEAR(c[0], kStep, kStep * 0.02);
  EXPECT_NEAR(c[1], kTok, kTok * 0.02);
  EXPECT_NEAR(c[2], kRow, kRow * 0.02);
  EXPECT_NEAR(c[3], kLogit, kLogit * 0.02);
  EXPECT_NEAR(c[4], kAttn, kAttn * 0.05);
}

// Steps whose time the features do not explain (here: 0.4x or 1.6x at random) never make the model ready, so it can
// order work but never refuse any.
TEST(StepCostModel, InaccurateModelIsNeverReady) {
  StepCostModel m;
  std::mt19937 rng(2);
  std::bernoulli_distribution slow(0.5);
  std::uniform_int_distribution<int> rows(1, 32);
  for (int i = 0; i < 300; ++i) {
    StepFeatures f;
    f.steps = 1;
    f.decode_rows = f.logit_rows = rows(rng);
    m.Observe(f, SyntheticCost(f) * (slow(rng) ? 1.6 : 0.4));
    EXPECT_FALSE(m.ready()) << "step " << i << " median error " << m.coefficients().median_rel_error;
  }
  EXPECT_GT(m.coefficients().median_rel_error, StepCostModel::kMaxMedianError);
}

TEST(StepCostModel, CoefficientsStayNonNegativeOnCollinearSteps) {
  StepCostModel m;
  for (int i = 0; i < 50; ++i) {
    StepFeatures f;
    f.steps = 1;
    f.decode_rows = 8;
    f.logit_rows = 8;  // always equal to decode_rows: only their sum is identifiable
    m.Observe(f, 0.005 + (i % 2) * 1e-4);
  }
  for (double c : m.coefficients().seconds) EXPECT_GE(c, 0.0);
  StepFeatures f;
  f.steps = 1;
  f.decode_rows = f.logit_rows = 8;
  EXPECT_NEAR(m.Predict(f), 0.00505, 0.0002);
}

// A Sim whose cost model learns SyntheticCost from the steps it runs.
struct TimedSim : Sim {
  using Sim::Sim;
  SchedulerOutput TimedStep() {
    SchedulerOutput out = Step();
    if (!out.empty()) sched.ObserveStep(out, SyntheticCost(out.features));
    return out;
  }
  double ComplexSeconds(const SchedulerOutput& out) const { return out.complex_predicted_seconds; }
};

SchedulerOptions ProtectedOptions() {
  SchedulerOptions o;
  o.max_num_batched_tokens = 512;
  o.max_prefill_chunk_tokens = 256;
  o.max_running = 64;
  o.realtime_step_budget = std::chrono::microseconds(8000);
  o.complex_min_share = 0.2;
  o.complex_max_wait = std::chrono::milliseconds(1000000);
  return o;
}

// Twenty complex decodes cost 2 + 20 x 0.55 = 13 ms a step; with realtime work present the budget (8 ms)
// holds them back, while every step still gives complex work at least 20% of its predicted time.
TEST(RealtimeProtection, StepBudgetHoldsWhileRealtimeWaitsAndComplexKeepsItsShare) {
  const SchedulerOptions o = ProtectedOptions();
  TimedSim sim(o, 4096);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(sim.Add(100 + i, RequestClass::kComplex, Prompt(20, i), 400).ok());
  for (int i = 0; i < 30; ++i) sim.TimedStep();  // prefills done, model fitted, all 20 decoding
  ASSERT_TRUE(sim.sched.cost_model().ready());
  SchedulerOutput alone = sim.TimedStep();
  EXPECT_EQ(alone.num_decode_tokens, 20);
  EXPECT_GT(SyntheticCost(alone.features), 0.012);

  // A steady realtime stream: a new small Generate every step.
  int capped_steps = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(sim.Add(1 + i, RequestClass::kRealtime, Prompt(24, 50 + i), 2).ok());
    SchedulerOutput out = sim.TimedStep();
    ASSERT_TRUE(out.realtime_active);
    const double actual = SyntheticCost(out.features);
    const double complex_s = sim.ComplexSeconds(out);
    const double rt_s = out.predicted_seconds - complex_s;
    // The budget holds unless complex work's minimum share lifts the step above it.
    EXPECT_LE(actual, std::max(0.008, rt_s / (1 - o.complex_min_share)) * 1.05 + kRow) << "step " << i;
    // Complex work keeps at least its minimum share (one decode row of rounding).
    EXPECT_GE(complex_s + kRow, o.complex_min_share * out.predicted_seconds) << "step " << i;
    EXPECT_GT(out.num_decode_tokens, 0);
    capped_steps += out.complex_capped;
  }
  EXPECT_GT(capped_steps, 30);
  // With realtime gone, complex decodes run unbounded again.
  for (int i = 0; i < 5; ++i) sim.TimedStep();
  EXPECT_EQ(sim.TimedStep().num_decode_tokens, 20);
}

// Realtime work that alone exceeds the budget: complex work (40 decodes, 24 ms of demand a step) still gets
// its minimum share of every step's time.
TEST(RealtimeProtection, ComplexMinimumShareUnderRealtimeSaturation) {
  const SchedulerOptions o = ProtectedOptions();
  TimedSim sim(o, 8192);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(sim.Add(100 + i, RequestClass::kComplex, Prompt(20, i), 1000).ok());
  for (int i = 0; i < 30; ++i) sim.TimedStep();
  ASSERT_TRUE(sim.sched.cost_model().ready());
  int64_t complex_tokens_before = 0;
  for (auto& [id, oc] : sim.outcomes) complex_tokens_before += static_cast<int64_t>(oc.tokens.size());
  double complex_total = 0, step_total = 0;
  for (int i = 0; i < 30; ++i) {
    // Each step: two Recommends with 12 candidates of 8 tokens: far more than 8 ms of realtime work.
    for (int r = 0; r < 2; ++r) {
      RequestSpec spec;
      spec.id = 1 + i * 2 + r;
      spec.cls = RequestClass::kRealtime;
      spec.prompt = Prompt(64, 200 + i * 2 + r);
      for (int c = 0; c < 12; ++c) spec.candidates.push_back(Prompt(8, 900 + c));
      spec.arrival = sim.now;
      ASSERT_TRUE(sim.sched.AddRequest(std::move(spec)).ok());
    }
    SchedulerOutput out = sim.TimedStep();
    complex_total += out.complex_predicted_seconds;
    step_total += out.predicted_seconds;
  }
  EXPECT_GE(complex_total / step_total, o.complex_min_share * 0.9);
  int64_t complex_tokens_after = 0;
  for (auto& [id, oc] : sim.outcomes) {
    if (id >= 100) complex_tokens_after += static_cast<int64_t>(oc.tokens.size());
  }
  EXPECT_GT(complex_tokens_after - complex_tokens_before, 30 * 5);  // complex decoding kept going
}

// One Recommend with a 12000-token candidate and small ones arriving behind it: each small one starts in the
// step after it arrives, and while they wait the large one takes at most its share of a step's tokens.
TEST(RealtimeProtection, LargeRealtimeRequestIsInterleaved) {
  SchedulerOptions o = ProtectedOptions();
  o.realtime_max_request_share = 0.25;  // 128 of 512 tokens, below the 256-token prefill chunk
  o.max_model_len = 16384;
  Sim sim(o, 4096);
  RequestSpec big;
  big.id = 1;
  big.cls = RequestClass::kRealtime;
  big.prompt = Prompt(40, 1);
  big.candidates.push_back(Prompt(12000, 2));
  big.arrival = sim.now;
  ASSERT_TRUE(sim.sched.AddRequest(std::move(big)).ok());
  for (int i = 0; i < 3; ++i) sim.Step();
  EXPECT_EQ(sim.Step().num_prefill_tokens, 256);  // alone: a full prefill chunk per step
  for (int k = 0; k < 5; ++k) {
    RequestSpec small;
    small.id = 10 + k;
    small.cls = RequestClass::kRealtime;
    small.prompt = Prompt(40, 20 + k);
    for (int c = 0; c < 4; ++c) small.candidates.push_back(Prompt(6, 30 + c));
    small.arrival = sim.now;
    ASSERT_TRUE(sim.sched.AddRequest(std::move(small)).ok());
    SchedulerOutput out = sim.Step();
    EXPECT_TRUE(sim.outcomes[10 + k].started) << "small Recommend " << k << " waited behind the large one";
    int32_t big_tokens = 0;
    for (const auto& c : out.batch.chunks) {
      if (c.tokens.size() > 100) big_tokens += static_cast<int32_t>(c.tokens.size());
    }
    EXPECT_LE(big_tokens, o.max_num_batched_tokens / 4) << "step after small " << k;
    for (int i = 0; i < 4 && sim.outcomes[10 + k].reason == FinishReason::kNone; ++i) sim.Step();
    EXPECT_EQ(sim.outcomes[10 + k].reason, FinishReason::kScored) << k;
  }
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kNone);  // the large one is still running
  sim.RunUntilIdle();
  EXPECT_EQ(sim.outcomes[1].reason, FinishReason::kScored);
}

// Work leaves budget unused only while another realtime request can use it.
TEST(RealtimeProtection, LoneLargeRequestUsesTheWholeBudget) {
  SchedulerOptions o = ProtectedOptions();
  Sim sim(o, 4096);
  RequestSpec big;
  big.id = 1;
  big.cls = RequestClass::kRealtime;
  big.prompt = Prompt(40, 1);
  big.candidates.push_back(Prompt(3000, 2));
  big.candidates.push_back(Prompt(3000, 3));
  big.arrival = sim.now;
  ASSERT_TRUE(sim.sched.AddRequest(std::move(big)).ok());
  sim.Step();  // context
  SchedulerOutput out = sim.Step();
  EXPECT_EQ(out.num_prefill_tokens, o.max_num_batched_tokens);
}

StepCostCoefficients Synthetic() {
  StepCostCoefficients c;
  c.seconds = {kStep, kTok, kRow, kLogit, kAttn};
  c.ready = true;
  return c;
}

TEST(DeadlineAdmission, EstimatesRecommendAndGenerateWork) {
  SchedulerOptions o = ProtectedOptions();
  RequestSpec rec;
  rec.prompt = Prompt(64, 1);  // 3 full blocks of 16 shared after the context prefill (cached = 48)
  for (int c = 0; c < 10; ++c) rec.candidates.push_back(Prompt(8, c));
  const RealtimeWork w = EstimateRealtimeWork(rec, Synthetic(), o, 16);
  // Context: 64 tokens, attention 64 x 65 / 2. Candidates: 10 x (64 + 8 - 48 = 24) tokens from position 48,
  // 8 logit rows each.
  const double ctx = kTok * 64 + kAttn * (64.0 * 65 / 2) / 1000;
  const double cand = 10 * (kTok * 24 + kLogit * 8 + kAttn * (24.0 * 48 + 24.0 * 25 / 2) / 1000);
  EXPECT_NEAR(w.marginal_seconds, ctx + cand, 1e-9);
  EXPECT_EQ(w.steps, 2);  // one context chunk, 240 candidate tokens in one 512-token step
  EXPECT_NEAR(w.seconds, w.marginal_seconds + 2 * kStep, 1e-9);

  RequestSpec gen;
  gen.prompt = Prompt(30, 2);
  gen.max_tokens = 5;
  const RealtimeWork g = EstimateRealtimeWork(gen, Synthetic(), o, 16);
  EXPECT_EQ(g.steps, 1 + 4);
  const double prefill = kTok * 30 + kLogit + kAttn * (30.0 * 31 / 2) / 1000;
  const double decodes = 4 * (kRow + kLogit) + kAttn * (4.0 * 30 + 4.0 * 5 / 2) / 1000;
  EXPECT_NEAR(g.marginal_seconds, prefill + decodes, 1e-9);
}

TEST(DeadlineAdmission, RefusesExactlyWhatCannotMakeItsDeadline) {
  const SchedulerOptions o = ProtectedOptions();
  AdmissionInput in;
  in.own.seconds = 0.010;
  in.own.steps = 2;
  in.step_seconds = 0.004;
  in.ahead_marginal_seconds = 0.030;
  in.seconds_to_deadline = 0.040;
  in.complex_present = false;
  EXPECT_NEAR(PredictRealtimeLatency(in, o).predicted_seconds, 0.040, 1e-12);
  EXPECT_TRUE(PredictRealtimeLatency(in, o).meets);
  in.seconds_to_deadline = 0.0399;
  EXPECT_FALSE(PredictRealtimeLatency(in, o).meets);
  // Complex work present: realtime gets 80% of the engine, so 40 ms of work takes 50 ms.
  in.complex_present = true;
  in.seconds_to_deadline = 0.050;
  EXPECT_NEAR(PredictRealtimeLatency(in, o).predicted_seconds, 0.050, 1e-12);
  EXPECT_TRUE(PredictRealtimeLatency(in, o).meets);
  in.seconds_to_deadline = 0.0499;
  EXPECT_FALSE(PredictRealtimeLatency(in, o).meets);
  // A request that needs many steps is bound by them, whatever the queue.
  in.ahead_marginal_seconds = 0;
  in.own.steps = 20;
  in.seconds_to_deadline = 0.079;
  EXPECT_NEAR(PredictRealtimeLatency(in, o).predicted_seconds, 0.080, 1e-12);
  EXPECT_FALSE(PredictRealtimeLatency(in, o).meets);
}

}  // namespace
}  // namespace inferd::scheduler
