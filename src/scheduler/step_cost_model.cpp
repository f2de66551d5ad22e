#include "scheduler/step_cost_model.h"

#include <algorithm>
#include <cmath>

namespace inferd::scheduler {
namespace {

constexpr int kN = StepCostCoefficients::kNum;
constexpr double kDecay = 0.995;  // weight of the past per observed step
constexpr double kRidge = 1e-6;   // relative to the weighted count of observations
// Typical size of each feature in one step: keeps the normal equations well conditioned.
constexpr std::array<double, kN> kScale = {1.0, 256.0, 16.0, 16.0, 64.0};

std::array<double, kN> Vector(const StepFeatures& f) {
  return {f.steps, f.prefill_tokens, f.decode_rows, f.logit_rows, f.attention};
}

// Solves a x = b for the unknowns in `active` (Gaussian elimination with partial pivoting); others are 0.
std::array<double, kN> SolveActive(std::array<std::array<double, kN>, kN> a, std::array<double, kN> b,
                                   const std::array<bool, kN>& active) {
  for (int i = 0; i < kN; ++i) {
    if (active[i]) continue;
    for (int j = 0; j < kN; ++j) a[i][j] = a[j][i] = 0.0;
    a[i][i] = 1.0;
    b[i] = 0.0;
  }
  for (int col = 0; col < kN; ++col) {
    int piv = col;
    for (int r = col + 1; r < kN; ++r) {
      if (std::abs(a[r][col]) > std::abs(a[piv][col])) piv = r;
    }
    std::swap(a[col], a[piv]);
    std::swap(b[col], b[piv]);
    if (std::abs(a[col][col]) < 1e-300) continue;
    for (int r = col + 1; r < kN; ++r) {
      const double f = a[r][col] / a[col][col];
      for (int c = col; c < kN; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  std::array<double, kN> x{};
  for (int r = kN - 1; r >= 0; --r) {
    double s = b[r];
    for (int c = r + 1; c < kN; ++c) s -= a[r][c] * x[c];
    x[r] = std::abs(a[r][r]) < 1e-300 ? 0.0 : s / a[r][r];
  }
  return x;
}

}  // namespace

StepFeatures& StepFeatures::operator+=(const StepFeatures& o) {
  steps += o.steps;
  prefill_tokens += o.prefill_tokens;
  decode_rows += o.decode_rows;
  logit_rows += o.logit_rows;
  attention += o.attention;
  return *this;
}

StepFeatures ChunkFeatures(const SequenceChunk& chunk, bool decode) {
  StepFeatures f;
  const double n = static_cast<double>(chunk.tokens.size());
  (decode ? f.decode_rows : f.prefill_tokens) = n;
  f.logit_rows = static_cast<double>(chunk.score_index.size()) + (chunk.sample ? 1.0 : 0.0);
  // Token i of the chunk attends to start_pos + i + 1 positions.
  f.attention = (n * chunk.start_pos + n * (n + 1) / 2) / 1000.0;
  return f;
}

double StepCostCoefficients::Predict(const StepFeatures& f) const {
  if (!ready) return 0.0;
  const std::array<double, kN> x = Vector(f);
  double t = 0.0;
  for (int i = 0; i < kN; ++i) t += seconds[i] * x[i];
  return t;
}

void StepCostModel::Observe(const StepFeatures& features, double seconds) {
  if (!(seconds >= 0.0) || !std::isfinite(seconds)) return;
  if (observations_ >= 4 && seconds > 0.0) {
    // The prediction of the coefficients as they were before this step.
    StepCostCoefficients before = coef_;
    before.ready = true;
    errors_[static_cast<size_t>(num_errors_++ % kErrorWindow)] = std::abs(before.Predict(features) - seconds) / seconds;
  }
  std::array<double, kN> x = Vector(features);
  for (int i = 0; i < kN; ++i) x[i] /= kScale[i];
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; ++j) xtx_[i][j] = kDecay * xtx_[i][j] + x[i] * x[j];
    xty_[i] = kDecay * xty_[i] + x[i] * seconds;
  }
  ++observations_;
  Solve();
}

void StepCostModel::Solve() {
  // Non-negative least squares by elimination: solve, drop the most negative coefficient, repeat.
  auto a = xtx_;
  double trace = 0.0;
  for (int i = 0; i < kN; ++i) trace += a[i][i];
  for (int i = 0; i < kN; ++i) a[i][i] += kRidge * std::max(trace, 1e-12);
  std::array<bool, kN> active;
  active.fill(true);
  std::array<double, kN> x{};
  for (int round = 0; round < kN; ++round) {
    x = SolveActive(a, xty_, active);
    int worst = -1;
    for (int i = 0; i < kN; ++i) {
      if (active[i] && x[i] < 0.0 && (worst < 0 || x[i] < x[worst])) worst = i;
    }
    if (worst < 0) break;
    active[worst] = false;
  }
  for (int i = 0; i < kN; ++i) coef_.seconds[i] = std::max(0.0, x[i]) / kScale[i];
  const int64_t n = std::min<int64_t>(num_errors_, kErrorWindow);
  if (n > 0) {
    std::array<double, kErrorWindow> e = errors_;
    std::nth_element(e.begin(), e.begin() + n / 2, e.begin() + n);
    coef_.median_rel_error = e[static_cast<size_t>(n / 2)];
  }
  coef_.ready = observations_ >= kMinObservations && n >= kErrorWindow / 2 && coef_.median_rel_error <= kMaxMedianError;
}

}  // namespace inferd::scheduler
