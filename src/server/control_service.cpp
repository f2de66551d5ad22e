#include "server/control_service.h"

#include <arpa/inet.h>
#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace inferd::server {
namespace {

v1::PoolState ToProto(PoolState s) {
  switch (s) {
    case PoolState::kLoading:
      return v1::POOL_STATE_LOADING;
    case PoolState::kServing:
      return v1::POOL_STATE_SERVING;
    case PoolState::kReloading:
      return v1::POOL_STATE_RELOADING;
    case PoolState::kDraining:
      return v1::POOL_STATE_DRAINING;
    case PoolState::kDrained:
      return v1::POOL_STATE_DRAINED;
  }
  return v1::POOL_STATE_UNSPECIFIED;
}

void ToProto(const PoolStatus& s, v1::PoolInfo* out) {
  out->set_name(s.name);
  out->set_state(ToProto(s.state));
  out->set_health_service(PoolHealthService(s.name));
  out->set_draining_generations(s.draining_generations);
  out->set_last_error(s.last_error);
  if (s.checkpoint.generation == 0) return;
  v1::Checkpoint* c = out->mutable_checkpoint();
  c->set_path(s.checkpoint.path);
  c->set_config_hash(s.checkpoint.config_hash);
  c->set_loaded_at_unix_seconds(std::chrono::duration<double>(s.checkpoint.loaded_at.time_since_epoch()).count());
  c->set_load_seconds(s.checkpoint.load_seconds);
  c->set_warmup_seconds(s.checkpoint.warmup_seconds);
  c->set_generation(s.checkpoint.generation);
  for (const auto& [name, seconds] : s.checkpoint.phases) {
    v1::LoadPhase* ph = c->add_phases();
    ph->set_name(name);
    ph->set_seconds(seconds);
  }
  c->set_residency(s.checkpoint.residency.achieved);
  c->set_resident_bytes(s.checkpoint.residency.bytes);
  c->set_locked_bytes(s.checkpoint.residency.locked_bytes);
  c->set_residency_fallback(s.checkpoint.residency.fallback_reason);
}

std::shared_ptr<const auth::TokenAuthenticator> LoadTokens(const std::string& path) {
  if (path.empty()) return nullptr;
  StatusOr<std::shared_ptr<const auth::TokenAuthenticator>> t = auth::TokenAuthenticator::Load(path);
  if (!t.ok()) throw std::runtime_error("control.token_file: " + t.status().message());
  return *t;
}

std::string FromIn6(const in6_addr& a) {
  return std::string(reinterpret_cast<const char*>(a.s6_addr), 16);
}

std::string FromIn4(const in_addr& a) {
  in6_addr m{};
  m.s6_addr[10] = 0xff;
  m.s6_addr[11] = 0xff;
  std::memcpy(&m.s6_addr[12], &a.s_addr, 4);
  return FromIn6(m);
}

}  // namespace

std::string PoolHealthService(const std::string& name) {
  return "inferd.v1.Inference/" + name;
}

std::string IpBytes(const std::string& address) {
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) return FromIn4(v4);
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) return FromIn6(v6);
  return "";
}

std::string PeerIp(const std::string& peer) {
  if (peer.rfind("ipv4:", 0) == 0) {
    const size_t colon = peer.rfind(':');
    return colon > 5 ? IpBytes(peer.substr(5, colon - 5)) : "";
  }
  if (peer.rfind("ipv6:[", 0) == 0) {
    const size_t close = peer.find(']');
    if (close == std::string::npos) return "";
    std::string host = peer.substr(6, close - 6);
    if (const size_t zone = host.find('%'); zone != std::string::npos) host.resize(zone);  // fe80::1%eth0
    return IpBytes(host);
  }
  return "";
}

ControlService::ControlService(const ControlConfig& config) : config_(config), tokens_(LoadTokens(config.token_file)) {
  for (const std::string& a : config.allowed_addresses) {
    std::string b = IpBytes(a);
    if (b.empty()) throw std::runtime_error("control.allowed_addresses: '" + a + "' is not an IP address");
    allowed_.push_back(std::move(b));
  }
}

void ControlService::Attach(PoolController* controller, InferenceService* service, std::function<void()> on_change) {
  on_change_ = std::move(on_change);
  service_.store(service);
  controller_.store(controller);
}

Status ControlService::Reload() {
  if (config_.token_file.empty()) return Status::Ok();
  StatusOr<std::shared_ptr<const auth::TokenAuthenticator>> t = auth::TokenAuthenticator::Load(config_.token_file);
  if (!t.ok()) return InvalidArgument("control.token_file: " + t.status().message());
  spdlog::info("control.token_file: reloaded {} ({} tokens)", config_.token_file, (*t)->size());
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = *std::move(t);
  return Status::Ok();
}

