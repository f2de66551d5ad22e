// GrpcServer: owns the grpc::Server with the Inference service (behind InferenceFront), grpc.health.v1.Health
// and reflection, and the TLS files and token set it re-reads on Reload (SIGHUP).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inferd/config.h"
#include "server/business_stats.h"
#include "server/control_service.h"
#include "server/inference_front.h"
#include "server/inference_service.h"
#include "server/serving_pool.h"
#include "server/tls_files.h"

namespace grpc {
class Server;
}

namespace inferd::server {

class GrpcServer {
 public:
  // Binds and starts serving at once, before any model is attached: health reports NOT_SERVING and every
  // Inference RPC answers UNAVAILABLE until Attach and SetServing(true). config.tls: TLS from its files
  // (mutual TLS with client_ca_file: a client without a certificate signed by it fails the handshake).
  // config.auth: bearer tokens and rate limits for the Inference RPCs (health and reflection stay open).
  // Throws std::runtime_error naming the address when it cannot listen, and naming the key and file when a
  // TLS or token file is unusable.
  // control.enabled: registers inferd.v1.Control too (UNAVAILABLE until AttachControl).
  explicit GrpcServer(const ServerConfig& config, const ControlConfig& control = {});
  // The above, then Attach(pools, options). Throws std::invalid_argument naming the pool when a pool is
  // incomplete. Each pool's engine must outlive the server.
  GrpcServer(const ServerConfig& config, std::vector<ServingPool> pools, InferenceServiceOptions options = {});
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Once. With no pools and no upstreams every RPC answers UNAVAILABLE "no model pool".
  // options.max_request_id_bytes is taken from the config.
  void Attach(std::vector<ServingPool> pools, InferenceServiceOptions options = {});

  // Control calls go to `controller` (owned by the caller, outliving this server); no-op without control.
  void AttachControl(PoolController* controller);
  // Per-pool health services (PoolHealthService(name)) for pools about to load: NOT_SERVING until Attach and
  // SetServing(true).
  void DeclarePools(const std::vector<std::string>& names);
  // Re-derives per-pool health: SERVING when the server serves and the pool's slot accepts requests (a pool
  // that reloads keeps serving its old model; a drained one is NOT_SERVING).
  void RefreshHealth();

  int port() const { return port_; }
  // The service behind the RPCs, for other front ends (http/) to share; lives as long as this server.
  InferenceService& service() { return *service_; }
  // The authentication and rate-limit gate of config.auth, for other front ends to share (never null; an
  // open gate without a token file). Reload swaps its tokens.
  std::shared_ptr<const auth::Gate> gate() const { return gate_; }
  // Overall ("") and per-service health status, and whether the Inference RPCs are admitted.
  void SetServing(bool serving);
  // Re-reads the TLS files (new handshakes use them within about a second) and the token file. A file that
  // fails keeps what was loaded before; returns the problems, one per line (OK when none).
  Status Reload();
  // Feedback counters since start (a copy; empty before Attach).
  BusinessStats business_stats() const;
  // RPCs by pool, class, method and code, and class decisions by rule, since start (a copy; empty before Attach).
  RpcStats rpc_stats() const;
  // Classification decisions by rule since start (a copy; empty before Attach).
  classify::ClassifierStats classifier_stats() const;
  // Recommend and Feedback calls waiting on a thread of their own now (InferenceFront's blocking pool).
  size_t waiting_calls() const { return front_->waiting_calls(); }
  // inferd.v1.Control calls by method and code (all zero without control.enabled).
  ControlStats control_stats() const;
  // New RPCs answer UNAVAILABLE; in-flight RPCs may finish until `deadline`, then gRPC cancels them
  // and their handlers cancel the engine requests. Blocks. The engines are not drained here.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  const ServerConfig config_;
  std::unique_ptr<TlsFiles> tls_;  // null without TLS
  std::shared_ptr<auth::Gate> gate_;
  std::unique_ptr<InferenceFront> front_;
  std::unique_ptr<InferenceService> service_;  // set once by Attach; outlives server_
  std::unique_ptr<ControlService> control_;    // null unless control.enabled
  std::vector<std::string> declared_pools_;    // DeclarePools, for health before Attach
  std::atomic<bool> serving_{false};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace inferd::server
