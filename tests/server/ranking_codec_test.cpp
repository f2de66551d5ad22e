// The ranking codec: hand-worked examples of the documented wire layout, property-style round trips over
// random rankings and edits, precision bounds, and rejection of malformed input.
#include "inferd/ranking_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_set>

namespace inferd {
namespace {

Ranking RandomRanking(std::mt19937_64& rng, size_t n, bool small_ids) {
  Ranking r;
  std::unordered_set<uint64_t> seen;
  while (r.ids.size() < n) {
    const uint64_t id = small_ids ? rng() % 100000 : rng();
    if (seen.insert(id).second) r.ids.push_back(id);
  }
  std::normal_distribution<double> logprob(-12.0, 4.0);
  for (size_t i = 0; i < n; ++i) r.scores.push_back(logprob(rng));
  std::sort(r.scores.rbegin(), r.scores.rend());
  return r;
}

void ExpectSame(const Ranking& want, const Ranking& got, double precision) {
  ASSERT_EQ(got.ids, want.ids);
  ASSERT_EQ(got.scores.size(), want.scores.size());
  for (size_t i = 0; i < want.scores.size(); ++i) {
    EXPECT_NEAR(got.scores[i], want.scores[i], precision / 2 * (1 + 1e-9) + 1e-12) << "rank " << i;
  }
}

TEST(RankingCodecTest, CompactLayoutByHand) {
  Ranking r{{5, 3, 10}, {-1.0, -1.00004, -2.5}};
  StatusOr<CompactRanking> c = EncodeCompact(r, 1e-4);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id_deltas, (std::vector<int64_t>{5, -2, 7}));
  EXPECT_EQ(c->first_score_quantum, -10000);
  EXPECT_EQ(c->score_deltas, (std::vector<uint64_t>{0, 15000}));
  EXPECT_EQ(c->precision, 1e-4);
}

TEST(RankingCodecTest, IdDeltasWrapAroundUint64) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  Ranking r{{max, 0, max - 1}, {0.0, 0.0, -1.0}};
  StatusOr<CompactRanking> c = EncodeCompact(r, 1.0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id_deltas, (std::vector<int64_t>{-1, 1, -2}));
  ExpectSame(r, DecodeCompact(*c).value(), 1.0);
}

TEST(RankingCodecTest, CompactRoundTripsRandomRankings) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n = rng() % 200;
    const double precision = std::pow(10.0, -static_cast<double>(rng() % 8));  // 1 .. 1e-7
    const Ranking r = RandomRanking(rng, n, trial % 2 == 0);
    StatusOr<CompactRanking> c = EncodeCompact(r, precision);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_EQ(c->id_deltas.size(), n);
    ASSERT_EQ(c->score_deltas.size(), n == 0 ? 0 : n - 1);
    StatusOr<Ranking> back = DecodeCompact(*c);
    ASSERT_TRUE(back.ok());
    ExpectSame(r, *back, precision);
  }
}

TEST(RankingCodecTest, PrecisionBoundsAndOrder) {
  Ranking r{{1, 2}, {-1.0, -2.0}};
  EXPECT_FALSE(EncodeCompact(r, 0.0).ok());
  EXPECT_FALSE(EncodeCompact(r, -1e-4).ok());
  EXPECT_FALSE(EncodeCompact(r, 1e-12).ok());
  EXPECT_FALSE(EncodeCompact(r, std::nan("")).ok());
  EXPECT_TRUE(EncodeCompact(r, kMinScorePrecision).ok());
  Ranking increasing{{1, 2}, {-2.0, -1.0}};
  StatusOr<CompactRanking> bad = EncodeCompact(increasing, 1e-4);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("ranking.scores[1]: ", 0), 0u);
  // Scores closer than the precision quantise to equal values: allowed, and decode equal.
  Ranking close{{1, 2}, {-1.00001, -1.00002}};
  StatusOr<CompactRanking> c = EncodeCompact(close, 1e-3);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->score_deltas, (std::vector<uint64_t>{0}));
  Ranking mismatched{{1, 2}, {-1.0}};
  EXPECT_FALSE(EncodeCompact(mismatched, 1e-4).ok());
}

