// Ranking codec: the compact and diff forms of a Recommend ranking (DESIGN.md section 5), as plain
// structs. The server encodes with it; clients decode with it. No protobuf or gRPC here: the proto
// messages inferd.v1.CompactRanking / RankingDiff carry these fields one to one.
//
// Compact form of a ranking of n items (rank order, scores non-increasing):
//   id_deltas[0] = ids[0], id_deltas[i] = ids[i] - ids[i-1] (uint64 arithmetic modulo 2^64, read as
//     int64; the proto field is sint64, so it travels zigzag-coded as a packed varint);
//   q[i] = Quantize(scores[i], precision) = llround(scores[i] / precision), clamped to +-kMaxQuantum
//     (non-finite scores clamp too; NaN counts as -inf);
//   first_score_quantum = q[0]; score_deltas[i-1] = q[i-1] - q[i] >= 0 for i in [1, n).
//   Decoded score i = q[i] * precision, so it is within precision / 2 of the original.
// Diff form of a ranking against a base ranking the client holds (base_ids):
//   the new ids are a concatenation of runs, runs = [code, length, code, length, ...], length >= 1:
//     code 0:     the next `length` ids of inserted_ids, in order (ids the base does not hold);
//     code r + 1: base ranks [r, r + length), in order (kept, or moved when out of place);
//   base items no run names were removed. Scores travel as a compact ranking without ids.
// RankingHash(ids) identifies a ranking by its ids in rank order; a diff names its base by it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "inferd/status.h"

namespace inferd {

inline constexpr double kDefaultScorePrecision = 1e-4;
// Precision bounds the encoder accepts (so a log-probability quantises without overflow).
inline constexpr double kMinScorePrecision = 1e-9;
inline constexpr double kMaxScorePrecision = 1e6;
inline constexpr int64_t kMaxQuantum = int64_t{1} << 62;

// Items in rank order; scores.size() == ids.size(), non-increasing.
struct Ranking {
  std::vector<uint64_t> ids;
  std::vector<double> scores;
};

struct CompactRanking {
  std::vector<int64_t> id_deltas;      // n entries; empty inside a RankingDiff
  std::vector<uint64_t> score_deltas;  // max(n - 1, 0) entries
  int64_t first_score_quantum = 0;     // q[0]; 0 when n == 0
  double precision = kDefaultScorePrecision;
};

struct RankingDiff {
  std::string base_response_id;
  uint64_t base_hash = 0;              // RankingHash of the base ids
  std::vector<uint32_t> runs;          // (code, length) pairs, see above
  std::vector<uint64_t> inserted_ids;  // ids of code-0 runs, in rank order
  CompactRanking scores;               // id_deltas empty
};

// 64-bit hash of ids in rank order: h = 0x9e3779b97f4a7c15; for each id: h = Mix(h ^ id);
// result Mix(h ^ n), Mix = the splitmix64 finaliser. Clients in other languages can reproduce it.
uint64_t RankingHash(std::span<const uint64_t> ids);

int64_t QuantizeScore(double score, double precision);

// INVALID_ARGUMENT "score_precision: ..." unless precision is in [kMinScorePrecision, kMaxScorePrecision].
Status ValidateScorePrecision(double precision);

// INVALID_ARGUMENT when the sizes differ, the precision is out of bounds or scores increase in rank order.
StatusOr<CompactRanking> EncodeCompact(const Ranking& ranking, double precision);
// INVALID_ARGUMENT when the sizes disagree or the precision is not positive and finite.
StatusOr<Ranking> DecodeCompact(const CompactRanking& compact);

// Greedy maximal runs: one run per maximal stretch of consecutive base ranks or inserted ids.
StatusOr<RankingDiff> EncodeDiff(std::span<const uint64_t> base_ids, const Ranking& ranking, double precision);
// Checks base_hash against base_ids (FAILED_PRECONDITION on a mismatch), then every run and size
// (INVALID_ARGUMENT naming the field).
StatusOr<Ranking> DecodeDiff(std::span<const uint64_t> base_ids, const RankingDiff& diff);

}  // namespace inferd
