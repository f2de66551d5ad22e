// InferenceFront: the inferd.v1.Inference service as registered with gRPC. It takes each request's raw bytes
// and, in order: answers UNAVAILABLE until a backend service is attached (the port opens before the models
// are warm); authenticates and authorizes the caller (auth::TokenAuthenticator, when configured); applies
// the caller's rate limit (both through the auth::Gate it shares with the HTTP front end; RESOURCE_EXHAUSTED
// with trailing metadata retry-after-ms);
// parses the bytes (INVALID_ARGUMENT naming the field for invalid UTF-8 in a string field, or saying the
// bytes do not parse as the request type); then calls the attached InferenceService. Every status it
// returns carries a message of at most kMaxErrorMessageBytes.
// Generate and GenerateStream are sync-API methods (one gRPC server thread per call, bounded by
// server.max_threads through the server's ResourceQuota). Recommend and Feedback are callback-API methods:
// everything above, and what InferenceService answers without waiting (a response cache hit, feedback for a
// local pool), runs on the gRPC thread that read the request, with no hand-off to another thread; what
// waits runs on a BlockingPool of at most `max_blocking_threads` threads (0 = unbounded), and a call that
// finds none free ends RESOURCE_EXHAUSTED with retry-after-ms at once.
//
// Ownership: the attached service is owned by the caller (GrpcServer) and must outlive the gRPC server;
// this object outlives the gRPC server too (its pool's tasks finish calls of that server).
// Threading: every method is safe from gRPC's handler threads; Attach may race them.
#pragma once

#include <grpcpp/impl/service_type.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "auth/gate.h"
#include "server/blocking_pool.h"
#include "server/inference_service.h"

namespace inferd::server {

class InferenceFront final : public grpc::Service {
 public:
  // `gate` not null (an open Gate when authentication is off).
  InferenceFront(std::shared_ptr<const auth::Gate> gate, size_t max_blocking_threads);

  // From now on requests go to `service` (not null, never detached).
  void Attach(InferenceService* service) { service_.store(service); }
  // Recommend and Feedback calls holding a thread of the blocking pool now.
  size_t waiting_calls() const { return blocking_.busy(); }

 private:
  // A sync-API call.
  template <typename Req, typename Resp, typename Out>
  grpc::Status Handle(grpc::ServerContext* ctx, const grpc::ByteBuffer& bytes, auth::Permission needed, const char* rpc,
                      Out* out);
  // A callback-API unary call (Recommend, Feedback).
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* HandleCallback(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer& bytes,
                                           auth::Permission needed, const char* rpc, Resp* out);
  // Admission, the attached service and parsing, shared by both: OK with *service and *req set, or the
  // call's status.
  grpc::Status Prologue(grpc::ServerContextBase* ctx, const grpc::ByteBuffer& bytes, auth::Permission needed,
                        const char* rpc, RpcMethod method, google::protobuf::Message* req, InferenceService** service);
  // OK, or the Gate's refusal (with retry-after-ms for a rate limit).
  grpc::Status Admit(grpc::ServerContextBase* ctx, auth::Permission needed, const char* rpc);

  std::atomic<InferenceService*> service_{nullptr};
  const std::shared_ptr<const auth::Gate> gate_;
  BlockingPool blocking_;
};

// Parses `bytes` as `msg`. INVALID_ARGUMENT "<field path>: not valid UTF-8 (byte offset N)" when a string
// field holds invalid UTF-8, else "request: N bytes do not parse as <type>" when they do not parse.
Status ParseRequest(const std::string& bytes, google::protobuf::Message* msg);

}  // namespace inferd::server
