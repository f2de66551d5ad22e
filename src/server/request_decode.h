// Proto -> native request decoding for the Inference service: validation (every INVALID_ARGUMENT names
// the proto field, e.g. "sampling.top_p: must be in [0, 1], got 1.5"), tokenization and the features
// classification looks at.
// Deadlines and routing are the service's; everything here is a pure function of its inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "classify/classifier.h"
#include "inferd/engine.h"
#include "inferd/status.h"
#include "inferd/v1/inferd.pb.h"
#include "server/serving_pool.h"

namespace inferd::server {

inline constexpr int32_t kMaxTopLogprobs = 20;

// Size checks that need no tokenizing, against `limits` (LimitsConfig): candidate count, stop strings, and
// text fields whose byte length alone proves them over their token cap (a token covers at most
// `max_bytes_per_token` input bytes; 0 skips those). O(number of fields); run before classification so an
// oversized request costs no tokenizing. INVALID_ARGUMENT names the field, its size and the cap's key.
Status PrecheckGenerate(const v1::GenerateRequest& request, const LimitsConfig& limits, size_t max_bytes_per_token);
Status PrecheckRecommend(const v1::RecommendRequest& request, const LimitsConfig& limits, size_t max_bytes_per_token);

// nullopt for UNSPECIFIED; INVALID_ARGUMENT "class_hint: ..." for values the enum does not name.
StatusOr<std::optional<RequestClass>> DecodeClassHint(int value);

// What the classifier looks at (classify/classifier.h), with INVALID_ARGUMENT for a bad class_hint.
// Token counts are made with `count_with` when it is not null (else left 0): prompt text with BOS as
// below, prompt_token_ids as sent, chat messages as the sum of their contents; an input that does not
// encode counts 0 here and fails later in decoding.
StatusOr<classify::RequestFeatures> GenerateFeatures(const v1::GenerateRequest& request, classify::Rpc rpc,
                                                     const Tokenizer* count_with);
StatusOr<classify::RequestFeatures> RecommendFeatures(const v1::RecommendRequest& request, const Tokenizer* count_with);

// The native request without cls and deadline, which the caller sets. Prompt text is encoded with
// BOS when tokenizer_config.json's add_bos_token says so (never EOS); chat messages are rendered
// with the chat template and a generation prompt, then encoded without adding special tokens;
// token ids must be in [0, vocab_size). stop_token_ids = the tokenizer's EOS unless ignore_eos.
// max_tokens 0 becomes limits.default_max_tokens. Runs PrecheckGenerate first.
StatusOr<GenerateRequest> DecodeGenerate(const v1::GenerateRequest& request, const ServingPool& pool);

// Context encoded with BOS as above; candidates without special tokens. Item ids must be unique.
// Caps: limits.max_context_tokens, max_candidate_tokens, max_total_candidate_tokens; candidates are encoded
// in order and decoding stops at the first one that takes the total over its cap.
StatusOr<RecommendRequest> DecodeRecommend(const v1::RecommendRequest& request, const ServingPool& pool);

// Checks of Recommend fields the ranking encoder needs: encoding, score_precision (0 = the default).
// Returns the precision to use.
StatusOr<double> DecodeRankingOptions(const v1::RecommendRequest& request);

StatusOr<SamplingParams> DecodeSampling(const v1::SamplingParams& sampling);

// INVALID_ARGUMENT when longer than `max_bytes` (server.max_request_id_bytes).
Status ValidateRequestId(const std::string& request_id, size_t max_bytes);

}  // namespace inferd::server
