// The OpenAI-compatible request and response shapes: JSON -> inferd.v1 request messages and back.
// Pure functions of their inputs; no I/O. Only JSON-level checks live here (types, n = 1, stream_options
// only with stream, unknown fields); ranges and limits are checked once, by server/request_decode, for
// gRPC and HTTP alike, and its messages are rewritten here to name the OpenAI field (ToApiError).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "inferd/status.h"
#include "inferd/v1/inferd.pb.h"

namespace inferd::http {

enum class Endpoint { kCompletions, kChat, kRerank };

// An error in the OpenAI shape {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int http_status = 500;
  std::string message;
  std::string type;
  std::string param;  // the request field at fault; "" = null
  std::string code;   // "" = null
};

// The HTTP status for a gRPC-style code: INVALID_ARGUMENT/FAILED_PRECONDITION/OUT_OF_RANGE 400, NOT_FOUND 404,
// RESOURCE_EXHAUSTED 429, CANCELLED 499, UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 500.
int HttpStatusOf(StatusCode code);
// `status` (not OK) as an API error. A message "field: reason" whose field is an inferd.v1 field is
// rewritten to the endpoint's OpenAI name ("sampling.top_p: ..." -> "top_p: ...") and that name is `param`;
// `max_completion_tokens`: the request sent its limit under that name.
ApiError ToApiError(const Status& status, Endpoint endpoint, bool max_completion_tokens = false);
// An error the HTTP layer itself answers (unknown path, 413, ...): type from the status.
ApiError HttpError(int http_status, const std::string& message);
std::string ErrorJson(const ApiError& error);

// A parsed completions or chat request.
struct GenerateCall {
  Endpoint endpoint = Endpoint::kCompletions;
  v1::GenerateRequest request;  // model, prompt or messages, sampling, class_hint, latency_budget_ms
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage: a last chunk with usage and no choices
  bool logprobs = false;               // report the chosen tokens' log-probabilities
  bool max_completion_tokens = false;  // the limit came as max_completion_tokens (errors name it)
};

// INVALID_ARGUMENT naming the JSON field for malformed JSON, wrong types, n != 1, unsupported fields.
// Defaults as OpenAI's: temperature 1, top_p 1; max_tokens absent = the server's default.
// Extensions beside OpenAI's fields: top_k, min_p, repetition_penalty, ignore_eos (as vLLM), class_hint
// ("realtime" | "complex"), latency_budget_ms.
StatusOr<GenerateCall> ParseGenerate(Endpoint endpoint, const std::string& body);

// A parsed /v1/rerank request (query + documents, as the common rerank APIs): a Recommend with the query as
// context and document i as candidate item_id i, ranked by mean token log-probability.
struct RerankCall {
  v1::RecommendRequest request;
  std::vector<std::string> documents;
  bool return_documents = false;
};
StatusOr<RerankCall> ParseRerank(const std::string& body);

// The text of one token (its raw bytes; may be a partial UTF-8 sequence).
using TokenText = std::function<std::string(int32_t token_id)>;

struct ResponseMeta {
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  std::string model;    // as served
  int64_t created = 0;  // unix seconds
};

// "stop" (EOS or a stop string), "length" (max_tokens or the context), else "" (not a success).
std::string FinishReasonName(v1::FinishReason reason);

// The unary response body.
std::string CompletionJson(const GenerateCall& call, const ResponseMeta& meta, const v1::GenerateResponse& resp,
                           const TokenText& token_text);

// Server-sent events for a streamed completion: one `data: {...}` chunk per GenerateStream message with
// text or a finish reason, a usage chunk when asked for, then `data: [DONE]`.
class StreamEncoder {
 public:
  StreamEncoder(const GenerateCall& call, ResponseMeta meta, TokenText token_text);
  // The events for one message ("" when it carries nothing to send).
  std::string Encode(const v1::GenerateDelta& delta);
  // After the last message: the usage chunk (when asked for) and [DONE].
  std::string Done() const;
  // An error after the stream started: an event with the error object, then [DONE].
  static std::string Error(const ApiError& error);

 private:
  std::string Chunk(const std::string& text, const v1::GenerateDelta& delta, const std::string& finish) const;

  const GenerateCall& call_;
  const ResponseMeta meta_;
  const TokenText token_text_;
  bool first_ = true;
  v1::Usage usage_;
};

std::string RerankJson(const RerankCall& call, const ResponseMeta& meta, const v1::RecommendResponse& resp);

struct ModelInfo {
  std::string id;
  int32_t max_model_len = 0;  // 0 = unknown (an upstream's model)
};
std::string ModelsJson(const std::vector<ModelInfo>& models, int64_t created);
std::string ModelJson(const ModelInfo& model, int64_t created);

}  // namespace inferd::http
