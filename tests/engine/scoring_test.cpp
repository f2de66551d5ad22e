#include "engine/scoring.h"

#include <gtest/gtest.h>

namespace inferd::engine {
namespace {

TEST(ScoringTest, RanksByMeanWithStableTies) {
  std::vector<scheduler::CandidateScore> s = {
      {0, -4.0, 2},  // mean -2
      {1, -3.0, 3},  // mean -1
      {2, -2.0, 1},  // mean -2 (tie with 0: index order)
      {3, -1.0, 1},  // mean -1 (tie with 1)
  };
  auto r = RankCandidates(s, ScoreBy::kMeanLogprob, 0);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].index, 1);
  EXPECT_EQ(r[1].index, 3);
  EXPECT_EQ(r[2].index, 0);
  EXPECT_EQ(r[3].index, 2);
  EXPECT_DOUBLE_EQ(r[0].mean_logprob, -1.0);
  EXPECT_DOUBLE_EQ(r[0].sum_logprob, -3.0);
}

TEST(ScoringTest, RanksBySumAndTruncates) {
  std::vector<scheduler::CandidateScore> s = {{0, -4.0, 2}, {1, -3.0, 3}, {2, -2.0, 1}, {3, -2.0, 1}};
  auto r = RankCandidates(s, ScoreBy::kSumLogprob, 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].index, 2);
  EXPECT_EQ(r[1].index, 3);
  EXPECT_EQ(RankCandidates(s, ScoreBy::kSumLogprob, 10).size(), 4u);
}

}  // namespace
}  // namespace inferd::engine
