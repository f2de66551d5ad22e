#include "upstream/upstream_backend.h"

#include <arpa/inet.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "auth/bearer_token_file.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "server/tls_files.h"

namespace inferd::upstream {

// A channel to one replica with its stubs. Immutable; a call holds the Link it started on until it ends, so
// a credentials change (Reload) never cuts a running call.
struct UpstreamBackend::Link {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Inference::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

struct UpstreamBackend::Replica {
  std::string address;
  std::shared_ptr<const Link> link() const {
    std::lock_guard<std::mutex> lock(link_mu);
    return current_link;
  }
  void set_link(std::shared_ptr<const Link> next) {
    std::lock_guard<std::mutex> lock(link_mu);
    current_link = std::move(next);
  }
  mutable std::mutex link_mu;
  std::shared_ptr<const Link> current_link;  // guarded by link_mu; never null
  std::atomic<int64_t> outstanding{0};
  std::atomic<bool> healthy{true};
  std::atomic<uint64_t> calls_total{0};
  std::atomic<uint64_t> ejections_total{0};
  int32_t fails_in_row = 0;   // health thread only
  int32_t passes_in_row = 0;  // health thread only
};

// One forwarded request. `ctx` points at the running attempt's context (owned by the call thread) and is
// only touched under `mu`.
struct UpstreamBackend::Call {
  RequestId id = 0;
  std::shared_ptr<RequestStream> stream;
  std::mutex mu;
  grpc::ClientContext* ctx = nullptr;
  bool cancelled = false;
};

namespace {

constexpr const char* kServiceName = "inferd.v1.Inference";

// config.tls's files, read and checked as the server's TLS files are (server/tls_files.h).
StatusOr<server::PemFiles> ReadTls(const UpstreamConfig& c) {
  return server::ReadPemFiles({c.tls.cert_file, c.tls.key_file, c.tls.ca_file, "ca_file"},
                              "upstream '" + c.name + "': tls");
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const server::PemFiles& pem) {
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = pem.ca;  // "" = the system's roots
  opts.pem_cert_chain = pem.cert;
  opts.pem_private_key = pem.key;
  return grpc::SslCredentials(opts);
}

// "Bearer <token>" from token_file, or "" without one.
StatusOr<std::string> Authorization(const UpstreamConfig& c) {
  if (c.token_file.empty()) return std::string();
  StatusOr<std::string> token = auth::ReadBearerTokenFile(c.token_file);
  if (!token.ok()) return InvalidArgument("upstream '" + c.name + "': token_file: " + token.status().message());
  return "Bearer " + *token;
}

// The name the upstream's certificate must carry when the channel target alone does not give it.
std::string ServerName(const UpstreamConfig& c) {
  if (!c.tls.server_name.empty()) return c.tls.server_name;
  if (c.dns.empty()) return "";
  const size_t colon = c.dns.rfind(':');
  std::string host = c.dns.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}

StatusCode FromGrpc(grpc::StatusCode code) {
  const int v = static_cast<int>(code);
  return (v >= 0 && v <= 16) ? static_cast<StatusCode>(v) : StatusCode::kUnknown;
}

v1::RequestClass ToProto(RequestClass cls) {
  return cls == RequestClass::kRealtime ? v1::REQUEST_CLASS_REALTIME : v1::REQUEST_CLASS_COMPLEX;
}

FinishReason FromProto(v1::FinishReason r) {
  switch (r) {
    case v1::FINISH_REASON_STOP:
      return FinishReason::kEos;
    case v1::FINISH_REASON_STOP_STRING:
      return FinishReason::kStopString;
    case v1::FINISH_REASON_LENGTH:
      return FinishReason::kMaxTokens;
    case v1::FINISH_REASON_CONTEXT:
      return FinishReason::kContextLength;
    case v1::FINISH_REASON_CANCELLED:
      return FinishReason::kCancelled;
    case v1::FINISH_REASON_DEADLINE:
      return FinishReason::kDeadlineExceeded;
    case v1::FINISH_REASON_ERROR:
      return FinishReason::kError;
    default:
      return FinishReason::kNone;
  }
}

// The upstream's usage as timings relative to `arrival` (the edge's submit), so the edge reports it.
void ApplyUsage(const v1::Usage& u, TimePoint arrival, RequestOutcome* o) {
  auto at = [&](double seconds) {
    return arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  };
  o->prompt_tokens = u.prompt_tokens();
  o->generated_tokens = u.generated_tokens();
  o->cached_prompt_tokens = u.cached_prompt_tokens();
  o->timings.arrival = arrival;
  if (u.queue_seconds() > 0) o->timings.first_scheduled = at(u.queue_seconds());
  if (u.time_to_first_token_seconds() > 0) {
    o->timings.first_token = at(u.time_to_first_token_seconds());
    o->timings.token_times.push_back(o->timings.first_token);
  }
  o->timings.end = Clock::now();
}

void SetDeadline(grpc::ClientContext* ctx, const std::optional<TimePoint>& deadline) {
  if (!deadline) return;
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(*deadline - Clock::now()));
}

// What is left of the budget, rounded up; at least 1 so it still reads as "a budget" upstream.
uint32_t RemainingBudgetMs(const std::optional<TimePoint>& deadline) {
  const double ms = std::chrono::duration<double, std::milli>(*deadline - Clock::now()).count();
  return static_cast<uint32_t>(std::clamp(std::ceil(ms), 1.0, static_cast<double>(UINT32_MAX)));
}

}  // namespace

std::vector<std::string> UpstreamBackend::SystemResolve(const std::string& name, const std::string& hostport) {
  const size_t colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon);
  const std::string port = hostport.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    throw std::runtime_error("upstream '" + name + "': dns '" + hostport + "' does not resolve: " + gai_strerror(rc));
  }
  std::vector<std::string> out;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    std::string addr;
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof buf);
      addr = std::string(buf) + ":" + port;
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf, sizeof buf);
      addr = "[" + std::string(buf) + "]:" + port;
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), addr) == out.end()) out.push_back(addr);
  }
  freeaddrinfo(res);
  if (out.empty()) throw std::runtime_error("upstream '" + name + "': dns '" + hostport + "' has no addresses");
  return out;
}

