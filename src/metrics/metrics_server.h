// MetricsServer: HTTP GET /metrics on one address, serving every registered collectable.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Exposer;
}

namespace inferd::metrics {

class MetricsServer {
 public:
  // Binds `address` ("host:port", port 0 = any free port). Throws std::runtime_error naming the address
  // when it cannot listen.
  explicit MetricsServer(const std::string& address);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The registry owned by this server; modules' exporters add their families here.
  prometheus::Registry& registry() { return *registry_; }
  // Keeps `c` alive for as long as the server.
  void Add(std::shared_ptr<prometheus::Collectable> c);
  int port() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> owned_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace inferd::metrics
