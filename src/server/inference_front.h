// InferenceFront: the inferd.v1.Inference service as registered with gRPC. It takes each request's raw bytes
// and, in order: answers UNAVAILABLE until a backend service is attached (the port opens before the models
// are warm); authenticates and authorizes the caller (auth::TokenAuthenticator, when configured); applies
// the caller's rate limit (auth::RateLimiter, RESOURCE_EXHAUSTED with trailing metadata retry-after-ms);
// parses the bytes (INVALID_ARGUMENT naming the field for invalid UTF-8 in a string field, or saying the
// bytes do not parse as the request type); then calls the attached InferenceService. Every status it
// returns carries a message of at most kMaxErrorMessageBytes.
//
// Ownership: the attached service is owned by the caller (GrpcServer) and must outlive the gRPC server.
// Threading: every method is safe from gRPC's handler threads; Attach and SetAuthenticator may race them.
#pragma once

#include <grpcpp/impl/service_type.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "auth/rate_limiter.h"
#include "auth/token_auth.h"
#include "server/inference_service.h"

namespace inferd::server {

// What InferenceFront enforces before a request reaches the service.
struct FrontPolicy {
  std::shared_ptr<const auth::TokenAuthenticator> tokens;  // null = no authentication
  std::shared_ptr<auth::RateLimiter> limiter;              // null = no rate limit; needs `tokens`
};

class InferenceFront final : public grpc::Service {
 public:
  explicit InferenceFront(FrontPolicy policy);

  // From now on requests go to `service` (not null, never detached).
  void Attach(InferenceService* service) { service_.store(service); }
  // Replaces the token set (SIGHUP); null is ignored while authentication is configured.
  void SetAuthenticator(std::shared_ptr<const auth::TokenAuthenticator> tokens);

 private:
  template <typename Req, typename Resp, typename Out>
  grpc::Status Handle(grpc::ServerContext* ctx, const grpc::ByteBuffer& bytes, auth::Permission needed, const char* rpc,
                      Out* out);
  // The caller's identity name when authentication is on ("" when off); the refusal otherwise.
  grpc::Status Admit(grpc::ServerContext* ctx, auth::Permission needed, const char* rpc);

  std::atomic<InferenceService*> service_{nullptr};
  mutable std::mutex mu_;  // guards tokens_
  std::shared_ptr<const auth::TokenAuthenticator> tokens_;
  const std::shared_ptr<auth::RateLimiter> limiter_;
};

// Parses `bytes` as `msg`. INVALID_ARGUMENT "<field path>: not valid UTF-8 (byte offset N)" when a string
// field holds invalid UTF-8, else "request: N bytes do not parse as <type>" when they do not parse.
Status ParseRequest(const std::string& bytes, google::protobuf::Message* msg);

}  // namespace inferd::server