std::shared_ptr<grpc::ChannelCredentials> UpstreamBackend::credentials() const {
  std::lock_guard<std::mutex> lock(secrets_mu_);
  return credentials_;
}

std::shared_ptr<const std::string> UpstreamBackend::authorization() const {
  std::lock_guard<std::mutex> lock(secrets_mu_);
  return authorization_;
}

std::shared_ptr<const UpstreamBackend::Link> UpstreamBackend::MakeLink(const std::string& address) const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(config_.keepalive_time_ms));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(config_.keepalive_timeout_ms));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A replica that comes back is reconnected within about a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Retries are ours (only when nothing was sent); gRPC's own would hide attempts from the breaker.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Connections of its own: a channel made after a credentials change never shares an older one's.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  if (config_.tls.enabled) {
    const std::string name = ServerName(config_);
    if (!name.empty()) args.SetSslTargetNameOverride(name);
  }
  auto link = std::make_shared<Link>();
  link->channel = grpc::CreateCustomChannel(address, credentials(), args);
  link->stub = v1::Inference::NewStub(link->channel);
  link->health = grpc::health::v1::Health::NewStub(link->channel);
  return link;
}

std::shared_ptr<UpstreamBackend::Replica> UpstreamBackend::MakeReplica(const std::string& address) const {
  auto r = std::make_shared<Replica>();
  r->address = address;
  r->set_link(MakeLink(address));
  return r;
}

