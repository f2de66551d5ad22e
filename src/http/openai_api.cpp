#include "http/openai_api.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

namespace inferd::http {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 32;
constexpr size_t kMaxEcho = 64;  // longest piece of the caller's input an error message repeats

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Short(std::string_view s) {
  if (s.size() <= kMaxEcho) return std::string(s);
  return std::string(s.substr(0, kMaxEcho)) + "...";
}

Status Bad(const std::string& field, const std::string& reason) {
  return InvalidArgument(field + ": " + reason);
}

// Nesting depth of `body` outside strings, stopping once past the limit.
bool TooDeep(const std::string& body) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

StatusOr<json> ParseObject(const std::string& body) {
  if (body.empty()) return Bad("body", "empty; expected a JSON object");
  if (TooDeep(body)) return Bad("body", "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    return Bad("body", "malformed JSON at byte " + std::to_string(e.byte));
  }
  if (!j.is_object()) return Bad("body", "expected a JSON object");
  return j;
}

// Rejects keys outside `allowed`, naming the first.
Status CheckKeys(const json& obj, const std::set<std::string_view>& allowed, const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    if (allowed.count(key) == 0) {
      return Bad(where + Short(key), "unrecognized request argument");
    }
  }
  return Status::Ok();
}

const char* TypeName(const json& v) {
  return v.type_name();
}

Status WrongType(const std::string& field, const char* want, const json& v) {
  return Bad(field, std::string("expected ") + want + ", got " + TypeName(v));
}

// Each reader leaves `out` alone when the key is absent or null.
Status ReadString(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return WrongType(key, "a string", *it);
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadBool(const json& obj, const char* key, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return WrongType(key, "a boolean", *it);
  *out = it->get<bool>();
  return Status::Ok();
}

Status ReadInt(const json& obj, const char* key, int64_t min, int64_t max, std::optional<int64_t>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return WrongType(key, "an integer", *it);
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Bad(key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                        std::to_string(it->get<uint64_t>()));
  }
  const int64_t v = it->get<int64_t>();
  if (v < min || v > max) {
    return Bad(key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + std::to_string(v));
  }
  *out = v;
  return Status::Ok();
}

Status ReadFloat(const json& obj, const char* key, float* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) return WrongType(key, "a number", *it);
  const double v = it->get<double>();
  if (!std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max()) return Bad(key, "out of range");
  *out = static_cast<float>(v);
  return Status::Ok();
}

#define RETURN_IF_ERROR(expr)           \
  do {                                  \
    if (Status _s = (expr); !_s.ok()) { \
      return _s;                        \
    }                                   \
  } while (0)

// "stop": a string or an array of strings.
Status ReadStop(const json& obj, v1::SamplingParams* s) {
  auto it = obj.find("stop");
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (it->is_string()) {
    s->add_stop(it->get<std::string>());
    return Status::Ok();
  }
  if (!it->is_array()) return WrongType("stop", "a string or an array of strings", *it);
  for (size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_string()) return WrongType("stop[" + std::to_string(i) + "]", "a string", v);
    s->add_stop(v.get<std::string>());
  }
  return Status::Ok();
}

// "prompt": a string, or one prompt as an array of token ids; batches (arrays of prompts) only of one.
Status ReadPrompt(const json& obj, v1::GenerateRequest* req) {
  auto it = obj.find("prompt");
  if (it == obj.end() || it->is_null()) return Bad("prompt", "required");
  const json* p = &*it;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
  if (p->is_string()) {
    req->set_prompt(p->get<std::string>());
    return Status::Ok();
  }
  if (!p->is_array()) return WrongType("prompt", "a string or an array of token ids", *p);
  if (p->empty()) return Bad("prompt", "must not be empty");
  if ((*p)[0].is_string() || (*p)[0].is_array()) {
    return Bad("prompt", "batched prompts are not supported; send one prompt per request");
  }
  v1::TokenIds* ids = req->mutable_prompt_token_ids();
  for (size_t i = 0; i < p->size(); ++i) {
    const json& v = (*p)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Bad("prompt[" + std::to_string(i) + "]", "expected a token id (a non-negative integer)");
    }
    ids->add_ids(static_cast<int32_t>(v.get<int64_t>()));
  }
  return Status::Ok();
}

