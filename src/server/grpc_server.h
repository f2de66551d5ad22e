// GrpcServer: owns the grpc::Server with the Inference service, grpc.health.v1.Health and reflection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "inferd/config.h"
#include "server/business_stats.h"
#include "server/inference_service.h"
#include "server/serving_pool.h"

namespace grpc {
class Server;
}

namespace inferd::server {

class GrpcServer {
 public:
  // Binds and starts serving; health reports NOT_SERVING and every RPC answers UNAVAILABLE until
  // SetServing(true). With no pools every RPC answers UNAVAILABLE "no model pool".
  // Throws std::runtime_error naming the address when it cannot listen, std::invalid_argument naming
  // the pool when a pool is incomplete. Each pool's engine must outlive the server.
  explicit GrpcServer(const ServerConfig& config, std::vector<ServingPool> pools = {},
                      InferenceServiceOptions options = {});
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const { return port_; }
  // The service behind the RPCs, for other front ends (http/) to share; lives as long as this server.
  InferenceService& service() { return *service_; }
  // Overall ("") and per-service health status, and whether the Inference RPCs are admitted.
  void SetServing(bool serving);
  // Feedback counters since start (a copy).
  BusinessStats business_stats() const;
  // RPCs by pool, class, method and code, and class decisions by rule, since start (a copy).
  RpcStats rpc_stats() const;
  // Classification decisions by rule since start (a copy).
  classify::ClassifierStats classifier_stats() const { return service_->classifier_stats(); }
  // New RPCs answer UNAVAILABLE; in-flight RPCs may finish until `deadline`, then gRPC cancels them
  // and their handlers cancel the engine requests. Blocks. The engines are not drained here.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace inferd::server
