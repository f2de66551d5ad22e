// InferenceFront: the inferd.v1.Inference service as registered with gRPC. It takes each request's raw bytes
// and, in order: answers UNAVAILABLE until a backend service is attached (the port opens before the models
// are warm); authenticates and authorizes the caller (auth::TokenAuthenticator, when configured); applies
// the caller's rate limit (both through the auth::Gate it shares with the HTTP front end; RESOURCE_EXHAUSTED
// with trailing metadata retry-after-ms);
// parses the bytes (INVALID_ARGUMENT naming the field for invalid UTF-8 in a string field, or saying the
// bytes do not parse as the request type); then calls the attached InferenceService. Every status it
// returns carries a message of at most kMaxErrorMessageBytes.
//
// Ownership: the attached service is owned by the caller (GrpcServer) and must outlive the gRPC server.
// Threading: every method is safe from gRPC's handler threads; Attach may race them.
#pragma once

#include <grpcpp/impl/service_type.h>

#include <atomic>
#include <memory>
#include <string>

#include "auth/gate.h"
#include "server/inference_service.h"

namespace inferd::server {

class InferenceFront final : public grpc::Service {
 public:
  // `gate` not null (an open Gate when authentication is off).
  explicit InferenceFront(std::shared_ptr<const auth::Gate> gate);

  // From now on requests go to `service` (not null, never detached).
  void Attach(InferenceService* service) { service_.store(service); }

 private:
  template <typename Req, typename Resp, typename Out>
  grpc::Status Handle(grpc::ServerContext* ctx, const grpc::ByteBuffer& bytes, auth::Permission needed, const char* rpc,
                      Out* out);
  // OK, or the Gate's refusal (with retry-after-ms for a rate limit).
  grpc::Status Admit(grpc::ServerContext* ctx, auth::Permission needed, const char* rpc);

  std::atomic<InferenceService*> service_{nullptr};
  const std::shared_ptr<const auth::Gate> gate_;
};

// Parses `bytes` as `msg`. INVALID_ARGUMENT "<field path>: not valid UTF-8 (byte offset N)" when a string
// field holds invalid UTF-8, else "request: N bytes do not parse as <type>" when they do not parse.
Status ParseRequest(const std::string& bytes, google::protobuf::Message* msg);

}  // namespace inferd::server
