// Proto -> native request decoding for the Inference service: validation (every INVALID_ARGUMENT names
// the proto field, e.g. "sampling.top_p: must be in [0, 1], got 1.5"), tokenization and classification.
// Deadlines and routing are the service's; everything here is a pure function of its inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

// Classification rule (DESIGN.md section 1), applied in this order:
//   1. a class_hint other than UNSPECIFIED wins;
//   2. Recommend is realtime;
//   3. Generate is realtime when 1 <= sampling.max_tokens <= kRealtimeMaxTokens (as sent; 0, the server
//      default, does not count as small) and latency_budget_ms > 0; otherwise complex.
// Config-driven rules can replace rule 3 later.
inline constexpr int32_t kRealtimeMaxTokens = 16;

// nullopt for UNSPECIFIED; INVALID_ARGUMENT "class_hint: ..." for values the enum does not name.
StatusOr<std::optional<RequestClass>> DecodeClassHint(int value);
RequestClass ClassifyGenerate(const v1::GenerateRequest& request, std::optional<RequestClass> hint);
RequestClass ClassifyRecommend(std::optional<RequestClass> hint);

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