// "messages": [{role, content}], content a string or an array of {"type": "text", "text"} parts.
Status ReadMessages(const json& obj, v1::GenerateRequest* req) {
  auto it = obj.find("messages");
  if (it == obj.end() || it->is_null()) return Bad("messages", "required");
  if (!it->is_array()) return WrongType("messages", "an array of messages", *it);
  if (it->empty()) return Bad("messages", "must not be empty");
  v1::ChatMessages* out = req->mutable_messages();
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const json& m = (*it)[i];
    if (!m.is_object()) return WrongType(where, "an object", m);
    RETURN_IF_ERROR(CheckKeys(m, {"role", "content", "name"}, where + "."));
    v1::ChatMessage* msg = out->add_messages();
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return Bad(where + ".role", "required, a string");
    // OpenAI's newer name for the system role.
    msg->set_role(role->get<std::string>() == "developer" ? "system" : role->get<std::string>());
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) continue;
    if (content->is_string()) {
      msg->set_content(content->get<std::string>());
      continue;
    }
    if (!content->is_array()) return WrongType(where + ".content", "a string or an array of text parts", *content);
    for (size_t k = 0; k < content->size(); ++k) {
      const std::string part_where = where + ".content[" + std::to_string(k) + "]";
      const json& part = (*content)[k];
      if (!part.is_object()) return WrongType(part_where, "an object", part);
      auto type = part.find("type");
      if (type == part.end() || !type->is_string() || type->get<std::string>() != "text") {
        return Bad(part_where + ".type", "only \"text\" parts are supported");
      }
      auto text = part.find("text");
      if (text == part.end() || !text->is_string()) return Bad(part_where + ".text", "required, a string");
      msg->mutable_content()->append(text->get<std::string>());
    }
  }
  return Status::Ok();
}

Status ReadClassHint(const json& obj, int* out) {
  std::string hint;
  RETURN_IF_ERROR(ReadString(obj, "class_hint", &hint));
  if (hint.empty()) return Status::Ok();
  if (hint == "realtime") {
    *out = v1::REQUEST_CLASS_REALTIME;
  } else if (hint == "complex") {
    *out = v1::REQUEST_CLASS_COMPLEX;
  } else {
    return Bad("class_hint", "must be \"realtime\" or \"complex\", got \"" + Short(hint) + "\"");
  }
  return Status::Ok();
}