UpstreamBackend::UpstreamBackend(const UpstreamConfig& config, Resolver resolve)
    : config_(config),
      description_("upstream '" + config.name + "'"),
      resolve_(std::move(resolve)),
      breaker_(BreakerOptions{config.breaker.failure_threshold,
                              std::chrono::milliseconds(static_cast<int64_t>(config.breaker.open_ms))}) {
  credentials_ = grpc::InsecureChannelCredentials();
  if (config.tls.enabled) {
    StatusOr<server::PemFiles> pem = ReadTls(config);
    if (!pem.ok()) throw std::runtime_error(pem.status().message());
    credentials_ = Credentials(*pem);
    tls_pem_ = *std::move(pem);
  }
  StatusOr<std::string> auth = Authorization(config);
  if (!auth.ok()) throw std::runtime_error(auth.status().message());
  authorization_ = std::make_shared<const std::string>(*std::move(auth));
  std::vector<std::string> addresses = config.targets;
  if (!config.dns.empty()) addresses = resolve_(config.name, config.dns);
  auto list = std::make_shared<ReplicaList>();
  for (const std::string& address : addresses) {
    list->push_back(MakeReplica(address));
    // The first round decides who starts healthy; each replica needs one pass (or fails) to count.
    list->back()->fails_in_row = config_.health.unhealthy_threshold - 1;
  }
  replicas_ = std::move(list);
  CheckHealthOnce();
  health_thread_ = std::thread([this] { HealthLoop(); });
}

std::shared_ptr<const UpstreamBackend::ReplicaList> UpstreamBackend::Replicas() const {
  std::lock_guard<std::mutex> lock(replicas_mu_);
  return replicas_;
}

void UpstreamBackend::RefreshDnsOnce() {
  if (config_.dns.empty()) return;
  std::vector<std::string> addresses;
  try {
    addresses = resolve_(config_.name, config_.dns);
  } catch (const std::exception& e) {
    spdlog::warn("{}: keeping {} replica(s): {}", description_, Replicas()->size(), e.what());
    return;
  }
  std::lock_guard<std::mutex> check_lock(check_mu_);  // the health round sees one list
  const std::shared_ptr<const ReplicaList> old = Replicas();
  auto next = std::make_shared<ReplicaList>();
  for (const std::string& address : addresses) {
    auto same = std::find_if(old->begin(), old->end(), [&](const auto& r) { return r->address == address; });
    if (same != old->end()) {
      next->push_back(*same);
      continue;
    }
    next->push_back(MakeReplica(address));
    next->back()->healthy.store(false);  // serves once it passes healthy_threshold checks
    spdlog::info("{}: replica {} added (dns {})", description_, address, config_.dns);
  }
  for (const auto& r : *old) {
    if (std::none_of(next->begin(), next->end(), [&](const auto& n) { return n == r; })) {
      spdlog::info("{}: replica {} removed (dns {} no longer lists it)", description_, r->address, config_.dns);
    }
  }
  std::lock_guard<std::mutex> lock(replicas_mu_);
  replicas_ = std::move(next);
}

Status UpstreamBackend::Reload() {
  std::string problems;
  auto problem = [&](const Status& st) { problems += (problems.empty() ? "" : "\n") + st.message(); };
  if (!config_.token_file.empty()) {
    StatusOr<std::string> auth = Authorization(config_);
    if (!auth.ok()) {
      problem(auth.status());
    } else {
      std::lock_guard<std::mutex> lock(secrets_mu_);
      authorization_ = std::make_shared<const std::string>(*std::move(auth));
      spdlog::info("{}: token_file: reloaded {}", description_, config_.token_file);
    }
  }
  if (config_.tls.enabled) {
    StatusOr<server::PemFiles> pem = ReadTls(config_);
    std::lock_guard<std::mutex> check_lock(check_mu_);  // no DNS refresh makes a replica meanwhile
    if (!pem.ok()) {
      problem(pem.status());
    } else if (*pem != tls_pem_) {
      {
        std::lock_guard<std::mutex> lock(secrets_mu_);
        credentials_ = Credentials(*pem);
      }
      tls_pem_ = *std::move(pem);
      const std::shared_ptr<const ReplicaList> replicas = Replicas();
      for (const auto& r : *replicas) r->set_link(MakeLink(r->address));
      spdlog::info("{}: tls: reloaded, new channels to {} replica(s)", description_, replicas->size());
    } else {
      spdlog::info("{}: tls: files unchanged, channels kept", description_);
    }
  }
  return problems.empty() ? Status::Ok() : InvalidArgument(problems);
}

