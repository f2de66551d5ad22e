#include "server/request_decode.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "inferd/ranking_codec.h"

namespace inferd::server {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

Status Bad(const std::string& field, const std::string& what) {
  return InvalidArgument(field + ": " + what);
}

// Prompt or context text -> ids: BOS per tokenizer_config.json, never EOS.
StatusOr<std::vector<TokenId>> EncodeWithBos(const Tokenizer& tok, const std::string& text, const std::string& field) {
  EncodeOptions opts;
  opts.add_special_tokens = false;
  StatusOr<std::vector<TokenId>> ids = tok.Encode(text, opts);
  if (!ids.ok()) return Bad(field, ids.status().message());
  if (tok.add_bos_token() && tok.bos_id().has_value()) ids->insert(ids->begin(), *tok.bos_id());
  return ids;
}

StatusOr<std::vector<TokenId>> DecodeInput(const v1::GenerateRequest& req, const ServingPool& pool,
                                           std::string* field) {
  const Tokenizer& tok = *pool.tokenizer;
  switch (req.input_case()) {
    case v1::GenerateRequest::kPrompt: {
      *field = "prompt";
      if (req.prompt().empty()) return Bad(*field, "must not be empty");
      return EncodeWithBos(tok, req.prompt(), *field);
    }
    case v1::GenerateRequest::kMessages: {
      *field = "messages.messages";
      const auto& msgs = req.messages().messages();
      if (msgs.empty()) return Bad(*field, "must not be empty");
      if (!tok.has_chat_template()) return Bad("messages", "model '" + pool.name + "' has no chat template");
      std::vector<ChatMessage> chat;
      chat.reserve(msgs.size());
      for (int i = 0; i < msgs.size(); ++i) {
        const std::string& role = msgs[i].role();
        if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
          return Bad(*field + "[" + std::to_string(i) + "].role",
                     "must be system, user, assistant or tool, got " + Excerpt(role));
        }
        chat.push_back(ChatMessage{role, msgs[i].content(), {}});
      }
      StatusOr<std::string> text = tok.ApplyChatTemplate(chat, /*add_generation_prompt=*/true);
      if (!text.ok()) return Bad("messages", text.status().message());
      EncodeOptions opts;
      opts.add_special_tokens = false;  // the template writes BOS itself
      StatusOr<std::vector<TokenId>> ids = tok.Encode(*text, opts);
      if (!ids.ok()) return Bad("messages", ids.status().message());
      return ids;
    }
    case v1::GenerateRequest::kPromptTokenIds: {
      *field = "prompt_token_ids.ids";
      const auto& in = req.prompt_token_ids().ids();
      if (in.empty()) return Bad(*field, "must not be empty");
      const int32_t vocab = tok.vocab_size();
      std::vector<TokenId> ids(in.begin(), in.end());
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= vocab) {
          return Bad(*field + "[" + std::to_string(i) + "]",
                     std::to_string(ids[i]) + " is not a token id (vocabulary size " + std::to_string(vocab) + ")");
        }
      }
      return ids;
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  *field = "input";
  return Bad(*field, "set one of prompt, messages, prompt_token_ids");
}

Status CheckTokens(size_t n, int64_t cap, const std::string& field, const char* cap_key) {
  if (static_cast<int64_t>(n) > cap) {
    return Bad(field,
               std::to_string(n) + " tokens exceeds the limit of " + std::to_string(cap) + " (limits." + cap_key + ")");
  }
  return Status::Ok();
}

// INVALID_ARGUMENT when `bytes` of text must encode to more than `cap` tokens.
Status CheckBytes(size_t bytes, int64_t cap, size_t max_bytes_per_token, const std::string& field,
                  const char* cap_key) {
  if (max_bytes_per_token == 0 || bytes <= static_cast<size_t>(cap) * max_bytes_per_token) return Status::Ok();
  return Bad(field, std::to_string(bytes) + " bytes encode to more than the limit of " + std::to_string(cap) +
                        " tokens (limits." + cap_key + "; a token covers at most " +
                        std::to_string(max_bytes_per_token) + " bytes)");
}

}  // namespace

StatusOr<std::optional<RequestClass>> DecodeClassHint(int value) {
  switch (value) {
    case v1::REQUEST_CLASS_UNSPECIFIED:
      return std::optional<RequestClass>();
    case v1::REQUEST_CLASS_REALTIME:
      return std::optional<RequestClass>(RequestClass::kRealtime);
    case v1::REQUEST_CLASS_COMPLEX:
      return std::optional<RequestClass>(RequestClass::kComplex);
    default:
      return Bad("class_hint", "unknown value " + std::to_string(value));
  }
}