// Fields both completions and chat take, and the extensions.
Status ReadCommon(const json& obj, GenerateCall* call) {
  v1::GenerateRequest& req = call->request;
  v1::SamplingParams* s = req.mutable_sampling();
  std::string model;
  RETURN_IF_ERROR(ReadString(obj, "model", &model));
  req.set_model(model);
  std::optional<int64_t> n;
  RETURN_IF_ERROR(ReadInt(obj, "n", 1, std::numeric_limits<int32_t>::max(), &n));
  if (n && *n != 1) return Bad("n", "only 1 choice per request is supported, got " + std::to_string(*n));
  RETURN_IF_ERROR(ReadBool(obj, "stream", &call->stream));
  auto opts = obj.find("stream_options");
  if (opts != obj.end() && !opts->is_null()) {
    if (!call->stream) return Bad("stream_options", "only allowed with stream: true");
    if (!opts->is_object()) return WrongType("stream_options", "an object", *opts);
    RETURN_IF_ERROR(CheckKeys(*opts, {"include_usage", "continuous_usage_stats"}, "stream_options."));
    auto usage = opts->find("include_usage");
    if (usage != opts->end() && !usage->is_null()) {
      if (!usage->is_boolean()) return WrongType("stream_options.include_usage", "a boolean", *usage);
      call->include_usage = usage->get<bool>();
    }
  }
  float temperature = 1.0f;  // OpenAI's default; 0 = greedy
  RETURN_IF_ERROR(ReadFloat(obj, "temperature", &temperature));
  s->set_temperature(temperature);
  float top_p = 1.0f;
  RETURN_IF_ERROR(ReadFloat(obj, "top_p", &top_p));
  s->set_top_p(top_p);
  float f = 0.0f;
  RETURN_IF_ERROR(ReadFloat(obj, "presence_penalty", &f));
  s->set_presence_penalty(f);
  f = 0.0f;
  RETURN_IF_ERROR(ReadFloat(obj, "frequency_penalty", &f));
  s->set_frequency_penalty(f);
  f = 0.0f;
  RETURN_IF_ERROR(ReadFloat(obj, "min_p", &f));
  s->set_min_p(f);
  f = 0.0f;
  RETURN_IF_ERROR(ReadFloat(obj, "repetition_penalty", &f));
  s->set_repetition_penalty(f);
  std::optional<int64_t> v;
  RETURN_IF_ERROR(ReadInt(obj, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &v));
  if (v) s->set_seed(static_cast<uint64_t>(*v));
  v.reset();
  RETURN_IF_ERROR(ReadInt(obj, "top_k", -1, std::numeric_limits<int32_t>::max(), &v));
  if (v) s->set_top_k(*v < 0 ? 0 : static_cast<int32_t>(*v));  // -1 = off, as vLLM
  v.reset();
  RETURN_IF_ERROR(ReadInt(obj, "max_tokens", 1, std::numeric_limits<int32_t>::max(), &v));
  std::optional<int64_t> mct;
  RETURN_IF_ERROR(ReadInt(obj, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), &mct));
  if (v && mct && *v != *mct) return Bad("max_completion_tokens", "differs from max_tokens; send one of them");
  if (mct) {
    v = mct;
    call->max_completion_tokens = true;
  }
  if (v) s->set_max_tokens(static_cast<int32_t>(*v));
  bool ignore_eos = false;
  RETURN_IF_ERROR(ReadBool(obj, "ignore_eos", &ignore_eos));
  s->set_ignore_eos(ignore_eos);
  RETURN_IF_ERROR(ReadStop(obj, s));
  int hint = 0;
  RETURN_IF_ERROR(ReadClassHint(obj, &hint));
  req.set_class_hint(static_cast<v1::RequestClass>(hint));
  v.reset();
  RETURN_IF_ERROR(ReadInt(obj, "latency_budget_ms", 0, std::numeric_limits<uint32_t>::max(), &v));
  if (v) req.set_latency_budget_ms(static_cast<uint32_t>(*v));
  auto bias = obj.find("logit_bias");
  if (bias != obj.end() && !bias->is_null() && !(bias->is_object() && bias->empty())) {
    return Bad("logit_bias", "not supported");
  }
  std::string user;
  RETURN_IF_ERROR(ReadString(obj, "user", &user));  // accepted and not used
  return Status::Ok();
}

// inferd.v1 field prefixes -> the OpenAI name, per endpoint.
std::vector<std::pair<std::string_view, std::string_view>> FieldNames(Endpoint endpoint, bool max_completion_tokens) {
  if (endpoint == Endpoint::kRerank) return {{"context", "query"}, {"candidates", "documents"}, {"top_k", "top_n"}};
  return {
      {"sampling.max_tokens", max_completion_tokens ? "max_completion_tokens" : "max_tokens"},
      {"sampling.top_logprobs", endpoint == Endpoint::kChat ? "top_logprobs" : "logprobs"},
      {"sampling.", ""},
      {"prompt_token_ids", "prompt"},
      {"max_tokens", max_completion_tokens ? "max_completion_tokens" : "max_tokens"},
  };
}

const char* TypeOf(int http_status) {
  switch (http_status) {
    case 400:
    case 404:
    case 405:
    case 408:
    case 413:
    case 431:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    case 504:
      return "timeout_error";
    default:
      return "server_error";
  }
}

json UsageJson(const v1::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens()},
          {"completion_tokens", u.generated_tokens()},
          {"total_tokens", u.prompt_tokens() + u.generated_tokens()},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens()}}}};
}

