// UpstreamBackend: another inferd (a central daemon) behind the Backend seam.
// - Replicas: the configured targets, or every address the DNS name resolves to, re-resolved every
//   `dns_refresh_ms` by the health thread (new addresses join once they pass `healthy_threshold` checks;
//   vanished ones leave, their in-flight calls finish; a failed lookup keeps the current set); one channel
//   each (keepalive pings, fast reconnect). A call goes to the healthy replica with the fewest outstanding
//   calls (ties rotate).
// - Health: a thread checks every replica over grpc.health.v1 (service inferd.v1.Inference) each
//   interval; `unhealthy_threshold` failures in a row eject it, `healthy_threshold` successes re-admit it.
// - Breaker: one CircuitBreaker per upstream; UNAVAILABLE results count as failures. While it is open, or
//   no replica is healthy, calls fail at once with UNAVAILABLE naming the upstream.
// - Deadlines: the gRPC deadline is the request's; latency_budget_ms, when set, becomes what is left.
//   Cancel() cancels the upstream call, so the upstream frees its KV blocks.
// - Retries: on another replica, only for UNAVAILABLE before any response message arrived, at most
//   max_attempts tries in all.
// - Security (config.tls, config.token_file): TLS to every replica (server certificate checked against ca_file
//   or the system roots for server_name, else the dns host, else the target's host; a client certificate for
//   mutual TLS), and the bearer token sent as `authorization` metadata on every forwarded call. The files are
//   read at construction and again by Reload() (SIGHUP): a new token goes out on every call that starts
//   afterwards; new TLS files give every replica a new channel (calls already running finish on the old
//   one); a file that fails keeps what was loaded before. The token never appears in messages or logs.
// - Requests are forwarded as received with class_hint set to the edge's class and request_id set;
//   Generate always goes out as GenerateStream; Recommend asks for PLAIN so the edge encodes (and diffs).
// Each call runs on its own thread that owns its ClientContext; the destructor cancels and joins them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "inferd/config.h"
#include "server/backend.h"
#include "server/tls_files.h"
#include "upstream/circuit_breaker.h"

namespace grpc {
class ChannelCredentials;
}

namespace inferd::upstream {

using ReplicaStats = inferd::UpstreamReplicaStats;
using inferd::UpstreamStats;

class UpstreamBackend final : public server::Backend {
 public:
  // Resolves the replicas, runs one round of health checks (bounded by health.timeout_ms) and starts the
  // health thread. An unreachable upstream is not an error here (its replicas start ejected).
  // Throws std::runtime_error naming the upstream when the DNS name does not resolve, and naming the upstream
  // and key when a tls or token file cannot be read (or the token file is empty).
  // Every address `hostport` names; throws std::runtime_error naming the upstream when it resolves to none.
  using Resolver = std::function<std::vector<std::string>(const std::string& upstream, const std::string& hostport)>;
  static std::vector<std::string> SystemResolve(const std::string& upstream, const std::string& hostport);

  explicit UpstreamBackend(const UpstreamConfig& config, Resolver resolve = SystemResolve);
  ~UpstreamBackend() override;
  UpstreamBackend(const UpstreamBackend&) = delete;
  UpstreamBackend& operator=(const UpstreamBackend&) = delete;

  const std::string& description() const override { return description_; }
  server::Submitted Generate(const v1::GenerateRequest& request, const server::CallOptions& options) override;
  server::Submitted Recommend(const v1::RecommendRequest& request, const server::CallOptions& options) override;
  void Cancel(RequestId id) override;
  Status Feedback(const v1::FeedbackRequest& request, std::optional<TimePoint> deadline) override;

  UpstreamStats stats() const;
  // Re-reads config.tls's files and config.token_file. Each that reads and checks well replaces the old
  // (changed TLS files: a new channel to every replica); each that fails keeps the old and is named in the
  // returned INVALID_ARGUMENT (`upstream '<name>': tls.ca_file: ...`, one problem per line).
  Status Reload();
  // Runs one round of health checks now (also done by the health thread).
  void CheckHealthOnce();
  // Re-resolves the DNS name now (the health thread does it every dns_refresh_ms); a no-op for targets.
  void RefreshDnsOnce();

  struct Replica;
  struct Link;
  struct Call;

 private:
  // A healthy replica not in `tried` with the fewest outstanding calls, or null.
  std::shared_ptr<Replica> Pick(const std::vector<Replica*>& tried);
  using ReplicaList = std::vector<std::shared_ptr<Replica>>;
  std::shared_ptr<const ReplicaList> Replicas() const;
  std::shared_ptr<Replica> MakeReplica(const std::string& address) const;
  std::shared_ptr<const Link> MakeLink(const std::string& address) const;
  std::shared_ptr<grpc::ChannelCredentials> credentials() const;
  std::shared_ptr<const std::string> authorization() const;
  // Breaker and replica admission shared by every RPC; on refusal `status` says why.
  bool AdmitCall(CircuitBreaker::Admission* admission, std::shared_ptr<Replica>* replica, Status* status);
  std::shared_ptr<Call> Register(std::shared_ptr<RequestStream>* stream);
  void Unregister(RequestId id);
  void RunGenerate(std::shared_ptr<Call> call, v1::GenerateRequest request, server::CallOptions options,
                   CircuitBreaker::Admission admission, std::shared_ptr<Replica> replica);
  void RunRecommend(std::shared_ptr<Call> call, v1::RecommendRequest request, server::CallOptions options,
                    CircuitBreaker::Admission admission, std::shared_ptr<Replica> replica);
  // Breaker verdict and the failure counter for a finished call.
  void Judge(const Status& status, bool cancelled, CircuitBreaker::Admission admission);
  Status Named(const Status& status, const Replica* replica) const;
  void HealthLoop();

  const UpstreamConfig config_;
  const std::string description_;
  mutable std::mutex secrets_mu_;                          // guards the two below; each is replaced whole by Reload
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // TLS or insecure, shared by every replica's channel
  std::shared_ptr<const std::string> authorization_;       // "Bearer <token>", or "" without token_file
  server::PemFiles tls_pem_;                               // what credentials_ was made from; under check_mu_
  const Resolver resolve_;
  mutable std::mutex replicas_mu_;
  std::shared_ptr<const ReplicaList> replicas_;  // replaced whole (under replicas_mu_) when DNS changes
  CircuitBreaker breaker_;
  std::atomic<uint64_t> rr_{0};
  std::atomic<RequestId> next_id_{1};
  std::atomic<uint64_t> calls_total_{0}, failures_total_{0}, retries_total_{0}, no_replica_total_{0};

  std::mutex calls_mu_;
  std::condition_variable calls_cv_;
  std::unordered_map<RequestId, std::shared_ptr<Call>> calls_;  // in flight; each has a running thread

  // One CheckHealthOnce, RefreshDnsOnce or Reload at a time (so a replica made by a DNS refresh never misses a
  // credentials change); guards Replica::*_in_row.
  std::mutex check_mu_;
  std::mutex health_mu_;
  std::condition_variable health_cv_;
  bool stopping_ = false;
  std::thread health_thread_;
};

}  // namespace inferd::upstream
