#include "server/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <stdexcept>

#include "server/inference_service.h"

namespace inferd::server {

namespace {
constexpr const char* kServiceName = "inferd.v1.Inference";
}

GrpcServer::GrpcServer(const ServerConfig& config, std::vector<ServingPool> pools, InferenceServiceOptions options)
    : service_(std::make_unique<InferenceService>(std::move(pools), std::move(options))) {
  grpc::EnableDefaultHealthCheckService(true);
  if (config.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.grpc_address, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  // Without SO_REUSEPORT a second daemon on the same port fails at once instead of sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Upstream clients (an edge daemon) ping every few seconds, also between calls; accept that.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    throw std::runtime_error("server.grpc_address: cannot listen on " + config.grpc_address +
                             " (address in use, or not a local address)");
  }
  SetServing(false);
}

GrpcServer::~GrpcServer() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

void GrpcServer::SetServing(bool serving) {
  service_->SetServing(serving);
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  health->SetServingStatus(kServiceName, serving);
}

BusinessStats GrpcServer::business_stats() const {
  return service_->business_stats();
}

RpcStats GrpcServer::rpc_stats() const {
  return service_->rpc_stats();
}

void GrpcServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  SetServing(false);
  if (!server_) return;
  server_->Shutdown(deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace inferd::server
