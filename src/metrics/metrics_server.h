// MetricsServer: HTTP (or HTTPS) GET /metrics on one address, serving every registered collectable in the
// Prometheus text format (0.0.4).
//
// Connections: each accepted connection gets its own thread (default stack), up to kMaxConnections at once;
// beyond that a connection is answered 503 and closed, so a slow or idle client never blocks other scrapes.
// A connection that has not delivered its whole request head (and, with TLS, finished its handshake)
// within options.header_timeout is closed; answers have a write timeout of their own.
//
// Not prometheus-cpp's Exposer: its civetweb server starts threads with a fixed 100 KiB stack, and in a
// process that links libtorch and the CUDA libraries their static TLS alone exceeds that, so
// pthread_create fails with EINVAL. This server's one thread has the default stack.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "inferd/status.h"

struct ssl_ctx_st;

namespace inferd::metrics {

struct MetricsServerOptions {
  std::chrono::milliseconds header_timeout{5000};  // metrics.header_timeout_ms
  std::chrono::milliseconds write_timeout{10000};
  // HTTPS when set (metrics.tls); PEM files, re-read by Reload.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class MetricsServer {
 public:
  static constexpr int kMaxConnections = 64;

  // Binds `address` ("host:port", port 0 = any free port) and starts serving. Throws std::runtime_error
  // naming the address when it cannot listen, naming the key and file when the TLS files are unusable.
  explicit MetricsServer(const std::string& address, MetricsServerOptions options = {});
  ~MetricsServer();  // stops accepting, closes open connections and waits for their threads

  // Re-reads the TLS files for new connections; on a problem keeps the previous ones and returns it.
  Status Reload();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The registry owned by this server; modules' exporters add their families here.
  prometheus::Registry& registry() { return *registry_; }
  // Keeps `c` alive for as long as the server and includes it in every scrape.
  void Add(std::shared_ptr<prometheus::Collectable> c);
  // Exports a gauge whose value never changes (a configured threshold), without labels.
  void AddConstantGauge(const std::string& name, const std::string& help, double value);
  int port() const { return port_; }

  // The exposition text a scrape returns now (for tests and the HTTP handler).
  std::string Render() const;

 private:
  void Serve();
  void HandleConnection(int fd);
  // The current TLS context (null without TLS); shared so a reload never frees one in use.
  std::shared_ptr<ssl_ctx_st> tls_context() const;

  const MetricsServerOptions options_;
  mutable std::mutex tls_mu_;  // guards tls_
  std::shared_ptr<ssl_ctx_st> tls_;
  std::mutex conn_mu_;  // guards open_fds_
  std::condition_variable conn_cv_;
  std::set<int> open_fds_;  // connections being served, each by its own detached thread
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;  // guards collectables_
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};  // a byte written here stops Serve()
  int port_ = 0;
  std::thread thread_;
};

}  // namespace inferd::metrics
