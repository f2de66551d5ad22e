// ControlService: inferd.v1.Control (proto/inferd/v1/control.proto), the operator API for model pool
// lifecycle, registered beside Inference when control.enabled. Every call is first checked against the
// access policy: the peer's IP must be in control.allowed_addresses (when listed; PERMISSION_DENIED naming
// the address otherwise) and the bearer token must carry the `control` permission (when control.token_file
// is set; UNAUTHENTICATED / PERMISSION_DENIED from auth::TokenAuthenticator). UNAVAILABLE until Attach.
// Ownership: the controller and the InferenceService are owned by the caller and outlive the gRPC server.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/token_auth.h"
#include "inferd/config.h"
#include "inferd/lifecycle_stats.h"
#include "inferd/v1/control.grpc.pb.h"
#include "server/inference_service.h"
#include "server/pool_controller.h"

namespace inferd::server {

class ControlService final : public v1::Control::Service {
 public:
  // Throws std::runtime_error naming control.token_file when it cannot be loaded.
  explicit ControlService(const ControlConfig& config);

  // From now on calls go to `controller` and aborts to `service`; `on_change` runs after each reload or
  // drain (health refresh). Once.
  void Attach(PoolController* controller, InferenceService* service, std::function<void()> on_change);
  // Re-reads control.token_file (SIGHUP); a bad file keeps the old tokens and returns the reason.
  Status Reload();
  // Calls so far by method and code. Thread-safe.
  ControlStats stats() const;

  grpc::Status ListPools(grpc::ServerContext* ctx, const v1::ListPoolsRequest* req,
                         v1::ListPoolsResponse* resp) override;
  grpc::Status ReloadPool(grpc::ServerContext* ctx, const v1::ReloadPoolRequest* req,
                          v1::ReloadPoolResponse* resp) override;
  grpc::Status DrainPool(grpc::ServerContext* ctx, const v1::DrainPoolRequest* req,
                         v1::DrainPoolResponse* resp) override;
  grpc::Status AbortRequest(grpc::ServerContext* ctx, const v1::AbortRequestRequest* req,
                            v1::AbortRequestResponse* resp) override;

 private:
  grpc::Status ListPoolsImpl(grpc::ServerContext* ctx, const v1::ListPoolsRequest* req, v1::ListPoolsResponse* resp);
  grpc::Status ReloadPoolImpl(grpc::ServerContext* ctx, const v1::ReloadPoolRequest* req, v1::ReloadPoolResponse* resp);
  grpc::Status DrainPoolImpl(grpc::ServerContext* ctx, const v1::DrainPoolRequest* req, v1::DrainPoolResponse* resp);
  grpc::Status AbortRequestImpl(grpc::ServerContext* ctx, const v1::AbortRequestRequest* req,
                                v1::AbortRequestResponse* resp);
  // Counts `st` as a call of kControlMethods[method] and returns it.
  grpc::Status Count(size_t method, grpc::Status st);
  // OK when the caller may call `rpc`; the refusal otherwise. Logs each refusal at warn level.
  grpc::Status Admit(grpc::ServerContext* ctx, const char* rpc) const;

  const ControlConfig config_;
  std::vector<std::string> allowed_;  // 16-byte IPv6 forms (IPv4 as ::ffff:a.b.c.d) of allowed_addresses
  mutable std::mutex mu_;             // guards tokens_
  std::shared_ptr<const auth::TokenAuthenticator> tokens_;  // null without token_file
  std::atomic<PoolController*> controller_{nullptr};
  std::atomic<InferenceService*> service_{nullptr};
  std::function<void()> on_change_;  // set once by Attach, before controller_
  std::array<std::array<std::atomic<uint64_t>, kNumGrpcCodes>, kControlMethods.size()> calls_{};
};

// The IP of a gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000") as 16 bytes (IPv4 mapped into
// IPv6); empty for other peers (unix sockets) or text that does not parse.
std::string PeerIp(const std::string& peer);
// An IPv4 or IPv6 address in the same 16-byte form; empty when it does not parse.
std::string IpBytes(const std::string& address);

}  // namespace inferd::server
