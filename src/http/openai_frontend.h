// OpenAiFrontend: the OpenAI-compatible HTTP API over the Inference service core (server/), beside gRPC.
// Endpoints: POST /v1/completions, /v1/chat/completions (stream: true as server-sent events),
// /v1/rerank (a Recommend: realtime by default); GET /v1/models, /v1/models/{id}, /health (liveness),
// /ready (200 once models are loaded and warm and the daemon is serving; 503 while starting or draining).
// Requests go through InferenceService::Call*: the same admission, validation, classification, routing,
// stats and limits as the gRPC RPCs. Errors use the OpenAI error shape with the HTTP status of the
// gRPC code (openai_api.h); 429 carries Retry-After (seconds) and retry-after-ms. A client that
// disconnects cancels its request, which frees its KV blocks (checked every poll interval).
// Request headers: x-request-id (the request_id), inferd-variant (as the gRPC metadata), inferd-timeout-ms
// (the request's deadline in ms, 1..3600000; default http.request_timeout_ms; past it: 504, or an error
// event once streaming), Authorization "Bearer <token>" when server.auth is configured: every /v1/ endpoint
// goes through the same auth::Gate as the gRPC RPCs (401, 403, 429 with Retry-After for the identity's rate
// limit, shared with its gRPC calls); /health and /ready stay open for load balancers. Refusals before the
// service core (authentication, rate limit, a body that does not parse) count in its RPC stats as model
// "none": completions and chat as Generate, rerank as Recommend.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "auth/gate.h"
#include "http/http_server.h"
#include "http/openai_api.h"
#include "inferd/config.h"
#include "server/inference_service.h"

namespace inferd::http {

class OpenAiFrontend {
 public:
  // Binds config.address and starts serving. `service` must outlive this. `gate` null: no authentication.
  // Throws std::runtime_error naming the address when it cannot listen.
  OpenAiFrontend(const HttpConfig& config, server::InferenceService* service,
                 std::shared_ptr<const auth::Gate> gate = nullptr);
  ~OpenAiFrontend();

  int port() const { return server_->port(); }
  // As HttpServer::Shutdown; call after the service stopped admitting (SetServing(false)).
  void Shutdown(std::chrono::steady_clock::time_point deadline) { server_->Shutdown(deadline); }

 private:
  void Handle(const HttpRequest& req, HttpExchange& ex);
  void Generate(Endpoint endpoint, const HttpRequest& req, HttpExchange& ex);
  void Rerank(const HttpRequest& req, HttpExchange& ex);
  void Models(const HttpRequest& req, HttpExchange& ex);
  // True when the caller may go on; otherwise the refusal has been sent.
  bool Admit(const HttpRequest& req, HttpExchange& ex, const char* endpoint);

  server::InferenceService* const service_;
  const std::shared_ptr<const auth::Gate> gate_;  // null: open
  const double request_timeout_ms_;               // 0: no default deadline
  const int64_t created_;                         // unix seconds at start: the models' `created`
  std::unique_ptr<HttpServer> server_;
};

}  // namespace inferd::http
