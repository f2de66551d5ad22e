#include "server/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "server/inference_service.h"

namespace inferd::server {

namespace {
constexpr const char* kServiceName = "inferd.v1.Inference";
// How often gRPC's file watcher re-reads the TLS snapshot (which only Reload changes).
constexpr unsigned kTlsRefreshSeconds = 1;

// Protobuf reports unparsable input (invalid UTF-8 in a string field) on its own log; callers get
// INVALID_ARGUMENT for it, so it is debug-level here rather than an error line per hostile request.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
}

std::shared_ptr<auth::Gate> LoadGate(const AuthConfig& auth) {
  StatusOr<std::shared_ptr<auth::Gate>> gate =
      auth::Gate::Load(auth.token_file, auth.rate_limit.requests_per_second, auth.rate_limit.burst);
  if (!gate.ok()) throw std::runtime_error("server.auth.token_file: " + gate.status().message());
  return *std::move(gate);
}

}  // namespace

GrpcServer::GrpcServer(const ServerConfig& config, const ControlConfig& control) : config_(config) {
  google::protobuf::SetLogHandler(&ProtobufLog);
  // Debian's Abseil is built without NDEBUG, so by default every absl::Mutex lock (all of gRPC's locks) also
  // records lock order in a process-wide graph under a global lock: about 5% of an edge daemon's CPU while
  // it answers cache hits (benchmarks/edge/RESULTS.md). That is a debugging aid; inferd itself uses no
  // absl::Mutex. Process-wide, idempotent.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  gate_ = LoadGate(config.auth);
  front_ = std::make_unique<InferenceFront>(gate_, static_cast<size_t>(std::max(0, config.max_threads)));
  if (control.enabled) control_ = std::make_unique<ControlService>(control);
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (config.tls.enabled()) {
    tls_ = std::make_unique<TlsFiles>(config.tls, "server.tls");
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls_->key_path(), tls_->cert_path(), tls_->ca_path(), kTlsRefreshSeconds);
    grpc::experimental::TlsServerCredentialsOptions opts(provider);
    opts.watch_identity_key_cert_pairs();
    if (!tls_->ca_path().empty()) {
      opts.watch_root_certs();
      opts.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    } else {
      opts.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    }
    creds = grpc::experimental::TlsServerCredentials(opts);
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (config.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.grpc_address, creds, &port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  // Without SO_REUSEPORT a second daemon on the same port fails at once instead of sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Upstream clients (an edge daemon) ping every few seconds, also between calls; accept that.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  if (config.max_threads > 0) {
    grpc::ResourceQuota quota("inferd-grpc-server");
    quota.SetMaxThreads(config.max_threads);
    builder.SetResourceQuota(quota);
  }
  builder.RegisterService(front_.get());
  if (control_) builder.RegisterService(control_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    throw std::runtime_error("server.grpc_address: cannot listen on " + config.grpc_address +
                             " (address in use, or not a local address)");
  }
  SetServing(false);
}

GrpcServer::GrpcServer(const ServerConfig& config, std::vector<ServingPool> pools, InferenceServiceOptions options)
    : GrpcServer(config) {
  Attach(std::move(pools), std::move(options));
}

GrpcServer::~GrpcServer() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

void GrpcServer::Attach(std::vector<ServingPool> pools, InferenceServiceOptions options) {
  if (service_ != nullptr) throw std::logic_error("GrpcServer::Attach called twice");
  options.max_request_id_bytes = static_cast<size_t>(config_.max_request_id_bytes);
  service_ = std::make_unique<InferenceService>(std::move(pools), std::move(options));
  front_->Attach(service_.get());
}

void GrpcServer::SetServing(bool serving) {
  if (service_) service_->SetServing(serving);
  serving_.store(serving);
  if (!server_) return;
  serving = serving && service_ != nullptr;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  health->SetServingStatus(kServiceName, serving);
  RefreshHealth();
}

void GrpcServer::AttachControl(PoolController* controller) {
  if (!control_ || service_ == nullptr) return;
  control_->Attach(controller, service_.get(), [this] { RefreshHealth(); });
}

void GrpcServer::DeclarePools(const std::vector<std::string>& names) {
  declared_pools_ = names;
  RefreshHealth();
}

void GrpcServer::RefreshHealth() {
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  const bool serving = serving_.load() && service_ != nullptr;
  if (service_ == nullptr) {
    for (const std::string& n : declared_pools_) health->SetServingStatus(PoolHealthService(n), false);
    return;
  }
  for (const ServingPool& p : service_->pools()) {
    health->SetServingStatus(PoolHealthService(p.name), serving && (p.slot == nullptr || p.slot->accepting()));
  }
}

Status GrpcServer::Reload() {
  std::string problems;
  if (tls_) {
    if (Status st = tls_->Reload(); !st.ok()) {
      problems += st.message();
    } else {
      spdlog::info("server.tls: reloaded {} (generation {})", config_.tls.cert_file, tls_->generation());
    }
  }
  if (!config_.auth.token_file.empty()) {
    StatusOr<std::shared_ptr<const auth::TokenAuthenticator>> tokens =
        auth::TokenAuthenticator::Load(config_.auth.token_file);
    if (!tokens.ok()) {
      problems += (problems.empty() ? "" : "\n") + ("server.auth.token_file: " + tokens.status().message());
    } else {
      spdlog::info("server.auth.token_file: reloaded {} ({} tokens)", config_.auth.token_file, (*tokens)->size());
      gate_->SetTokens(*std::move(tokens));
    }
  }
  if (control_) {
    if (Status st = control_->Reload(); !st.ok()) problems += (problems.empty() ? "" : "\n") + st.message();
  }
  return problems.empty() ? Status::Ok() : InvalidArgument(problems);
}

BusinessStats GrpcServer::business_stats() const {
  return service_ ? service_->business_stats() : BusinessStats{};
}

RpcStats GrpcServer::rpc_stats() const {
  return service_ ? service_->rpc_stats() : RpcStats{};
}

ControlStats GrpcServer::control_stats() const {
  return control_ ? control_->stats() : ControlStats{};
}

classify::ClassifierStats GrpcServer::classifier_stats() const {
  return service_ ? service_->classifier_stats() : classify::ClassifierStats{};
}

void GrpcServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  SetServing(false);
  if (!server_) return;
  server_->Shutdown(deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace inferd::server