namespace {

int64_t CountText(const Tokenizer& tok, const std::string& text, bool with_bos) {
  EncodeOptions opts;
  opts.add_special_tokens = false;
  StatusOr<std::vector<TokenId>> ids = tok.Encode(text, opts);
  if (!ids.ok()) return 0;
  return static_cast<int64_t>(ids->size()) + (with_bos && tok.add_bos_token() && tok.bos_id().has_value() ? 1 : 0);
}

}  // namespace

StatusOr<classify::RequestFeatures> GenerateFeatures(const v1::GenerateRequest& req, classify::Rpc rpc,
                                                     const Tokenizer* count_with) {
  StatusOr<std::optional<RequestClass>> hint = DecodeClassHint(req.class_hint());
  if (!hint.ok()) return hint.status();
  classify::RequestFeatures f;
  f.rpc = rpc;
  f.hint = *hint;
  f.model = req.model();
  f.max_tokens = req.sampling().max_tokens();
  f.latency_budget_ms = req.latency_budget_ms();
  if (count_with != nullptr) {
    switch (req.input_case()) {
      case v1::GenerateRequest::kPrompt:
        f.prompt_tokens = CountText(*count_with, req.prompt(), true);
        break;
      case v1::GenerateRequest::kMessages:
        for (const auto& m : req.messages().messages()) f.prompt_tokens += CountText(*count_with, m.content(), false);
        break;
      case v1::GenerateRequest::kPromptTokenIds:
        f.prompt_tokens = req.prompt_token_ids().ids_size();
        break;
      case v1::GenerateRequest::INPUT_NOT_SET:
        break;
    }
  }
  return f;
}

StatusOr<classify::RequestFeatures> RecommendFeatures(const v1::RecommendRequest& req, const Tokenizer* count_with) {
  StatusOr<std::optional<RequestClass>> hint = DecodeClassHint(req.class_hint());
  if (!hint.ok()) return hint.status();
  classify::RequestFeatures f;
  f.rpc = classify::Rpc::kRecommend;
  f.hint = *hint;
  f.model = req.model();
  f.candidates = req.candidates_size();
  f.latency_budget_ms = req.latency_budget_ms();
  if (count_with != nullptr) {
    f.prompt_tokens = CountText(*count_with, req.context(), true);
    for (const auto& c : req.candidates()) f.candidate_tokens += CountText(*count_with, c.text(), false);
  }
  return f;
}

Status ValidateRequestId(const std::string& request_id, size_t max_bytes) {
  if (request_id.size() > max_bytes) {
    return Bad("request_id", "must be at most " + std::to_string(max_bytes) +
                                 " bytes (server.max_request_id_bytes), got " + std::to_string(request_id.size()));
  }
  return Status::Ok();
}

Status PrecheckGenerate(const v1::GenerateRequest& req, const LimitsConfig& limits, size_t max_bytes_per_token) {
  const v1::SamplingParams& s = req.sampling();
  if (s.stop_size() > limits.max_stop_strings) {
    return Bad("sampling.stop", "at most " + std::to_string(limits.max_stop_strings) +
                                    " stop strings (limits.max_stop_strings), got " + std::to_string(s.stop_size()));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).size() > static_cast<size_t>(limits.max_stop_string_bytes)) {
      return Bad("sampling.stop[" + std::to_string(i) + "]",
                 "must be at most " + std::to_string(limits.max_stop_string_bytes) +
                     " bytes (limits.max_stop_string_bytes), got " + std::to_string(s.stop(i).size()));
    }
  }
  switch (req.input_case()) {
    case v1::GenerateRequest::kPrompt:
      return CheckBytes(req.prompt().size(), limits.max_prompt_tokens, max_bytes_per_token, "prompt",
                        "max_prompt_tokens");
    case v1::GenerateRequest::kMessages: {
      size_t bytes = 0;
      for (const auto& m : req.messages().messages()) bytes += m.content().size();
      return CheckBytes(bytes, limits.max_prompt_tokens, max_bytes_per_token, "messages.messages", "max_prompt_tokens");
    }
    case v1::GenerateRequest::kPromptTokenIds:
      return CheckTokens(req.prompt_token_ids().ids_size(), limits.max_prompt_tokens, "prompt_token_ids.ids",
                         "max_prompt_tokens");
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  return Status::Ok();
}

