#include "inferd/ranking_codec.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

namespace inferd {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// q[i] for every item, after checking sizes, precision and order.
StatusOr<std::vector<int64_t>> Quantize(const Ranking& ranking, double precision) {
  if (ranking.ids.size() != ranking.scores.size()) {
    return InvalidArgument("ranking: " + std::to_string(ranking.ids.size()) + " ids but " +
                           std::to_string(ranking.scores.size()) + " scores");
  }
  if (Status s = ValidateScorePrecision(precision); !s.ok()) return s;
  std::vector<int64_t> q(ranking.scores.size());
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = QuantizeScore(ranking.scores[i], precision);
    if (i > 0 && q[i] > q[i - 1]) {
      return InvalidArgument("ranking.scores[" + std::to_string(i) + "]: scores must not increase in rank order");
    }
  }
  return q;
}

// Fills compact's score fields from non-increasing quanta.
void PutScores(const std::vector<int64_t>& q, double precision, CompactRanking* compact) {
  compact->precision = precision;
  compact->first_score_quantum = q.empty() ? 0 : q[0];
  compact->score_deltas.resize(q.empty() ? 0 : q.size() - 1);
  for (size_t i = 1; i < q.size(); ++i) {
    compact->score_deltas[i - 1] = static_cast<uint64_t>(q[i - 1]) - static_cast<uint64_t>(q[i]);
  }
}

// Scores of n items from a compact ranking's score fields; `field` prefixes error messages.
StatusOr<std::vector<double>> GetScores(const CompactRanking& c, size_t n, const std::string& field) {
  if (!(c.precision > 0.0) || !std::isfinite(c.precision)) {
    return InvalidArgument(field + ".precision: must be positive and finite");
  }
  const size_t want = n == 0 ? 0 : n - 1;
  if (c.score_deltas.size() != want) {
    return InvalidArgument(field + ".score_deltas: " + std::to_string(c.score_deltas.size()) + " entries for " +
                           std::to_string(n) + " items (want " + std::to_string(want) + ")");
  }
  // Quanta stay in [-kMaxQuantum, kMaxQuantum] (what the encoder writes), so the subtraction never wraps and
  // the scores are non-increasing.
  if (n > 0 && (c.first_score_quantum > kMaxQuantum || c.first_score_quantum < -kMaxQuantum)) {
    return InvalidArgument(field + ".first_score_quantum: " + std::to_string(c.first_score_quantum) +
                           " is outside +-2^62");
  }
  std::vector<double> scores(n);
  int64_t q = c.first_score_quantum;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) {
      const uint64_t delta = c.score_deltas[i - 1];
      // q + kMaxQuantum in [0, 2^63]: computed modulo 2^64 so it cannot overflow.
      if (delta > static_cast<uint64_t>(q) + static_cast<uint64_t>(kMaxQuantum)) {
        return InvalidArgument(field + ".score_deltas[" + std::to_string(i - 1) + "]: " + std::to_string(delta) +
                               " takes the score quantum below -2^62");
      }
      q = static_cast<int64_t>(static_cast<uint64_t>(q) - delta);  // >= -kMaxQuantum: exact
    }
    scores[i] = static_cast<double>(q) * c.precision;
  }
  return scores;
}

}  // namespace

uint64_t RankingHash(std::span<const uint64_t> ids) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (uint64_t id : ids) h = Mix(h ^ id);
  return Mix(h ^ static_cast<uint64_t>(ids.size()));
}

int64_t QuantizeScore(double score, double precision) {
  if (std::isnan(score)) return -kMaxQuantum;
  const double x = score / precision;
  if (!(x < static_cast<double>(kMaxQuantum))) return kMaxQuantum;
  if (!(x > -static_cast<double>(kMaxQuantum))) return -kMaxQuantum;
  return std::llround(x);
}

Status ValidateScorePrecision(double precision) {
  if (!(precision >= kMinScorePrecision && precision <= kMaxScorePrecision)) {
    char got[32];
    std::snprintf(got, sizeof(got), "%g", precision);
    return InvalidArgument(std::string("score_precision: must be in [1e-9, 1e6] (0 = 1e-4), got ") + got);
  }
  return Status::Ok();
}

StatusOr<CompactRanking> EncodeCompact(const Ranking& ranking, double precision) {
  StatusOr<std::vector<int64_t>> q = Quantize(ranking, precision);
  if (!q.ok()) return q.status();
  CompactRanking c;
  c.id_deltas.resize(ranking.ids.size());
  uint64_t prev = 0;
  for (size_t i = 0; i < ranking.ids.size(); ++i) {
    c.id_deltas[i] = static_cast<int64_t>(ranking.ids[i] - prev);
    prev = ranking.ids[i];
  }
  PutScores(*q, precision, &c);
  return c;
}