UpstreamBackend::~UpstreamBackend() {
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    stopping_ = true;
  }
  health_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  std::unique_lock<std::mutex> lock(calls_mu_);
  for (auto& [id, call] : calls_) {
    std::lock_guard<std::mutex> call_lock(call->mu);
    call->cancelled = true;
    if (call->ctx != nullptr) call->ctx->TryCancel();
  }
  calls_cv_.wait(lock, [&] { return calls_.empty(); });
}

void UpstreamBackend::CheckHealthOnce() {
  std::lock_guard<std::mutex> check_lock(check_mu_);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config_.health.timeout_ms));
  // Checks run concurrently so one hung replica does not delay the others' verdicts.
  struct Pending {
    std::shared_ptr<const Link> link;  // the channel the check runs on stays until it answers
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status status;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  std::vector<std::unique_ptr<Pending>> pending;
  const std::shared_ptr<const ReplicaList> replicas = Replicas();
  for (auto& r : *replicas) {
    auto p = std::make_unique<Pending>();
    p->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    p->req.set_service(kServiceName);
    p->link = r->link();
    Pending* raw = p.get();
    p->link->health->async()->Check(&raw->ctx, &raw->req, &raw->resp, [raw](grpc::Status st) {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->status = std::move(st);
      raw->done = true;
      raw->cv.notify_all();
    });
    pending.push_back(std::move(p));
  }
  for (size_t i = 0; i < replicas->size(); ++i) {
    Pending& p = *pending[i];
    {
      std::unique_lock<std::mutex> lock(p.mu);
      p.cv.wait(lock, [&] { return p.done; });
    }
    Replica& r = *(*replicas)[i];
    const bool pass = p.status.ok() && p.resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (pass) {
      r.fails_in_row = 0;
      if (++r.passes_in_row >= config_.health.healthy_threshold && !r.healthy.load()) {
        r.healthy.store(true);
        spdlog::info("{}: replica {} re-admitted (health checks pass)", description_, r.address);
      }
    } else {
      r.passes_in_row = 0;
      if (++r.fails_in_row >= config_.health.unhealthy_threshold && r.healthy.load()) {
        r.healthy.store(false);
        r.ejections_total.fetch_add(1);
        spdlog::warn("{}: replica {} ejected: health check {}", description_, r.address,
                     p.status.ok() ? "NOT_SERVING" : p.status.error_message());
      }
    }
  }
}

void UpstreamBackend::HealthLoop() {
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(config_.health.interval_ms));
  const auto refresh = std::chrono::milliseconds(static_cast<int64_t>(config_.dns_refresh_ms));
  auto next_refresh = Clock::now() + refresh;
  std::unique_lock<std::mutex> lock(health_mu_);
  while (!health_cv_.wait_for(lock, interval, [&] { return stopping_; })) {
    lock.unlock();
    if (!config_.dns.empty() && refresh.count() > 0 && Clock::now() >= next_refresh) {
      RefreshDnsOnce();
      next_refresh = Clock::now() + refresh;
    }
    CheckHealthOnce();
    lock.lock();
  }
}

std::shared_ptr<UpstreamBackend::Replica> UpstreamBackend::Pick(const std::vector<Replica*>& tried) {
  const std::shared_ptr<const ReplicaList> replicas = Replicas();
  const size_t n = replicas->size();
  const size_t start = static_cast<size_t>(rr_.fetch_add(1));
  std::shared_ptr<Replica> best;
  for (size_t k = 0; k < n; ++k) {
    const std::shared_ptr<Replica>& r = (*replicas)[(start + k) % n];
    if (!r->healthy.load() || std::find(tried.begin(), tried.end(), r.get()) != tried.end()) continue;
    if (best == nullptr || r->outstanding.load() < best->outstanding.load()) best = r;
  }
  return best;
}