Status PrecheckRecommend(const v1::RecommendRequest& req, const LimitsConfig& limits, size_t max_bytes_per_token) {
  if (req.candidates_size() > limits.max_candidates) {
    return Bad("candidates", std::to_string(req.candidates_size()) + " exceeds the limit of " +
                                 std::to_string(limits.max_candidates) + " (limits.max_candidates)");
  }
  if (Status s = CheckBytes(req.context().size(), limits.max_context_tokens, max_bytes_per_token, "context",
                            "max_context_tokens");
      !s.ok()) {
    return s;
  }
  size_t total = 0;
  for (int i = 0; i < req.candidates_size(); ++i) {
    const size_t bytes = req.candidates(i).text().size();
    if (Status s = CheckBytes(bytes, limits.max_candidate_tokens, max_bytes_per_token,
                              "candidates[" + std::to_string(i) + "].text", "max_candidate_tokens");
        !s.ok()) {
      return s;
    }
    total += bytes;
  }
  return CheckBytes(total, limits.max_total_candidate_tokens, max_bytes_per_token, "candidates",
                    "max_total_candidate_tokens");
}

StatusOr<SamplingParams> DecodeSampling(const v1::SamplingParams& s) {
  SamplingParams p;
  if (!(std::isfinite(s.temperature()) && s.temperature() >= 0.0f)) {
    return Bad("sampling.temperature", "must be >= 0, got " + Num(s.temperature()));
  }
  p.temperature = s.temperature();
  if (s.top_k() < 0) return Bad("sampling.top_k", "must be >= 0, got " + std::to_string(s.top_k()));
  p.top_k = s.top_k();
  if (!(s.top_p() >= 0.0f && s.top_p() <= 1.0f))
    return Bad("sampling.top_p", "must be in [0, 1], got " + Num(s.top_p()));
  p.top_p = s.top_p() == 0.0f ? 1.0f : s.top_p();
  if (!(s.min_p() >= 0.0f && s.min_p() <= 1.0f))
    return Bad("sampling.min_p", "must be in [0, 1], got " + Num(s.min_p()));
  p.min_p = s.min_p();
  if (!(std::isfinite(s.repetition_penalty()) && s.repetition_penalty() >= 0.0f)) {
    return Bad("sampling.repetition_penalty", "must be >= 0 (0 = off), got " + Num(s.repetition_penalty()));
  }
  p.repetition_penalty = s.repetition_penalty() == 0.0f ? 1.0f : s.repetition_penalty();
  if (!(s.presence_penalty() >= -2.0f && s.presence_penalty() <= 2.0f)) {
    return Bad("sampling.presence_penalty", "must be in [-2, 2], got " + Num(s.presence_penalty()));
  }
  p.presence_penalty = s.presence_penalty();
  if (!(s.frequency_penalty() >= -2.0f && s.frequency_penalty() <= 2.0f)) {
    return Bad("sampling.frequency_penalty", "must be in [-2, 2], got " + Num(s.frequency_penalty()));
  }
  p.frequency_penalty = s.frequency_penalty();
  if (s.top_logprobs() < 0 || s.top_logprobs() > kMaxTopLogprobs) {
    return Bad("sampling.top_logprobs",
               "must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " + std::to_string(s.top_logprobs()));
  }
  p.top_logprobs = s.top_logprobs();
  if (s.has_seed()) {
    p.seed = s.seed();
    p.has_seed = true;
  }
  return p;
}

StatusOr<GenerateRequest> DecodeGenerate(const v1::GenerateRequest& req, const ServingPool& pool) {
  if (Status s = PrecheckGenerate(req, pool.limits, pool.tokenizer->max_bytes_per_token()); !s.ok()) return s;
  StatusOr<SamplingParams> sampling = DecodeSampling(req.sampling());
  if (!sampling.ok()) return sampling.status();
  const v1::SamplingParams& s = req.sampling();
  if (s.max_tokens() < 0) return Bad("sampling.max_tokens", "must be >= 0, got " + std::to_string(s.max_tokens()));
  if (s.max_tokens() > pool.limits.max_tokens) {
    return Bad("sampling.max_tokens",
               "must be <= " + std::to_string(pool.limits.max_tokens) + ", got " + std::to_string(s.max_tokens()));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty()) return Bad("sampling.stop[" + std::to_string(i) + "]", "must not be empty");
  }

  std::string field;
  StatusOr<std::vector<TokenId>> prompt = DecodeInput(req, pool, &field);
  if (!prompt.ok()) return prompt.status();
  if (Status st = CheckTokens(prompt->size(), pool.limits.max_prompt_tokens, field, "max_prompt_tokens"); !st.ok()) {
    return st;
  }
  if (static_cast<int64_t>(prompt->size()) >= pool.max_model_len) {
    return Bad(field, std::to_string(prompt->size()) + " tokens leave no room to generate (model context length " +
                          std::to_string(pool.max_model_len) + ")");
  }

  GenerateRequest out;
  out.prompt = std::move(prompt).value();
  out.sampling = *sampling;
  out.max_tokens = s.max_tokens() == 0 ? pool.limits.default_max_tokens : s.max_tokens();
  out.stop.assign(s.stop().begin(), s.stop().end());
  out.ignore_eos = s.ignore_eos();
  if (!out.ignore_eos && pool.tokenizer->eos_id().has_value()) out.stop_token_ids.push_back(*pool.tokenizer->eos_id());
  return out;
}