TEST(RankingCodecTest, NonFiniteScoresClamp) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(QuantizeScore(-inf, 1e-4), -kMaxQuantum);
  EXPECT_EQ(QuantizeScore(inf, 1e-4), kMaxQuantum);
  EXPECT_EQ(QuantizeScore(std::nan(""), 1e-4), -kMaxQuantum);
  EXPECT_EQ(QuantizeScore(-1e300, 1e-4), -kMaxQuantum);
  EXPECT_EQ(QuantizeScore(0.00016, 1e-4), 2);  // round to nearest
  EXPECT_EQ(QuantizeScore(-0.00014, 1e-4), -1);
  Ranking r{{1, 2, 3}, {0.0, -5.0, -inf}};
  StatusOr<CompactRanking> c = EncodeCompact(r, 1e-4);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(DecodeCompact(*c)->ids, r.ids);
}

TEST(RankingCodecTest, DiffLayoutByHand) {
  const std::vector<uint64_t> base = {1, 2, 3, 4, 5};
  Ranking next{{1, 2, 9, 4, 5, 3}, {-1, -2, -3, -4, -5, -6}};
  StatusOr<RankingDiff> d = EncodeDiff(base, next, 1e-4);
  ASSERT_TRUE(d.ok());
  // copy ranks [0,2), insert 1, copy ranks [3,5), copy rank [2,3)
  EXPECT_EQ(d->runs, (std::vector<uint32_t>{1, 2, 0, 1, 4, 2, 3, 1}));
  EXPECT_EQ(d->inserted_ids, (std::vector<uint64_t>{9}));
  EXPECT_EQ(d->base_hash, RankingHash(base));
  EXPECT_TRUE(d->scores.id_deltas.empty());
  ExpectSame(next, DecodeDiff(base, *d).value(), 1e-4);

  Ranking same{base, {-1, -2, -3, -4, -5}};
  EXPECT_EQ(EncodeDiff(base, same, 1e-4)->runs, (std::vector<uint32_t>{1, 5}));
  Ranking fresh{{7, 8}, {-1, -2}};
  EXPECT_EQ(EncodeDiff(base, fresh, 1e-4)->runs, (std::vector<uint32_t>{0, 2}));
  Ranking empty;
  StatusOr<RankingDiff> e = EncodeDiff(base, empty, 1e-4);
  EXPECT_TRUE(e->runs.empty());
  EXPECT_TRUE(DecodeDiff(base, *e)->ids.empty());
}

// Applies random small edits to a ranking: swaps of neighbours, moves, removals and insertions.
Ranking Edit(std::mt19937_64& rng, const Ranking& base, size_t max_edits) {
  std::vector<uint64_t> ids = base.ids;
  const size_t edits = rng() % (max_edits + 1);
  for (size_t e = 0; e < edits; ++e) {
    switch (rng() % 4) {
      case 0:
        if (ids.size() >= 2) {
          const size_t i = rng() % (ids.size() - 1);
          std::swap(ids[i], ids[i + 1]);
        }
        break;
      case 1:
        if (!ids.empty()) {
          const size_t from = rng() % ids.size(), to = rng() % ids.size();
          const uint64_t id = ids[from];
          ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(from));
          ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(to), id);
        }
        break;
      case 2:
        if (!ids.empty()) ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(rng() % ids.size()));
        break;
      default:
        ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(rng() % (ids.size() + 1)), (1ULL << 63) + e);
    }
  }
  Ranking r;
  r.ids = ids;
  std::normal_distribution<double> logprob(-12.0, 4.0);
  for (size_t i = 0; i < ids.size(); ++i) r.scores.push_back(logprob(rng));
  std::sort(r.scores.rbegin(), r.scores.rend());
  return r;
}

TEST(RankingCodecTest, DiffRoundTripsRandomEdits) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 500; ++trial) {
    const Ranking base = RandomRanking(rng, rng() % 150, trial % 2 == 0);
    const Ranking next = Edit(rng, base, trial % 3 == 0 ? 40 : 5);
    const double precision = trial % 2 ? 1e-4 : 1e-2;
    StatusOr<RankingDiff> d = EncodeDiff(base.ids, next, precision);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    StatusOr<Ranking> back = DecodeDiff(base.ids, *d);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSame(next, *back, precision);
    // Runs are maximal: no two neighbouring runs could be merged.
    for (size_t i = 2; i < d->runs.size(); i += 2) {
      const uint32_t prev_code = d->runs[i - 2], prev_len = d->runs[i - 1], code = d->runs[i];
      EXPECT_FALSE(prev_code == 0 && code == 0);
      EXPECT_FALSE(prev_code != 0 && code == prev_code + prev_len);
    }
  }
}

