// bench_ranking_codec: wire size of a Recommend ranking in the plain, compact and diff forms
// (inferd.v1 protobuf messages, ByteSizeLong), plus encode/decode time. Prints a markdown table.
//
// Workload: 1000 candidates of 4..16 tokens, each token log-probability -Exp(mean 2.5) so a candidate's
// score is its summed log-probability; the top 100 are returned. Successive responses perturb every
// candidate's score with N(0, sigma) and re-rank, which reorders neighbours and swaps items across the
// top-100 boundary; `churn` replaces that many candidates with new items before re-ranking.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "inferd/ranking_codec.h"
#include "inferd/v1/inferd.pb.h"
#include "server/ranking_proto.h"

namespace {

using inferd::Ranking;

struct Candidate {
  uint64_t id;
  double sum;
  int32_t num_tokens;
};

struct Pool {
  std::vector<Candidate> candidates;
};

Pool MakePool(std::mt19937_64& rng, int n, bool hashed_ids) {
  Pool p;
  std::uniform_int_distribution<uint64_t> catalog(1'000'000, 9'999'999);
  std::uniform_int_distribution<int> len(4, 16);
  std::exponential_distribution<double> nll(1.0 / 2.5);
  for (int i = 0; i < n; ++i) {
    Candidate c;
    c.id = hashed_ids ? rng() : catalog(rng);
    c.num_tokens = len(rng);
    c.sum = 0;
    for (int t = 0; t < c.num_tokens; ++t) c.sum -= nll(rng);
    p.candidates.push_back(c);
  }
  return p;
}

std::vector<Candidate> TopK(const Pool& p, size_t k) {
  std::vector<Candidate> v = p.candidates;
  std::stable_sort(v.begin(), v.end(), [](const Candidate& a, const Candidate& b) { return a.sum > b.sum; });
  v.resize(std::min(k, v.size()));
  return v;
}

Ranking ToRanking(const std::vector<Candidate>& top) {
  Ranking r;
  for (const Candidate& c : top) {
    r.ids.push_back(c.id);
    r.scores.push_back(c.sum);
  }
  return r;
}

size_t PlainSize(const std::vector<Candidate>& top) {
  inferd::v1::RecommendResponse resp;
  for (const Candidate& c : top) {
    auto* item = resp.mutable_plain()->add_items();
    item->set_item_id(c.id);
    item->set_sum_logprob(c.sum);
    item->set_mean_logprob(c.sum / c.num_tokens);
    item->set_num_tokens(c.num_tokens);
  }
  return resp.ByteSizeLong();
}

// Plain with only the id and the one score compact carries: the fairest plain baseline.
size_t PlainOneScoreSize(const std::vector<Candidate>& top) {
  inferd::v1::RecommendResponse resp;
  for (const Candidate& c : top) {
    auto* item = resp.mutable_plain()->add_items();
    item->set_item_id(c.id);
    item->set_sum_logprob(c.sum);
  }
  return resp.ByteSizeLong();
}

size_t CompactSize(const Ranking& r, double precision) {
  inferd::v1::RecommendResponse resp;
  inferd::server::ToProto(inferd::EncodeCompact(r, precision).value(), resp.mutable_compact());
  return resp.ByteSizeLong();
}

struct DiffSizes {
  size_t total = 0;
  size_t scores = 0;  // the CompactRanking inside
};

DiffSizes DiffSize(const Ranking& base, const Ranking& r, double precision) {
  inferd::RankingDiff d = inferd::EncodeDiff(base.ids, r, precision).value();
  d.base_response_id = "r3f9a1b2c-1a2b";  // the shape of the server's response ids
  inferd::v1::RecommendResponse resp;
  inferd::server::ToProto(d, resp.mutable_diff());
  return {resp.ByteSizeLong(), resp.diff().scores().ByteSizeLong()};
}

struct Row {
  std::string name;
  double plain = 0, plain1 = 0, compact = 0, diff = 0, diff_scores = 0;
};

void Print(const Row& r, int trials) {
  auto pct = [](double a, double b) { return 100.0 * (1.0 - a / b); };
  std::printf("| %-44s | %7.0f | %7.0f | %7.0f (%4.1f%%) | %7.0f (%4.1f%%) | %6.0f |\n", r.name.c_str(),
              r.plain / trials, r.plain1 / trials, r.compact / trials, pct(r.compact, r.plain), r.diff / trials,
              pct(r.diff, r.plain), r.diff_scores / trials);
}

Row Scenario(const std::string& name, bool hashed_ids, double precision, double sigma, int churn, int trials) {
  Row row;
  row.name = name;
  std::mt19937_64 rng(1234);
  for (int t = 0; t < trials; ++t) {
    Pool pool = MakePool(rng, 1000, hashed_ids);
    const std::vector<Candidate> base_top = TopK(pool, 100);
    const Ranking base = ToRanking(base_top);
    std::normal_distribution<double> noise(0.0, std::max(sigma, 1e-9));
    for (Candidate& c : pool.candidates) c.sum += sigma > 0 ? noise(rng) : 0.0;
    Pool fresh = MakePool(rng, churn, hashed_ids);
    std::shuffle(pool.candidates.begin(), pool.candidates.end(), rng);
    std::copy(fresh.candidates.begin(), fresh.candidates.end(), pool.candidates.begin());
    const std::vector<Candidate> top = TopK(pool, 100);
    const Ranking next = ToRanking(top);
    row.plain += static_cast<double>(PlainSize(top));
    row.plain1 += static_cast<double>(PlainOneScoreSize(top));
    row.compact += static_cast<double>(CompactSize(next, precision));
    const DiffSizes d = DiffSize(base, next, precision);
    row.diff += static_cast<double>(d.total);
    row.diff_scores += static_cast<double>(d.scores);
  }
  return row;
}

volatile size_t g_sink = 0;  // keeps the timed calls from being optimised away

void Timing() {
  std::mt19937_64 rng(99);
  Pool pool = MakePool(rng, 1000, false);
  const Ranking base = ToRanking(TopK(pool, 100));
  for (Candidate& c : pool.candidates) c.sum += std::normal_distribution<double>(0, 0.05)(rng);
  const Ranking next = ToRanking(TopK(pool, 100));
  constexpr int kIters = 20000;
  using Clock = std::chrono::steady_clock;
  auto time = [&](const char* what, auto&& fn) {
    const auto t0 = Clock::now();
    for (int i = 0; i < kIters; ++i) g_sink = g_sink + fn();
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kIters;
    std::printf("| %-34s | %6.2f us |\n", what, us);
  };
  const inferd::CompactRanking c = inferd::EncodeCompact(next, 1e-4).value();
  const inferd::RankingDiff d = inferd::EncodeDiff(base.ids, next, 1e-4).value();
  std::printf("\n| operation (100 items)              | time      |\n|---|---|\n");
  time("EncodeCompact", [&] { return inferd::EncodeCompact(next, 1e-4)->id_deltas.size(); });
  time("DecodeCompact", [&] { return inferd::DecodeCompact(c)->ids.size(); });
  time("EncodeDiff", [&] { return inferd::EncodeDiff(base.ids, next, 1e-4)->runs.size(); });
  time("DecodeDiff", [&] { return inferd::DecodeDiff(base.ids, d)->ids.size(); });
}

}  // namespace

