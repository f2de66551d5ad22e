#include "http/openai_frontend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "http/openai_api.h"

namespace inferd::http {
namespace {

constexpr const char* kJson = "application/json";

// An HTTP request as the service core sees it.
class HttpCall final : public server::CallContext {
 public:
  // deadline: from the inferd-timeout-ms header or the config's default (nullopt: none).
  HttpCall(HttpExchange& ex, const HttpRequest& req, std::optional<TimePoint> deadline)
      : ex_(ex), variant_(req.header("inferd-variant")), deadline_(deadline) {}
  bool IsCancelled() override { return ex_.ClientGone(); }
  std::optional<TimePoint> deadline() const override { return deadline_; }
  std::string_view variant() const override { return variant_; }
  void Routed(const std::string& model, const server::ServingPool* pool) override {
    model_ = model;
    pool_ = pool;
  }

  const std::string& model() const { return model_; }
  // The bytes of one token in the serving pool's vocabulary; "" when an upstream served it.
  TokenText token_text() const {
    const server::ServingPool* pool = pool_;
    return [pool](int32_t id) -> std::string {
      if (pool == nullptr) return "";
      const TokenId ids[] = {id};
      return pool->tokenizer->Decode(ids);
    };
  }

 private:
  HttpExchange& ex_;
  const std::string variant_;
  const std::optional<TimePoint> deadline_;
  std::string model_;
  const server::ServingPool* pool_ = nullptr;
};

void SendError(HttpExchange& ex, const ApiError& e, std::chrono::milliseconds retry_after = {}) {
  HttpHeaders headers;
  if (e.http_status == 429) {
    const int64_t ms = std::max<int64_t>(1, retry_after.count());
    headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
    headers.emplace_back("retry-after-ms", std::to_string(ms));
  }
  ex.Send(e.http_status, kJson, ErrorJson(e), headers);
}

constexpr double kMaxTimeoutMs = 3.6e6;

// The request's deadline: inferd-timeout-ms when sent (a whole number of ms in [1, kMaxTimeoutMs]), else
// `default_ms` from now (0: none). INVALID_ARGUMENT naming the header for anything else.
StatusOr<std::optional<TimePoint>> Deadline(const HttpRequest& req, double default_ms) {
  const std::string& v = req.header("inferd-timeout-ms");
  double ms = default_ms;
  if (!v.empty()) {
    int64_t parsed = 0;
    bool ok = v.size() <= 7;
    for (char c : v) {
      ok = ok && c >= '0' && c <= '9';
      parsed = parsed * 10 + (c - '0');
    }
    if (!ok || parsed < 1 || parsed > kMaxTimeoutMs) {
      return InvalidArgument("inferd-timeout-ms: expected whole milliseconds in [1, 3600000], found '" +
                             Excerpt(v, 32) + "'");
    }
    ms = static_cast<double>(parsed);
  }
  if (ms <= 0) return std::optional<TimePoint>();
  return std::optional<TimePoint>(
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms)));
}

// The request_id for the core: the x-request-id header, when sent.
template <typename Req>
void TakeRequestId(const HttpRequest& req, Req* out) {
  const std::string& id = req.header("x-request-id");
  if (!id.empty()) out->set_request_id(id);
}

}  // namespace

OpenAiFrontend::OpenAiFrontend(const HttpConfig& config, server::InferenceService* service,
                               std::shared_ptr<const auth::Gate> gate)
    : service_(service),
      gate_(std::move(gate)),
      request_timeout_ms_(config.request_timeout_ms),
      created_(static_cast<int64_t>(std::time(nullptr))) {
  HttpHandlers handlers;
  handlers.handle = [this](const HttpRequest& req, HttpExchange& ex) { Handle(req, ex); };
  handlers.error_body = [](int status, const std::string& message) { return ErrorJson(HttpError(status, message)); };
  server_ = std::make_unique<HttpServer>(config, std::move(handlers));
}