bool UpstreamBackend::AdmitCall(CircuitBreaker::Admission* admission, std::shared_ptr<Replica>* replica,
                                Status* status) {
  *admission = breaker_.Admit();
  if (*admission == CircuitBreaker::Admission::kReject) {
    *status = Unavailable(description_ + ": circuit breaker open after repeated failures; next probe in " +
                          std::to_string(breaker_.RetryIn().count()) + " ms");
    return false;
  }
  *replica = Pick({});
  if (*replica == nullptr) {
    breaker_.OnAbandon(*admission);
    no_replica_total_.fetch_add(1);
    std::string names;
    for (const auto& r : *Replicas()) names += (names.empty() ? "" : ", ") + r->address;
    *status = Unavailable(description_ + ": no healthy replica (" + names + " failing health checks)");
    return false;
  }
  return true;
}

std::shared_ptr<UpstreamBackend::Call> UpstreamBackend::Register(std::shared_ptr<RequestStream>* stream) {
  auto call = std::make_shared<Call>();
  call->id = next_id_.fetch_add(1);
  call->stream = std::make_shared<RequestStream>(call->id);
  *stream = call->stream;
  std::lock_guard<std::mutex> lock(calls_mu_);
  calls_.emplace(call->id, call);
  return call;
}

void UpstreamBackend::Unregister(RequestId id) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  calls_.erase(id);
  calls_cv_.notify_all();
}

void UpstreamBackend::Cancel(RequestId id) {
  std::shared_ptr<Call> call;
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    call = it->second;
  }
  std::lock_guard<std::mutex> lock(call->mu);
  call->cancelled = true;
  if (call->ctx != nullptr) call->ctx->TryCancel();
}

Status UpstreamBackend::Named(const Status& status, const Replica* replica) const {
  if (status.ok()) return status;
  return {status.code(), description_ + " (" + replica->address + "): " + status.message()};
}

void UpstreamBackend::Judge(const Status& status, bool cancelled, CircuitBreaker::Admission admission) {
  const BreakerState before = breaker_.state();
  if (cancelled) {
    breaker_.OnAbandon(admission);
  } else if (status.code() == StatusCode::kUnavailable) {
    failures_total_.fetch_add(1);
    breaker_.OnFailure(admission);
  } else {
    breaker_.OnSuccess(admission);
  }
  const BreakerState after = breaker_.state();
  if (after != before || admission == CircuitBreaker::Admission::kProbe) {
    spdlog::warn("{}: circuit breaker {} -> {}{}", description_, BreakerStateName(before), BreakerStateName(after),
                 admission == CircuitBreaker::Admission::kProbe ? " (probe)" : "");
  }
}

server::Submitted UpstreamBackend::Generate(const v1::GenerateRequest& request, const server::CallOptions& options) {
  server::Submitted sub;
  CircuitBreaker::Admission admission;
  std::shared_ptr<Replica> replica;
  if (!AdmitCall(&admission, &replica, &sub.status)) return sub;
  std::shared_ptr<Call> call = Register(&sub.stream);
  std::thread(&UpstreamBackend::RunGenerate, this, call, request, options, admission, std::move(replica)).detach();
  return sub;
}

server::Submitted UpstreamBackend::Recommend(const v1::RecommendRequest& request, const server::CallOptions& options) {
  server::Submitted sub;
  CircuitBreaker::Admission admission;
  std::shared_ptr<Replica> replica;
  if (!AdmitCall(&admission, &replica, &sub.status)) return sub;
  std::shared_ptr<Call> call = Register(&sub.stream);
  std::thread(&UpstreamBackend::RunRecommend, this, call, request, options, admission, std::move(replica)).detach();
  return sub;
}