int main() {
  constexpr int kTrials = 200;
  std::printf("Mean bytes of RecommendResponse.ranking (protobuf ByteSizeLong), top 100 of 1000, %d trials.\n",
              kTrials);
  std::printf("plain = id + sum + mean + num_tokens per item; plain-1 = id + sum only; %% = smaller than plain.\n\n");
  std::printf(
      "| scenario                                     |   plain | plain-1 |         compact |            diff | "
      "diff scores |\n|---|---|---|---|---|---|\n");
  Print(Scenario("7-digit ids, 1e-4, sigma 0.05, no churn", false, 1e-4, 0.05, 0, kTrials), kTrials);
  Print(Scenario("7-digit ids, 1e-4, sigma 0 (same scores), churn 5", false, 1e-4, 0.0, 5, kTrials), kTrials);
  Print(Scenario("7-digit ids, 1e-4, sigma 0.2, churn 5", false, 1e-4, 0.2, 5, kTrials), kTrials);
  Print(Scenario("7-digit ids, 1e-4, sigma 1.0 (large reorder)", false, 1e-4, 1.0, 0, kTrials), kTrials);
  Print(Scenario("7-digit ids, 1e-2, sigma 0.05, no churn", false, 1e-2, 0.05, 0, kTrials), kTrials);
  Print(Scenario("64-bit hashed ids, 1e-4, sigma 0.05, no churn", true, 1e-4, 0.05, 0, kTrials), kTrials);
  Print(Scenario("64-bit hashed ids, 1e-4, sigma 0.2, churn 5", true, 1e-4, 0.2, 5, kTrials), kTrials);
  Timing();
  return 0;
}
