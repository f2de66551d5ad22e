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

// Request-size caps beyond LimitsConfig (fixed for now).
inline constexpr size_t kMaxRequestIdBytes = 256;
inline constexpr int kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 256;
inline constexpr int32_t kMaxTopLogprobs = 20;

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
// max_tokens 0 becomes limits.default_max_tokens.
StatusOr<GenerateRequest> DecodeGenerate(const v1::GenerateRequest& request, const ServingPool& pool);

// Context encoded with BOS as above; candidates without special tokens. Item ids must be unique.
StatusOr<RecommendRequest> DecodeRecommend(const v1::RecommendRequest& request, const ServingPool& pool);

// Checks of Recommend fields the ranking encoder needs: encoding, score_precision (0 = the default).
// Returns the precision to use.
StatusOr<double> DecodeRankingOptions(const v1::RecommendRequest& request);

StatusOr<SamplingParams> DecodeSampling(const v1::SamplingParams& sampling);

Status ValidateRequestId(const std::string& request_id);

}  // namespace inferd::server