// Runs `attempt(ctx, stub, &received)` until it succeeds, or fails in a way that may not be retried:
// a retry needs UNAVAILABLE, nothing received, not cancelled, tries left and another healthy replica.
// Each attempt takes the replica's link and the authorization of the moment and holds them to its end.
// Returns the last status and the replica that produced it.
template <typename Attempt>
static Status RunAttempts(
    UpstreamBackend::Call& call, const server::CallOptions& options,
    const std::function<std::shared_ptr<const std::string>()>& authorization, int32_t max_attempts,
    std::shared_ptr<UpstreamBackend::Replica>* replica, std::atomic<uint64_t>& calls_total,
    std::atomic<uint64_t>& retries_total, bool* cancelled,
    const std::function<std::shared_ptr<UpstreamBackend::Replica>(const std::vector<UpstreamBackend::Replica*>&)>& pick,
    Attempt&& attempt) {
  std::vector<UpstreamBackend::Replica*> tried;
  Status status;
  for (int32_t n = 0;; ++n) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options.deadline);
    if (const std::shared_ptr<const std::string> auth = authorization(); !auth->empty()) {
      ctx.AddMetadata("authorization", *auth);
    }
    {
      std::lock_guard<std::mutex> lock(call.mu);
      if (call.cancelled) {
        *cancelled = true;
        return Cancelled("cancelled by the client");
      }
      call.ctx = &ctx;
    }
    UpstreamBackend::Replica& r = **replica;
    const std::shared_ptr<const UpstreamBackend::Link> link = r.link();
    r.outstanding.fetch_add(1);
    r.calls_total.fetch_add(1);
    calls_total.fetch_add(1);
    bool received = false;
    const grpc::Status st = attempt(&ctx, *link->stub, &received);
    r.outstanding.fetch_sub(1);
    {
      std::lock_guard<std::mutex> lock(call.mu);
      call.ctx = nullptr;
      *cancelled = call.cancelled;
    }
    status = st.ok() ? Status::Ok() : Status(FromGrpc(st.error_code()), st.error_message());
    if (status.code() != StatusCode::kUnavailable || received || *cancelled || n + 1 >= max_attempts) return status;
    tried.push_back(&r);
    std::shared_ptr<UpstreamBackend::Replica> next = pick(tried);
    if (next == nullptr) return status;
    retries_total.fetch_add(1);
    *replica = std::move(next);
  }
}

void UpstreamBackend::RunGenerate(std::shared_ptr<Call> call, v1::GenerateRequest request, server::CallOptions options,
                                  CircuitBreaker::Admission admission, std::shared_ptr<Replica> replica) {
  const TimePoint arrival = Clock::now();
  request.set_request_id(options.request_id);
  request.set_class_hint(ToProto(options.cls));
  if (options.deadline && request.latency_budget_ms() > 0) {
    request.set_latency_budget_ms(RemainingBudgetMs(options.deadline));
  }
  v1::GenerateDelta last;
  bool cancelled = false;
  const Status status = RunAttempts(
      *call, options, [this] { return authorization(); }, config_.max_attempts, &replica, calls_total_, retries_total_,
      &cancelled, [this](const std::vector<Replica*>& tried) { return Pick(tried); },
      [&](grpc::ClientContext* ctx, v1::Inference::Stub& stub, bool* received) {
        std::unique_ptr<grpc::ClientReader<v1::GenerateDelta>> reader = stub.GenerateStream(ctx, request);
        v1::GenerateDelta msg;
        while (reader->Read(&msg)) {
          *received = true;
          TokenDelta d;
          d.text = msg.text();
          const bool has_top = std::any_of(msg.tokens().begin(), msg.tokens().end(),
                                           [](const v1::TokenInfo& t) { return t.top_size() > 0; });
          for (const v1::TokenInfo& t : msg.tokens()) {
            d.token_ids.push_back(t.token_id());
            d.logprobs.push_back(t.logprob());
            if (!has_top) continue;
            std::vector<TokenLogprob> alts;
            for (const v1::TokenLogprob& a : t.top()) alts.push_back(TokenLogprob{a.token_id(), a.logprob()});
            d.top_logprobs.push_back(std::move(alts));
          }
          if (!d.token_ids.empty() || !d.text.empty()) call->stream->PushDelta(std::move(d));
          if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) last = msg;
        }
        return reader->Finish();
      });
  Judge(status, cancelled, admission);
  RequestOutcome o;
  o.cls = options.cls;
  o.status = cancelled ? Cancelled("cancelled by the client") : Named(status, replica.get());
  o.finish_reason = cancelled ? FinishReason::kCancelled : FromProto(last.finish_reason());
  if (o.status.code() == StatusCode::kDeadlineExceeded && o.finish_reason == FinishReason::kNone) {
    o.finish_reason = FinishReason::kDeadlineExceeded;
  }
  ApplyUsage(last.usage(), arrival, &o);
  call->stream->Finish(std::move(o));
  Unregister(call->id);
}