StatusOr<Ranking> DecodeCompact(const CompactRanking& compact) {
  Ranking r;
  r.ids.resize(compact.id_deltas.size());
  uint64_t id = 0;
  for (size_t i = 0; i < r.ids.size(); ++i) {
    id += static_cast<uint64_t>(compact.id_deltas[i]);
    r.ids[i] = id;
  }
  StatusOr<std::vector<double>> scores = GetScores(compact, r.ids.size(), "compact");
  if (!scores.ok()) return scores.status();
  r.scores = std::move(scores).value();
  return r;
}

StatusOr<RankingDiff> EncodeDiff(std::span<const uint64_t> base_ids, const Ranking& ranking, double precision) {
  StatusOr<std::vector<int64_t>> q = Quantize(ranking, precision);
  if (!q.ok()) return q.status();
  std::unordered_map<uint64_t, uint32_t> base_rank;
  base_rank.reserve(base_ids.size());
  for (size_t r = 0; r < base_ids.size(); ++r) base_rank.emplace(base_ids[r], static_cast<uint32_t>(r));

  RankingDiff diff;
  diff.base_hash = RankingHash(base_ids);
  // Current run: code (0 = insert, r + 1 = copy from base rank r) and length; next_rank continues a copy run.
  uint32_t code = 0, length = 0, next_rank = 0;
  auto flush = [&] {
    if (length == 0) return;
    diff.runs.push_back(code);
    diff.runs.push_back(length);
    length = 0;
  };
  for (uint64_t id : ranking.ids) {
    auto it = base_rank.find(id);
    if (it == base_rank.end()) {
      if (length > 0 && code != 0) flush();
      code = 0;
      ++length;
      diff.inserted_ids.push_back(id);
      continue;
    }
    const uint32_t r = it->second;
    if (length > 0 && code != 0 && r == next_rank) {
      ++length;
    } else {
      flush();
      code = r + 1;
      length = 1;
    }
    next_rank = r + 1;
  }
  flush();
  PutScores(*q, precision, &diff.scores);
  return diff;
}

StatusOr<Ranking> DecodeDiff(std::span<const uint64_t> base_ids, const RankingDiff& diff) {
  if (RankingHash(base_ids) != diff.base_hash) {
    return FailedPrecondition("diff.base_hash: the base ranking held does not match the diff's base");
  }
  if (diff.runs.size() % 2 != 0) return InvalidArgument("diff.runs: odd number of entries");
  if (!diff.scores.id_deltas.empty()) return InvalidArgument("diff.scores.id_deltas: must be empty in a diff");
  Ranking r;
  size_t inserted = 0;
  for (size_t i = 0; i < diff.runs.size(); i += 2) {
    const uint32_t code = diff.runs[i];
    const uint64_t length = diff.runs[i + 1];
    const std::string field = "diff.runs[" + std::to_string(i) + "]";
    if (length == 0) return InvalidArgument(field + ": run length must be >= 1");
    if (code == 0) {
      if (inserted + length > diff.inserted_ids.size()) {
        return InvalidArgument(field + ": names more inserted ids than diff.inserted_ids holds");
      }
      r.ids.insert(r.ids.end(), diff.inserted_ids.begin() + static_cast<std::ptrdiff_t>(inserted),
                   diff.inserted_ids.begin() + static_cast<std::ptrdiff_t>(inserted + length));
      inserted += length;
    } else {
      const uint64_t start = code - 1;
      if (start + length > base_ids.size()) {
        return InvalidArgument(field + ": base ranks [" + std::to_string(start) + ", " +
                               std::to_string(start + length) + ") exceed the base's " +
                               std::to_string(base_ids.size()) + " items");
      }
      r.ids.insert(r.ids.end(), base_ids.begin() + static_cast<std::ptrdiff_t>(start),
                   base_ids.begin() + static_cast<std::ptrdiff_t>(start + length));
    }
  }
  if (inserted != diff.inserted_ids.size()) {
    return InvalidArgument("diff.inserted_ids: " + std::to_string(diff.inserted_ids.size() - inserted) +
                           " ids no run names");
  }
  StatusOr<std::vector<double>> scores = GetScores(diff.scores, r.ids.size(), "diff.scores");
  if (!scores.ok()) return scores.status();
  r.scores = std::move(scores).value();
  return r;
}

}  // namespace inferd