OpenAiFrontend::~OpenAiFrontend() = default;

void OpenAiFrontend::Handle(const HttpRequest& req, HttpExchange& ex) {
  struct Route {
    const char* path;
    const char* method;
  };
  static const Route kRoutes[] = {{"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"},
                                  {"/v1/rerank", "POST"},      {"/v1/models", "GET"},
                                  {"/health", "GET"},          {"/ready", "GET"}};
  const std::string& path = req.path;
  const bool model_path = path.rfind("/v1/models/", 0) == 0;
  const Route* route = nullptr;
  for (const Route& r : kRoutes) {
    if (path == r.path || (model_path && std::string(r.path) == "/v1/models")) route = &r;
  }
  if (route == nullptr) {
    SendError(ex, HttpError(404, "no such endpoint: " + path.substr(0, 64)));
    return;
  }
  if (req.method != route->method) {
    ApiError e = HttpError(405, std::string("use ") + route->method + " for " + route->path);
    ex.Send(405, kJson, ErrorJson(e), {{"Allow", route->method}});
    return;
  }
  if (path == "/health") {
    ex.Send(200, kJson, R"({"status":"ok"})");
  } else if (path == "/ready") {
    if (service_->serving() && !service_->model_names().empty()) {
      ex.Send(200, kJson, R"({"status":"ready"})");
    } else {
      SendError(ex, HttpError(503, "not ready: models loading or warming up, or the daemon is draining"));
    }
  } else if (!Admit(req, ex, path.c_str())) {
    return;
  } else if (path == "/v1/completions") {
    Generate(Endpoint::kCompletions, req, ex);
  } else if (path == "/v1/chat/completions") {
    Generate(Endpoint::kChat, req, ex);
  } else if (path == "/v1/rerank") {
    Rerank(req, ex);
  } else {
    Models(req, ex);
  }
}

bool OpenAiFrontend::Admit(const HttpRequest& req, HttpExchange& ex, const char* endpoint) {
  if (gate_ == nullptr) return true;
  const auth::Admission a = gate_->Admit(req.header("authorization"), auth::Permission::kInference, endpoint,
                                         auth::RateLimiter::Clock::now());
  if (a.status.ok()) return true;
  spdlog::debug("{} refused: {}", endpoint, a.status.ToString());
  const std::string_view path(endpoint);
  if (path == "/v1/rerank") {
    service_->RecordRefused(RpcMethod::kRecommend, a.status.code());
  } else if (path == "/v1/completions" || path == "/v1/chat/completions") {
    service_->RecordRefused(RpcMethod::kGenerate, a.status.code());
  }
  const ApiError e = HttpError(HttpStatusOf(a.status.code()), a.status.message());
  if (e.http_status == 401) {
    ex.Send(401, kJson, ErrorJson(e), {{"WWW-Authenticate", "Bearer"}});
  } else {
    SendError(ex, e, a.retry_after);
  }
  return false;
}

void OpenAiFrontend::Models(const HttpRequest& req, HttpExchange& ex) {
  std::vector<ModelInfo> models;
  for (const std::string& name : service_->model_names()) {
    ModelInfo m{name, 0};
    for (const server::ServingPool& p : service_->pools()) {
      if (p.name == name) m.max_model_len = p.max_model_len;
    }
    models.push_back(std::move(m));
  }
  if (req.path == "/v1/models") {
    ex.Send(200, kJson, ModelsJson(models, created_));
    return;
  }
  const std::string id = req.path.substr(std::string("/v1/models/").size());
  for (const ModelInfo& m : models) {
    if (m.id == id) {
      ex.Send(200, kJson, ModelJson(m, created_));
      return;
    }
  }
  ApiError e = HttpError(404, "model: no model named '" + id.substr(0, 64) + "'");
  e.param = "model";
  e.code = "model_not_found";
  SendError(ex, e);
}

