// bench_sampling: what sampling adds to one decode step, per mode, at a decode batch of --rows rows.
//
//   bench_sampling [--rows 16] [--vocab 129280] [--rounds 9] [--threads 2]
//
// Each mode runs the worker's per-step sampling sequence on random [rows, vocab] float32 logits:
// greedy       argmax + logsumexp (the sampled token's logprob);
// sampled      the O(vocab) sampler at temperature 0.7 + logsumexp;
// filtered     the same with top_k 50, top_p 0.9, min_p 0.05;
// sorted       the sort-based sampler (the pre-O(vocab) implementation) at temperature 0.7 + log_softmax;
// sorted-filt  the sort-based sampler with the filters above.
// The modes alternate within each round (so machine load hits them alike); the figure is the median over
// --rounds of the mean of 20 calls, in microseconds, with the ratio to greedy.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "ops/parallel.h"
#include "ops/sampling.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 16, vocab = 129280;
  int rounds = 9, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const long v = std::atol(argv[i + 1]);
    if (k == "--rows") rows = v;
    else if (k == "--vocab") vocab = v;
    else if (k == "--rounds") rounds = static_cast<int>(v);
    else if (k == "--threads") threads = static_cast<int>(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  at::set_num_threads(threads);
  inferd::ops::SetPoolThreads(threads);
  at::manual_seed(1);
  const at::Tensor logits = at::randn({rows, vocab}) * 3;
  const at::Tensor zeros = at::zeros({rows}), ones = at::ones({rows});
  const at::Tensor temp = at::full({rows}, 0.7f), greedy_t = zeros;
  const at::Tensor no_k = at::zeros({rows}, at::kLong), k50 = at::full({rows}, 50, at::kLong);
  const at::Tensor p09 = at::full({rows}, 0.9f), mp = at::full({rows}, 0.05f);
  std::vector<float> uv;
  for (int64_t r = 0; r < rows; ++r) uv.push_back(static_cast<float>(inferd::ops::SeededUniform(7, r)));
  const at::Tensor u = at::tensor(uv);
  int64_t sink = 0;
  auto logprob_lse = [&](const at::Tensor& chosen) {
    at::Tensor lse = inferd::ops::RowLogSumExp(logits).unsqueeze(1);
    sink += (logits.gather(1, chosen.unsqueeze(1)) - lse).sum().item<float>() > 0;
  };
  auto logprob_lsm = [&](const at::Tensor& chosen) {
    sink += logits.log_softmax(-1).gather(1, chosen.unsqueeze(1)).sum().item<float>() > 0;
  };
  struct Mode {
    const char* name;
    std::function<void()> run;
  };
  std::vector<Mode> modes = {
      {"greedy", [&] { logprob_lse(inferd::ops::SampleFromLogits(logits, greedy_t, no_k, ones, zeros, u)); }},
      {"sampled", [&] { logprob_lse(inferd::ops::SampleFromLogits(logits, temp, no_k, ones, zeros, u)); }},
      {"filtered", [&] { logprob_lse(inferd::ops::SampleFromLogits(logits, temp, k50, p09, mp, u)); }},
      {"sorted", [&] { logprob_lsm(inferd::ops::SampleFromLogitsSorted(logits, temp, no_k, ones, zeros, u)); }},
      {"sorted-filt", [&] { logprob_lsm(inferd::ops::SampleFromLogitsSorted(logits, temp, k50, p09, mp, u)); }},
  };
  std::vector<std::vector<double>> us(modes.size());
  for (int r = 0; r < rounds + 1; ++r) {
    for (size_t m = 0; m < modes.size(); ++m) {
      const int calls = 20;
      const auto t0 = std::chrono::steady_clock::now();
      for (int c = 0; c < calls; ++c) modes[m].run();
      const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) us[m].push_back(t / calls);  // round 0 warms up
    }
  }
  std::printf("rows %lld, vocab %lld, threads %d, %d rounds\n", static_cast<long long>(rows),
              static_cast<long long>(vocab), threads, rounds);
  const double base = Median(us[0]);
  for (size_t m = 0; m < modes.size(); ++m) {
    std::printf("%-12s %10.1f us  x%.2f of greedy\n", modes[m].name, Median(us[m]), Median(us[m]) / base);
  }
  return sink == -1;
}
