#include "engine/scoring.h"

#include <algorithm>

namespace inferd::engine {

std::vector<ScoredCandidate> RankCandidates(const std::vector<scheduler::CandidateScore>& scores, ScoreBy rank_by,
                                            int32_t top_k) {
  std::vector<ScoredCandidate> out;
  out.reserve(scores.size());
  for (const auto& s : scores) {
    ScoredCandidate c;
    c.index = s.index;
    c.sum_logprob = s.sum_logprob;
    c.num_tokens = s.num_tokens;
    c.mean_logprob = s.num_tokens > 0 ? s.sum_logprob / s.num_tokens : 0.0;
    out.push_back(c);
  }
  auto key = [rank_by](const ScoredCandidate& c) {
    return rank_by == ScoreBy::kSumLogprob ? c.sum_logprob : c.mean_logprob;
  };
  auto better = [&](const ScoredCandidate& a, const ScoredCandidate& b) {
    const double ka = key(a), kb = key(b);
    if (ka != kb) return ka > kb;
    return a.index < b.index;
  };
  const size_t k = top_k <= 0 ? out.size() : std::min<size_t>(out.size(), static_cast<size_t>(top_k));
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(), better);
  out.resize(k);
  return out;
}

}  // namespace inferd::engine