TEST(RankingCodecTest, DiffDecoderRejectsMalformedInput) {
  const std::vector<uint64_t> base = {10, 20, 30};
  Ranking next{{20, 30, 99}, {-1, -2, -3}};
  const RankingDiff good = EncodeDiff(base, next, 1e-4).value();
  ASSERT_TRUE(DecodeDiff(base, good).ok());

  const std::vector<uint64_t> other = {10, 30, 20};
  EXPECT_EQ(DecodeDiff(other, good).status().code(), StatusCode::kFailedPrecondition);

  RankingDiff d = good;
  d.runs.pop_back();
  EXPECT_EQ(DecodeDiff(base, d).status().code(), StatusCode::kInvalidArgument);
  d = good;
  d.runs[1] = 0;
  EXPECT_FALSE(DecodeDiff(base, d).ok());
  d = good;
  d.runs[0] = 3;  // copy from base rank 2, length 2: past the end
  EXPECT_FALSE(DecodeDiff(base, d).ok());
  d = good;
  d.inserted_ids.push_back(5);
  EXPECT_FALSE(DecodeDiff(base, d).ok());
  d = good;
  d.inserted_ids.clear();
  EXPECT_FALSE(DecodeDiff(base, d).ok());
  d = good;
  d.scores.score_deltas.push_back(1);
  EXPECT_FALSE(DecodeDiff(base, d).ok());
  d = good;
  d.scores.precision = 0;
  EXPECT_FALSE(DecodeDiff(base, d).ok());
  d = good;
  d.scores.id_deltas = {1};
  EXPECT_FALSE(DecodeDiff(base, d).ok());

  CompactRanking c = EncodeCompact(next, 1e-4).value();
  c.score_deltas.clear();
  EXPECT_FALSE(DecodeCompact(c).ok());
}

// Found by fuzz_ranking_codec: a first quantum near INT64_MIN minus a delta wrapped around to a large
// positive score, so the decoded ranking had increasing scores.
TEST(RankingCodecTest, DecoderRejectsQuantaOutsideTheEncodersRange) {
  CompactRanking c;
  c.id_deltas = {1, 1};
  c.precision = 1.0;
  c.first_score_quantum = std::numeric_limits<int64_t>::min() + 1;
  c.score_deltas = {2};
  auto got = DecodeCompact(c);
  ASSERT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("compact.first_score_quantum"), std::string::npos) << got.status().message();

  c.first_score_quantum = -(int64_t{1} << 62) + 5;  // in range; a delta of 6 crosses -2^62
  c.score_deltas = {6};
  got = DecodeCompact(c);
  ASSERT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("compact.score_deltas[0]"), std::string::npos) << got.status().message();

  c.score_deltas = {5};  // lands exactly on -2^62: allowed
  got = DecodeCompact(c);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->scores[1], -std::ldexp(1.0, 62));
  EXPECT_GE(got->scores[0], got->scores[1]);

  c.first_score_quantum = int64_t{1} << 62;  // the top of the range with the largest delta to the bottom
  c.score_deltas = {uint64_t{1} << 63};
  got = DecodeCompact(c);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->scores[0], std::ldexp(1.0, 62));
  EXPECT_EQ(got->scores[1], -std::ldexp(1.0, 62));
  c.score_deltas = {(uint64_t{1} << 63) + 1};
  EXPECT_EQ(DecodeCompact(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(RankingCodecTest, HashDependsOnOrderAndLength) {
  const std::vector<uint64_t> a = {1, 2, 3}, b = {2, 1, 3}, c = {1, 2, 3, 0}, empty;
  EXPECT_EQ(RankingHash(a), RankingHash(std::vector<uint64_t>{1, 2, 3}));
  EXPECT_NE(RankingHash(a), RankingHash(b));
  EXPECT_NE(RankingHash(a), RankingHash(c));
  EXPECT_NE(RankingHash(empty), RankingHash(std::vector<uint64_t>{0}));
}

}  // namespace
}  // namespace inferd