json Bytes(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

// Valid UTF-8 text of a token for JSON (invalid bytes replaced), as the official API does in `token`.
std::string Printable(const std::string& bytes) {
  return json(bytes).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Unquote(const std::string& dumped) {
  return json::parse(dumped).get<std::string>();
}

// Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
json ChatLogprobs(const google::protobuf::RepeatedPtrField<v1::TokenInfo>& tokens, const TokenText& text) {
  json content = json::array();
  for (const v1::TokenInfo& t : tokens) {
    const std::string b = text(t.token_id());
    json top = json::array();
    for (const v1::TokenLogprob& alt : t.top()) {
      const std::string ab = text(alt.token_id());
      top.push_back({{"token", Unquote(Printable(ab))}, {"logprob", alt.logprob()}, {"bytes", Bytes(ab)}});
    }
    content.push_back(
        {{"token", Unquote(Printable(b))}, {"logprob", t.logprob()}, {"bytes", Bytes(b)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// Completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset}; offsets count from `offset`.
json CompletionLogprobs(const google::protobuf::RepeatedPtrField<v1::TokenInfo>& tokens, const TokenText& text,
                        bool with_top, size_t* offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const v1::TokenInfo& t : tokens) {
    const std::string b = text(t.token_id());
    toks.push_back(Unquote(Printable(b)));
    lps.push_back(t.logprob());
    offs.push_back(*offset);
    *offset += b.size();
    json top = json::object();
    for (const v1::TokenLogprob& alt : t.top()) top[Unquote(Printable(text(alt.token_id())))] = alt.logprob();
    tops.push_back(top);
  }
  return {{"tokens", toks},
          {"token_logprobs", lps},
          {"top_logprobs", with_top ? tops : json(nullptr)},
          {"text_offset", offs}};
}

}  // namespace

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kCancelled:
      return 499;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

ApiError ToApiError(const Status& status, Endpoint endpoint, bool max_completion_tokens) {
  ApiError e = HttpError(HttpStatusOf(status.code()), status.message());
  const size_t colon = e.message.find(": ");
  std::string field = colon == std::string::npos ? "" : e.message.substr(0, colon);
  const bool is_field = !field.empty() && field.find(' ') == std::string::npos;
  if (!is_field) return e;
  for (const auto& [from, to] : FieldNames(endpoint, max_completion_tokens)) {
    if (field.compare(0, from.size(), from) != 0) continue;
    const char next = field.size() > from.size() ? field[from.size()] : '\0';
    if (from.back() != '.' && next != '\0' && next != '[' && next != '.') continue;
    field = std::string(to) + field.substr(from.size());
    break;
  }
  e.message = field + e.message.substr(colon);
  const size_t bracket = field.find_first_of("[.");
  e.param = field.substr(0, bracket);
  if (e.param == "body") e.param.clear();
  if (status.code() == StatusCode::kNotFound && e.param == "model") e.code = "model_not_found";
  return e;
}

ApiError HttpError(int http_status, const std::string& message) {
  ApiError e;
  e.http_status = http_status;
  e.message = message;
  e.type = TypeOf(http_status);
  switch (http_status) {
    case 401:
      e.code = "invalid_api_key";
      break;
    case 429:
      e.code = "rate_limit_exceeded";
      break;
    case 503:
      e.code = "service_unavailable";
      break;
    case 504:
      e.code = "deadline_exceeded";
      break;
    default:
      break;
  }
  return e;
}

std::string ErrorJson(const ApiError& e) {
  auto str_or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return Dump(
      {{"error",
        {{"message", e.message}, {"type", e.type}, {"param", str_or_null(e.param)}, {"code", str_or_null(e.code)}}}});
}

StatusOr<GenerateCall> ParseGenerate(Endpoint endpoint, const std::string& body) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& obj = *parsed;
  GenerateCall call;
  call.endpoint = endpoint;
  const bool chat = endpoint == Endpoint::kChat;
  static const std::set<std::string_view> kCommon = {
      "model", "n", "stream", "stream_options", "temperature", "top_p", "presence_penalty", "frequency_penalty", "seed",
      "max_tokens", "stop", "logit_bias", "user", "logprobs",
      // extensions
      "top_k", "min_p", "repetition_penalty", "ignore_eos", "class_hint", "latency_budget_ms"};
  std::set<std::string_view> allowed = kCommon;
  if (chat) {
    allowed.insert({"messages", "max_completion_tokens", "top_logprobs"});
  } else {
    allowed.insert({"prompt", "echo", "best_of", "suffix"});
  }
  RETURN_IF_ERROR(CheckKeys(obj, allowed, ""));
  RETURN_IF_ERROR(ReadCommon(obj, &call));
  v1::SamplingParams* s = call.request.mutable_sampling();
  if (chat) {
    RETURN_IF_ERROR(ReadMessages(obj, &call.request));
    RETURN_IF_ERROR(ReadBool(obj, "logprobs", &call.logprobs));
    std::optional<int64_t> top;
    RETURN_IF_ERROR(ReadInt(obj, "top_logprobs", 0, std::numeric_limits<int32_t>::max(), &top));
    if (top && !call.logprobs) return Bad("top_logprobs", "requires logprobs: true");
    if (top) s->set_top_logprobs(static_cast<int32_t>(*top));
  } else {
    RETURN_IF_ERROR(ReadPrompt(obj, &call.request));
    // Completions: logprobs is the number of alternatives (0 = only the chosen token's).
    std::optional<int64_t> top;
    RETURN_IF_ERROR(ReadInt(obj, "logprobs", 0, std::numeric_limits<int32_t>::max(), &top));
    call.logprobs = top.has_value();
    if (top) s->set_top_logprobs(static_cast<int32_t>(*top));
    bool echo = false;
    RETURN_IF_ERROR(ReadBool(obj, "echo", &echo));
    if (echo) return Bad("echo", "not supported");
    std::optional<int64_t> best_of;
    RETURN_IF_ERROR(ReadInt(obj, "best_of", 1, std::numeric_limits<int32_t>::max(), &best_of));
    if (best_of && *best_of != 1) return Bad("best_of", "only 1 is supported");
    std::string suffix;
    RETURN_IF_ERROR(ReadString(obj, "suffix", &suffix));
    if (!suffix.empty()) return Bad("suffix", "not supported");
  }
  return call;
}

StatusOr<RerankCall> ParseRerank(const std::string& body) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& obj = *parsed;
  RETURN_IF_ERROR(CheckKeys(
      obj, {"model", "query", "documents", "top_n", "return_documents", "class_hint", "latency_budget_ms"}, ""));
  RerankCall call;
  v1::RecommendRequest& req = call.request;
  std::string s;
  RETURN_IF_ERROR(ReadString(obj, "model", &s));
  req.set_model(s);
  auto query = obj.find("query");
  if (query == obj.end() || query->is_null()) return Bad("query", "required");
  if (!query->is_string()) return WrongType("query", "a string", *query);
  req.set_context(query->get<std::string>());
  auto docs = obj.find("documents");
  if (docs == obj.end() || docs->is_null()) return Bad("documents", "required");
  if (!docs->is_array()) return WrongType("documents", "an array of strings", *docs);
  for (size_t i = 0; i < docs->size(); ++i) {
    const json& d = (*docs)[i];
    const std::string where = "documents[" + std::to_string(i) + "]";
    std::string text;
    if (d.is_string()) {
      text = d.get<std::string>();
    } else if (d.is_object() && d.contains("text") && d["text"].is_string()) {
      RETURN_IF_ERROR(CheckKeys(d, {"text"}, where + "."));
      text = d["text"].get<std::string>();
    } else {
      return WrongType(where, "a string or {\"text\": string}", d);
    }
    v1::Candidate* c = req.add_candidates();
    c->set_item_id(i);
    c->set_text(text);
    call.documents.push_back(std::move(text));
  }
  std::optional<int64_t> top_n;
  RETURN_IF_ERROR(ReadInt(obj, "top_n", 1, std::numeric_limits<int32_t>::max(), &top_n));
  if (top_n) req.set_top_k(static_cast<int32_t>(*top_n));
  RETURN_IF_ERROR(ReadBool(obj, "return_documents", &call.return_documents));
  int hint = 0;
  RETURN_IF_ERROR(ReadClassHint(obj, &hint));
  req.set_class_hint(static_cast<v1::RequestClass>(hint));
  std::optional<int64_t> budget;
  RETURN_IF_ERROR(ReadInt(obj, "latency_budget_ms", 0, std::numeric_limits<uint32_t>::max(), &budget));
  if (budget) req.set_latency_budget_ms(static_cast<uint32_t>(*budget));
  req.set_encoding(v1::RESPONSE_ENCODING_PLAIN);
  req.set_score_by_mean(true);
  return call;
}

std::string FinishReasonName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP:
    case v1::FINISH_REASON_STOP_STRING:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
    case v1::FINISH_REASON_CONTEXT:
      return "length";
    default:
      return "";
  }
}

std::string CompletionJson(const GenerateCall& call, const ResponseMeta& meta, const v1::GenerateResponse& resp,
                           const TokenText& token_text) {
  const bool chat = call.endpoint == Endpoint::kChat;
  json choice = {{"index", 0}, {"finish_reason", FinishReasonName(resp.finish_reason())}};
  size_t offset = 0;
  json logprobs = nullptr;
  if (call.logprobs) {
    logprobs = chat
                   ? ChatLogprobs(resp.tokens(), token_text)
                   : CompletionLogprobs(resp.tokens(), token_text, call.request.sampling().top_logprobs() > 0, &offset);
  }
  choice["logprobs"] = logprobs;
  if (chat) {
    choice["message"] = {{"role", "assistant"}, {"content", resp.text()}};
  } else {
    choice["text"] = resp.text();
  }
  const json out = {{"id", meta.id},
                    {"object", chat ? "chat.completion" : "text_completion"},
                    {"created", meta.created},
                    {"model", meta.model},
                    {"choices", json::array({choice})},
                    {"usage", UsageJson(resp.usage())}};
  return Dump(out);
}

StreamEncoder::StreamEncoder(const GenerateCall& call, ResponseMeta meta, TokenText token_text)
    : call_(call), meta_(std::move(meta)), token_text_(std::move(token_text)) {}

std::string StreamEncoder::Chunk(const std::string& text, const v1::GenerateDelta& delta,
                                 const std::string& finish) const {
  const bool chat = call_.endpoint == Endpoint::kChat;
  json choice = {{"index", 0}, {"finish_reason", finish.empty() ? json(nullptr) : json(finish)}};
  json logprobs = nullptr;
  if (call_.logprobs && delta.tokens_size() > 0) {
    size_t offset = 0;
    logprobs =
        chat ? ChatLogprobs(delta.tokens(), token_text_)
             : CompletionLogprobs(delta.tokens(), token_text_, call_.request.sampling().top_logprobs() > 0, &offset);
  }
  choice["logprobs"] = logprobs;
  if (chat) {
    json d = json::object();
    if (first_) d["role"] = "assistant";
    if (!text.empty() || first_) d["content"] = text;
    choice["delta"] = d;
  } else {
    choice["text"] = text;
  }
  json out = {{"id", meta_.id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", meta_.created},
              {"model", meta_.model},
              {"choices", json::array({choice})}};
  if (call_.include_usage) out["usage"] = nullptr;
  return "data: " + Dump(out) + "\n\n";
}

std::string StreamEncoder::Encode(const v1::GenerateDelta& delta) {
  if (delta.has_usage()) usage_ = delta.usage();
  const std::string finish = FinishReasonName(delta.finish_reason());
  if (delta.text().empty() && delta.tokens_size() == 0 && finish.empty() && !first_) return "";
  std::string out = Chunk(delta.text(), delta, finish);
  first_ = false;
  return out;
}

std::string StreamEncoder::Done() const {
  std::string out;
  if (call_.include_usage) {
    const json chunk = {{"id", meta_.id},
                        {"object", call_.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
                        {"created", meta_.created},
                        {"model", meta_.model},
                        {"choices", json::array()},
                        {"usage", UsageJson(usage_)}};
    out += "data: " + Dump(chunk) + "\n\n";
  }
  return out + "data: [DONE]\n\n";
}

std::string StreamEncoder::Error(const ApiError& error) {
  return "data: " + ErrorJson(error) + "\n\ndata: [DONE]\n\n";
}

std::string RerankJson(const RerankCall& call, const ResponseMeta& meta, const v1::RecommendResponse& resp) {
  json results = json::array();
  for (const v1::ScoredItem& item : resp.plain().items()) {
    json r = {{"index", item.item_id()}, {"relevance_score", std::exp(item.mean_logprob())}};
    if (call.return_documents && item.item_id() < call.documents.size()) {
      r["document"] = {{"text", call.documents[item.item_id()]}};
    }
    results.push_back(std::move(r));
  }
  const int64_t total = resp.usage().prompt_tokens();
  return Dump({{"id", meta.id},
               {"model", meta.model},
               {"results", results},
               {"usage", {{"prompt_tokens", total}, {"total_tokens", total}}}});
}

std::string ModelJson(const ModelInfo& m, int64_t created) {
  json j = {{"id", m.id}, {"object", "model"}, {"created", created}, {"owned_by", "inferd"}};
  if (m.max_model_len > 0) j["max_model_len"] = m.max_model_len;
  return Dump(j);
}

std::string ModelsJson(const std::vector<ModelInfo>& models, int64_t created) {
  json data = json::array();
  for (const ModelInfo& m : models) data.push_back(json::parse(ModelJson(m, created)));
  return Dump({{"object", "list"}, {"data", data}});
}

}  // namespace inferd::http