StatusOr<RecommendRequest> DecodeRecommend(const v1::RecommendRequest& req, const ServingPool& pool) {
  if (req.context().empty()) return Bad("context", "must not be empty");
  if (req.candidates().empty()) return Bad("candidates", "must not be empty");
  if (Status s = PrecheckRecommend(req, pool.limits, pool.tokenizer->max_bytes_per_token()); !s.ok()) return s;
  if (req.top_k() < 0) return Bad("top_k", "must be >= 0, got " + std::to_string(req.top_k()));

  RecommendRequest out;
  StatusOr<std::vector<TokenId>> context = EncodeWithBos(*pool.tokenizer, req.context(), "context");
  if (!context.ok()) return context.status();
  if (Status s = CheckTokens(context->size(), pool.limits.max_context_tokens, "context", "max_context_tokens");
      !s.ok()) {
    return s;
  }
  out.context = std::move(context).value();

  std::unordered_map<uint64_t, int> seen;
  seen.reserve(req.candidates_size());
  EncodeOptions opts;
  opts.add_special_tokens = false;
  out.candidates.reserve(req.candidates_size());
  size_t total_candidate_tokens = 0;
  for (int i = 0; i < req.candidates_size(); ++i) {
    const v1::Candidate& c = req.candidates(i);
    const std::string field = "candidates[" + std::to_string(i) + "]";
    if (auto [it, fresh] = seen.emplace(c.item_id(), i); !fresh) {
      return Bad(field + ".item_id",
                 std::to_string(c.item_id()) + " repeats candidates[" + std::to_string(it->second) + "].item_id");
    }
    if (c.text().empty()) return Bad(field + ".text", "must not be empty");
    StatusOr<std::vector<TokenId>> ids = pool.tokenizer->Encode(c.text(), opts);
    if (!ids.ok()) return Bad(field + ".text", ids.status().message());
    if (ids->empty()) return Bad(field + ".text", "encodes to no tokens");
    if (Status s = CheckTokens(ids->size(), pool.limits.max_candidate_tokens, field + ".text", "max_candidate_tokens");
        !s.ok()) {
      return s;
    }
    total_candidate_tokens += ids->size();
    if (static_cast<int64_t>(total_candidate_tokens) > pool.limits.max_total_candidate_tokens) {
      return Bad("candidates", "candidates[0.." + std::to_string(i) + "] are already " +
                                   std::to_string(total_candidate_tokens) + " tokens, over the limit of " +
                                   std::to_string(pool.limits.max_total_candidate_tokens) +
                                   " (limits.max_total_candidate_tokens)");
    }
    const int64_t total = static_cast<int64_t>(out.context.size() + ids->size());
    if (total > pool.max_model_len) {
      return Bad(field + ".text", "context + candidate is " + std::to_string(total) +
                                      " tokens, over the model context length " + std::to_string(pool.max_model_len));
    }
    out.candidates.push_back(std::move(ids).value());
  }
  out.top_k = req.top_k();
  out.rank_by = req.score_by_mean() ? ScoreBy::kMeanLogprob : ScoreBy::kSumLogprob;
  return out;
}

StatusOr<double> DecodeRankingOptions(const v1::RecommendRequest& req) {
  if (!v1::ResponseEncoding_IsValid(req.encoding())) {
    return Bad("encoding", "unknown value " + std::to_string(req.encoding()));
  }
  if (req.score_precision() == 0.0) return kDefaultScorePrecision;
  if (Status s = ValidateScorePrecision(req.score_precision()); !s.ok()) return s;
  return req.score_precision();
}

}  // namespace inferd::server
