#include "server/ranking_proto.h"

namespace inferd::server {

void ToProto(const CompactRanking& in, v1::CompactRanking* out) {
  out->mutable_id_deltas()->Assign(in.id_deltas.begin(), in.id_deltas.end());
  out->mutable_score_deltas()->Assign(in.score_deltas.begin(), in.score_deltas.end());
  out->set_first_score_quantum(in.first_score_quantum);
  out->set_precision(in.precision);
}

CompactRanking FromProto(const v1::CompactRanking& in) {
  CompactRanking out;
  out.id_deltas.assign(in.id_deltas().begin(), in.id_deltas().end());
  out.score_deltas.assign(in.score_deltas().begin(), in.score_deltas().end());
  out.first_score_quantum = in.first_score_quantum();
  out.precision = in.precision();
  return out;
}

void ToProto(const RankingDiff& in, v1::RankingDiff* out) {
  out->set_base_response_id(in.base_response_id);
  out->set_base_hash(in.base_hash);
  out->mutable_runs()->Assign(in.runs.begin(), in.runs.end());
  out->mutable_inserted_ids()->Assign(in.inserted_ids.begin(), in.inserted_ids.end());
  ToProto(in.scores, out->mutable_scores());
}

RankingDiff FromProto(const v1::RankingDiff& in) {
  RankingDiff out;
  out.base_response_id = in.base_response_id();
  out.base_hash = in.base_hash();
  out.runs.assign(in.runs().begin(), in.runs().end());
  out.inserted_ids.assign(in.inserted_ids().begin(), in.inserted_ids().end());
  out.scores = FromProto(in.scores());
  return out;
}

StatusOr<Ranking> DecodeRankingResponse(const v1::RecommendResponse& response, bool by_mean,
                                        std::span<const uint64_t> base_ids) {
  switch (response.ranking_case()) {
    case v1::RecommendResponse::kPlain: {
      Ranking r;
      for (const v1::ScoredItem& item : response.plain().items()) {
        r.ids.push_back(item.item_id());
        r.scores.push_back(by_mean ? item.mean_logprob() : item.sum_logprob());
      }
      return r;
    }
    case v1::RecommendResponse::kCompact:
      return DecodeCompact(FromProto(response.compact()));
    case v1::RecommendResponse::kDiff:
      return DecodeDiff(base_ids, FromProto(response.diff()));
    case v1::RecommendResponse::RANKING_NOT_SET:
      break;
  }
  return InvalidArgument("ranking: not set");
}

}  // namespace inferd::server
