// GrpcServer: owns the grpc::Server with the Inference service, grpc.health.v1.Health and reflection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "inferd/config.h"

namespace grpc {
class Server;
}

namespace inferd::server {

class InferenceService;

class GrpcServer {
 public:
  // Binds and starts serving; health reports NOT_SERVING until SetServing(true).
  // Throws std::runtime_error naming the address when it cannot listen.
  explicit GrpcServer(const ServerConfig& config);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const { return port_; }
  // Overall ("") and per-service health status.
  void SetServing(bool serving);
  // Stops accepting, lets in-flight RPCs finish until `deadline`, then cancels the rest. Blocks.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace inferd::server
