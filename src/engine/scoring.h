// Recommend ranking: candidate log-probability sums to a ranked top-k.
#pragma once

#include <vector>

#include "inferd/engine.h"
#include "scheduler/scheduler.h"

namespace inferd::engine {

// Best first by `rank_by` (higher log-probability is better); equal scores keep candidate order.
// top_k <= 0 or beyond the count returns all.
std::vector<ScoredCandidate> RankCandidates(const std::vector<scheduler::CandidateScore>& scores, ScoreBy rank_by,
                                            int32_t top_k);

}  // namespace inferd::engine