void OpenAiFrontend::Generate(Endpoint endpoint, const HttpRequest& req, HttpExchange& ex) {
  StatusOr<GenerateCall> parsed = ParseGenerate(endpoint, req.body);
  if (!parsed.ok()) {
    service_->RecordRefused(RpcMethod::kGenerate, parsed.status().code());
    SendError(ex, ToApiError(parsed.status(), endpoint));
    return;
  }
  GenerateCall& call = *parsed;
  TakeRequestId(req, &call.request);
  const StatusOr<std::optional<TimePoint>> deadline = Deadline(req, request_timeout_ms_);
  if (!deadline.ok()) {
    service_->RecordRefused(call.stream ? RpcMethod::kGenerateStream : RpcMethod::kGenerate, deadline.status().code());
    SendError(ex, ToApiError(deadline.status(), endpoint));
    return;
  }
  const char* id_prefix = endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-";
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  HttpCall http_call(ex, req, *deadline);

  if (!call.stream) {
    v1::GenerateResponse resp;
    const server::CallResult r = service_->CallGenerate(http_call, call.request, &resp);
    if (!r.status.ok()) {
      SendError(ex, ToApiError(r.status, endpoint, call.max_completion_tokens), r.retry_after);
      return;
    }
    const ResponseMeta meta{id_prefix + resp.request_id(), http_call.model(), created};
    ex.Send(200, kJson, CompletionJson(call, meta, resp, http_call.token_text()));
    return;
  }

  // Headers go out with the first message, so a request refused before any output gets its own status.
  std::unique_ptr<StreamEncoder> encoder;
  const server::CallResult r =
      service_->CallGenerateStream(http_call, call.request, [&](const v1::GenerateDelta& delta) {
        if (encoder == nullptr) {
          encoder = std::make_unique<StreamEncoder>(
              call, ResponseMeta{id_prefix + delta.request_id(), http_call.model(), created}, http_call.token_text());
          if (!ex.StartStream(200, "text/event-stream")) return false;
        }
        return ex.WriteChunk(encoder->Encode(delta));
      });
  if (encoder == nullptr) {
    SendError(ex,
              ToApiError(r.status.ok() ? Internal("stream ended without a message") : r.status, endpoint,
                         call.max_completion_tokens),
              r.retry_after);
    return;
  }
  if (r.status.ok()) {
    ex.WriteChunk(encoder->Done());
  } else if (r.status.code() != StatusCode::kCancelled) {
    ex.WriteChunk(StreamEncoder::Error(ToApiError(r.status, endpoint, call.max_completion_tokens)));
  }
}

void OpenAiFrontend::Rerank(const HttpRequest& req, HttpExchange& ex) {
  StatusOr<RerankCall> parsed = ParseRerank(req.body);
  if (!parsed.ok()) {
    service_->RecordRefused(RpcMethod::kRecommend, parsed.status().code());
    SendError(ex, ToApiError(parsed.status(), Endpoint::kRerank));
    return;
  }
  RerankCall& call = *parsed;
  TakeRequestId(req, &call.request);
  const StatusOr<std::optional<TimePoint>> deadline = Deadline(req, request_timeout_ms_);
  if (!deadline.ok()) {
    service_->RecordRefused(RpcMethod::kRecommend, deadline.status().code());
    SendError(ex, ToApiError(deadline.status(), Endpoint::kRerank));
    return;
  }
  HttpCall http_call(ex, req, *deadline);
  v1::RecommendResponse resp;
  const server::CallResult r = service_->CallRecommend(http_call, call.request, &resp);
  if (!r.status.ok()) {
    SendError(ex, ToApiError(r.status, Endpoint::kRerank), r.retry_after);
    return;
  }
  const ResponseMeta meta{"rerank-" + resp.request_id(), http_call.model(), 0};
  ex.Send(200, kJson, RerankJson(call, meta, resp));
}

}  // namespace inferd::http