void UpstreamBackend::RunRecommend(std::shared_ptr<Call> call, v1::RecommendRequest request,
                                   server::CallOptions options, CircuitBreaker::Admission admission,
                                   std::shared_ptr<Replica> replica) {
  const TimePoint arrival = Clock::now();
  request.set_request_id(options.request_id);
  request.set_class_hint(ToProto(options.cls));
  request.set_encoding(v1::RESPONSE_ENCODING_PLAIN);
  request.clear_previous_response_id();
  request.clear_previous_response_hash();
  if (options.deadline && request.latency_budget_ms() > 0) {
    request.set_latency_budget_ms(RemainingBudgetMs(options.deadline));
  }
  v1::RecommendResponse resp;
  bool cancelled = false;
  Status status = RunAttempts(
      *call, options, [this] { return authorization(); }, config_.max_attempts, &replica, calls_total_, retries_total_,
      &cancelled, [this](const std::vector<Replica*>& tried) { return Pick(tried); },
      [&](grpc::ClientContext* ctx, v1::Inference::Stub& stub, bool*) { return stub.Recommend(ctx, request, &resp); });
  Judge(status, cancelled, admission);
  RequestOutcome o;
  o.cls = options.cls;
  if (status.ok() && !cancelled) {
    std::unordered_map<uint64_t, int32_t> index;
    for (int i = 0; i < request.candidates_size(); ++i) index.emplace(request.candidates(i).item_id(), i);
    for (const v1::ScoredItem& item : resp.plain().items()) {
      auto it = index.find(item.item_id());
      if (it == index.end()) {
        status = Internal("answered item_id " + std::to_string(item.item_id()) + ", which was not a candidate");
        break;
      }
      o.ranked.push_back(ScoredCandidate{it->second, item.sum_logprob(), item.mean_logprob(), item.num_tokens()});
    }
    o.finish_reason = FinishReason::kScored;
  }
  o.status = cancelled ? Cancelled("cancelled by the client") : Named(status, replica.get());
  if (!o.status.ok()) o.ranked.clear();
  ApplyUsage(resp.usage(), arrival, &o);
  call->stream->Finish(std::move(o));
  Unregister(call->id);
}

Status UpstreamBackend::Feedback(const v1::FeedbackRequest& request, std::optional<TimePoint> deadline) {
  CircuitBreaker::Admission admission;
  std::shared_ptr<Replica> replica;
  Status status;
  if (!AdmitCall(&admission, &replica, &status)) return status;
  Call call;
  bool cancelled = false;
  server::CallOptions options;
  options.deadline = deadline;
  v1::FeedbackResponse resp;
  status = RunAttempts(
      call, options, [this] { return authorization(); }, config_.max_attempts, &replica, calls_total_, retries_total_,
      &cancelled, [this](const std::vector<Replica*>& tried) { return Pick(tried); },
      [&](grpc::ClientContext* ctx, v1::Inference::Stub& stub, bool*) { return stub.Feedback(ctx, request, &resp); });
  Judge(status, cancelled, admission);
  return Named(status, replica.get());
}

UpstreamStats UpstreamBackend::stats() const {
  UpstreamStats s;
  s.name = config_.name;
  s.breaker = breaker_.stats();
  s.calls_total = calls_total_.load();
  s.failures_total = failures_total_.load();
  s.retries_total = retries_total_.load();
  s.no_replica_total = no_replica_total_.load();
  for (const auto& r : *Replicas()) {
    s.replicas.push_back(ReplicaStats{r->address, r->healthy.load(), r->outstanding.load(), r->calls_total.load(),
                                      r->ejections_total.load()});
  }
  return s;
}

}  // namespace inferd::upstream