grpc::Status ControlService::Admit(grpc::ServerContext* ctx, const char* rpc) const {
  if (!allowed_.empty()) {
    const std::string ip = PeerIp(ctx->peer());
    bool ok = false;
    for (const std::string& a : allowed_) ok = ok || (!ip.empty() && a == ip);
    if (!ok) {
      spdlog::warn("control: {} from {} refused: address not in control.allowed_addresses", rpc, ctx->peer());
      return {grpc::StatusCode::PERMISSION_DENIED,
              BoundMessage("control: peer " + ctx->peer() + " is not in control.allowed_addresses")};
    }
  }
  std::shared_ptr<const auth::TokenAuthenticator> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens = tokens_;
  }
  if (tokens != nullptr) {
    const auto& md = ctx->client_metadata();
    const auto it = md.find("authorization");
    const std::string_view header =
        it == md.end() ? std::string_view{} : std::string_view(it->second.data(), it->second.size());
    StatusOr<auth::Identity> who = tokens->Authorize(header, auth::Permission::kControl, rpc);
    if (!who.ok()) {
      spdlog::warn("control: {} from {} refused: {}", rpc, ctx->peer(), who.status().message());
      return ToGrpcStatus(who.status());
    }
    spdlog::info("control: {} by '{}' from {}", rpc, who->name, ctx->peer());
  } else {
    spdlog::info("control: {} from {}", rpc, ctx->peer());
  }
  if (controller_.load() == nullptr) return {grpc::StatusCode::UNAVAILABLE, "control: the model pools are starting"};
  return grpc::Status::OK;
}

grpc::Status ControlService::Count(size_t method, grpc::Status st) {
  const auto code = static_cast<size_t>(st.error_code());
  if (code < static_cast<size_t>(kNumGrpcCodes)) calls_[method][code].fetch_add(1, std::memory_order_relaxed);
  return st;
}

ControlStats ControlService::stats() const {
  ControlStats out;
  for (size_t m = 0; m < kControlMethods.size(); ++m) {
    for (size_t c = 0; c < static_cast<size_t>(kNumGrpcCodes); ++c) {
      out.calls[m][c] = calls_[m][c].load(std::memory_order_relaxed);
    }
  }
  return out;
}

grpc::Status ControlService::ListPools(grpc::ServerContext* ctx, const v1::ListPoolsRequest* req,
                                       v1::ListPoolsResponse* resp) {
  return Count(0, ListPoolsImpl(ctx, req, resp));
}
grpc::Status ControlService::ReloadPool(grpc::ServerContext* ctx, const v1::ReloadPoolRequest* req,
                                        v1::ReloadPoolResponse* resp) {
  return Count(1, ReloadPoolImpl(ctx, req, resp));
}
grpc::Status ControlService::DrainPool(grpc::ServerContext* ctx, const v1::DrainPoolRequest* req,
                                       v1::DrainPoolResponse* resp) {
  return Count(2, DrainPoolImpl(ctx, req, resp));
}
grpc::Status ControlService::AbortRequest(grpc::ServerContext* ctx, const v1::AbortRequestRequest* req,
                                          v1::AbortRequestResponse* resp) {
  return Count(3, AbortRequestImpl(ctx, req, resp));
}

grpc::Status ControlService::ListPoolsImpl(grpc::ServerContext* ctx, const v1::ListPoolsRequest*,
                                           v1::ListPoolsResponse* resp) {
  if (grpc::Status st = Admit(ctx, "ListPools"); !st.ok()) return st;
  for (const PoolStatus& p : controller_.load()->ListPools()) ToProto(p, resp->add_pools());
  return grpc::Status::OK;
}

grpc::Status ControlService::ReloadPoolImpl(grpc::ServerContext* ctx, const v1::ReloadPoolRequest* req,
                                            v1::ReloadPoolResponse* resp) {
  if (grpc::Status st = Admit(ctx, "ReloadPool"); !st.ok()) return st;
  if (req->pool().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "pool: must not be empty"};
  const auto start = std::chrono::steady_clock::now();
  StatusOr<PoolStatus> done = controller_.load()->Reload(req->pool(), req->path());
  if (on_change_) on_change_();
  if (!done.ok()) return ToGrpcStatus(done.status());
  ToProto(*done, resp->mutable_pool());
  resp->set_switch_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return grpc::Status::OK;
}

grpc::Status ControlService::DrainPoolImpl(grpc::ServerContext* ctx, const v1::DrainPoolRequest* req,
                                           v1::DrainPoolResponse* resp) {
  if (grpc::Status st = Admit(ctx, "DrainPool"); !st.ok()) return st;
  if (req->pool().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "pool: must not be empty"};
  if (!(req->timeout_seconds() >= 0 && req->timeout_seconds() <= 86400)) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "timeout_seconds: must be in [0, 86400]"};
  }
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(req->timeout_seconds() * 1000));
  StatusOr<PoolStatus> done = controller_.load()->Drain(req->pool(), timeout);
  if (on_change_) on_change_();
  if (!done.ok()) return ToGrpcStatus(done.status());
  ToProto(*done, resp->mutable_pool());
  return grpc::Status::OK;
}

grpc::Status ControlService::AbortRequestImpl(grpc::ServerContext* ctx, const v1::AbortRequestRequest* req,
                                              v1::AbortRequestResponse*) {
  if (grpc::Status st = Admit(ctx, "AbortRequest"); !st.ok()) return st;
  if (req->request_id().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "request_id: must not be empty"};
  InferenceService* service = service_.load();
  if (service == nullptr || service->Abort(req->request_id()) == 0) {
    return {grpc::StatusCode::NOT_FOUND, "request_id: no request " + Excerpt(req->request_id()) + " is in flight"};
  }
  return grpc::Status::OK;
}

}  // namespace inferd::server
