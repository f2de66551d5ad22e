// MetricsServer: HTTP GET /metrics on one address, serving every registered collectable in the
// Prometheus text format (0.0.4).
//
// Not prometheus-cpp's Exposer: its civetweb server starts threads with a fixed 100 KiB stack, and in a
// process that links libtorch and the CUDA libraries their static TLS alone exceeds that, so
// pthread_create fails with EINVAL. This server's one thread has the default stack.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace inferd::metrics {

class MetricsServer {
 public:
  // Binds `address` ("host:port", port 0 = any free port) and starts serving. Throws std::runtime_error
  // naming the address when it cannot listen.
  explicit MetricsServer(const std::string& address);
  ~MetricsServer();  // stops accepting and joins the thread
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
  void HandleConnection(int fd) const;

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;  // guards collectables_
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};  // a byte written here stops Serve()
  int port_ = 0;
  std::thread thread_;
};

}  // namespace inferd::metrics
