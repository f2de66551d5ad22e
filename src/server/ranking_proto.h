// inferd.v1 ranking messages <-> the plain codec structs of inferd/ranking_codec.h, for the server and
// for C++ clients (links protobuf, not gRPC).
#pragma once

#include <span>

#include "inferd/ranking_codec.h"
#include "inferd/status.h"
#include "inferd/v1/inferd.pb.h"

namespace inferd::server {

void ToProto(const CompactRanking& in, v1::CompactRanking* out);
CompactRanking FromProto(const v1::CompactRanking& in);
void ToProto(const RankingDiff& in, v1::RankingDiff* out);
RankingDiff FromProto(const v1::RankingDiff& in);

// Client side: the ranking a response carries. PLAIN yields the score the request ranked by
// (mean_logprob when `by_mean`, else sum_logprob). DIFF needs `base_ids`, the ids of the response
// named by diff.base_response_id (FAILED_PRECONDITION when they do not match its hash).
StatusOr<Ranking> DecodeRankingResponse(const v1::RecommendResponse& response, bool by_mean,
                                        std::span<const uint64_t> base_ids = {});

}  // namespace inferd::server
