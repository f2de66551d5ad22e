// Step-cost model: predicts an engine step's wall time from what the step contains, fitted online from the
// engine's own step timings. Linear in five features (below) with non-negative coefficients, fitted by
// exponentially weighted least squares (half-life about 140 steps) with a small ridge term, so it follows
// load changes (other work on the cores, a larger batch) without forgetting the step shapes it rarely sees.
// Single-threaded: owned by the Scheduler. Coefficients() is a plain copy other threads may hold.
#pragma once

#include <array>
#include <cstdint>

#include "inferd/batch.h"

namespace inferd::scheduler {

// What a step (or one chunk of it) costs, in units the model is linear in.
struct StepFeatures {
  double steps = 0;           // 1 for a whole step: the fixed cost of a forward pass (weights read once)
  double prefill_tokens = 0;  // tokens fed by prefill chunks
  double decode_rows = 0;     // one-token decode chunks
  double logit_rows = 0;      // rows that need logits: sampled rows and Recommend score positions
  double attention = 0;       // sum over fed tokens of the positions each attends to, in thousands

  StepFeatures& operator+=(const StepFeatures& o);
  friend StepFeatures operator+(StepFeatures a, const StepFeatures& b) { return a += b; }
};

// Features of one chunk (steps = 0): `decode` chunks are one generated token.
StepFeatures ChunkFeatures(const SequenceChunk& chunk, bool decode);

struct StepCostCoefficients {
  static constexpr int kNum = 5;
  std::array<double, kNum> seconds{};  // per unit of steps, prefill_tokens, decode_rows, logit_rows, attention
  bool ready = false;                  // enough observed steps, and recent predictions close enough, to use
  double median_rel_error = 1.0;       // |predicted - actual| / actual over the last kErrorWindow steps

  double Predict(const StepFeatures& f) const;  // seconds; 0 when not ready
};

class StepCostModel {
 public:
  // Predictions are used once this many steps were observed and the median relative error of the last
  // kErrorWindow predictions (each made before its step was observed) is at most kMaxMedianError: a model
  // fitted on a few warm-up shapes, or on a machine whose speed just changed, orders work but refuses none.
  static constexpr int kMinObservations = 24;
  static constexpr int kErrorWindow = 32;
  static constexpr double kMaxMedianError = 0.35;

  void Observe(const StepFeatures& features, double seconds);
  double Predict(const StepFeatures& features) const { return coef_.Predict(features); }
  bool ready() const { return coef_.ready; }
  const StepCostCoefficients& coefficients() const { return coef_; }
  int64_t observations() const { return observations_; }

 private:
  void Solve();

  // Weighted normal equations in scaled features (each divided by kScale so the system is well conditioned).
  std::array<std::array<double, StepCostCoefficients::kNum>, StepCostCoefficients::kNum> xtx_{};
  std::array<double, StepCostCoefficients::kNum> xty_{};
  StepCostCoefficients coef_;
  int64_t observations_ = 0;
  std::array<double, kErrorWindow> errors_{};  // ring of recent relative errors
  int64_t num_errors_ = 0;
};

}  // namespace inferd::scheduler
