// Input: the fields of a CompactRanking and a RankingDiff (as a client receives them) and a base ranking.
// Properties: the decoders return a value or an error status, never crash; a decoded ranking has one score
// per id and non-increasing scores; encoding a decoded ranking and decoding again gives the same ids and
// scores within precision / 2.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "fuzz_check.h"
#include "inferd/ranking_codec.h"

namespace {

double PickPrecision(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return inferd::kDefaultScorePrecision;
    case 1:
      return in.ConsumeFloatingPoint<double>();
    case 2:
      return in.ConsumeFloatingPointInRange<double>(inferd::kMinScorePrecision, inferd::kMaxScorePrecision);
    default:
      return in.ConsumeProbability<double>();
  }
}

void CheckRanking(const inferd::Ranking& r) {
  FUZZ_CHECK(r.ids.size() == r.scores.size(), "%zu ids, %zu scores", r.ids.size(), r.scores.size());
  for (size_t i = 1; i < r.scores.size(); ++i) FUZZ_CHECK(!(r.scores[i] > r.scores[i - 1]), "rank %zu", i);
}

void CheckRoundTrip(const inferd::Ranking& r, double precision) {
  auto compact = inferd::EncodeCompact(r, precision);
  if (!compact.ok()) return;
  auto again = inferd::DecodeCompact(*compact);
  FUZZ_CHECK(again.ok(), "%s", again.status().message().c_str());
  FUZZ_CHECK(again->ids == r.ids, "ids differ after a round trip");
  for (size_t i = 0; i < r.scores.size(); ++i) {
    const double q = static_cast<double>(inferd::QuantizeScore(r.scores[i], precision)) * precision;
    FUZZ_CHECK(again->scores[i] == q, "score %zu: %g vs %g", i, again->scores[i], q);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<uint64_t> base;
  const size_t base_n = in.ConsumeIntegralInRange<size_t>(0, 64);
  for (size_t i = 0; i < base_n; ++i) base.push_back(in.ConsumeIntegralInRange<uint64_t>(0, 80));

  inferd::CompactRanking compact;
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, 64);
  for (size_t i = 0; i < n; ++i) compact.id_deltas.push_back(in.ConsumeIntegral<int64_t>());
  const size_t nd = in.ConsumeBool() ? (n > 0 ? n - 1 : 0) : in.ConsumeIntegralInRange<size_t>(0, 64);
  for (size_t i = 0; i < nd; ++i) compact.score_deltas.push_back(in.ConsumeIntegralInRange<uint64_t>(0, 1000));
  compact.first_score_quantum = in.ConsumeIntegral<int64_t>();
  compact.precision = PickPrecision(in);

  inferd::RankingDiff diff;
  diff.base_hash = in.ConsumeBool() ? inferd::RankingHash(base) : in.ConsumeIntegral<uint64_t>();
  const size_t runs = in.ConsumeIntegralInRange<size_t>(0, 32);
  for (size_t i = 0; i < runs; ++i) diff.runs.push_back(in.ConsumeIntegralInRange<uint32_t>(0, 70));
  if (in.ConsumeBool()) diff.runs.push_back(in.ConsumeIntegral<uint32_t>());
  const size_t ins = in.ConsumeIntegralInRange<size_t>(0, 32);
  for (size_t i = 0; i < ins; ++i) diff.inserted_ids.push_back(in.ConsumeIntegral<uint64_t>());
  const size_t ds = in.ConsumeIntegralInRange<size_t>(0, 64);
  for (size_t i = 0; i < ds; ++i) diff.scores.score_deltas.push_back(in.ConsumeIntegralInRange<uint64_t>(0, 1000));
  diff.scores.first_score_quantum = in.ConsumeIntegral<int64_t>();
  diff.scores.precision = PickPrecision(in);

  auto decoded = inferd::DecodeCompact(compact);
  if (decoded.ok()) {
    CheckRanking(*decoded);
    CheckRoundTrip(*decoded, compact.precision);
  }
  auto from_diff = inferd::DecodeDiff(base, diff);
  if (from_diff.ok()) {
    CheckRanking(*from_diff);
    auto re = inferd::EncodeDiff(base, *from_diff, diff.scores.precision);
    if (re.ok()) {
      auto back = inferd::DecodeDiff(base, *re);
      FUZZ_CHECK(back.ok(), "%s", back.status().message().c_str());
      FUZZ_CHECK(back->ids == from_diff->ids, "diff round trip changed the ids");
    }
  }
  return 0;
}
