#include "metrics/metrics_server.h"

#include <prometheus/exposer.h>

#include <stdexcept>

#include "metrics/process_collector.h"

namespace inferd::metrics {

MetricsServer::MetricsServer(const std::string& address) : registry_(std::make_shared<prometheus::Registry>()) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
  } catch (const std::exception& e) {
    throw std::runtime_error("metrics.address: cannot listen on " + address + " (" + e.what() + ")");
  }
  exposer_->RegisterCollectable(registry_);
  Add(std::make_shared<ProcessCollector>(INFERD_VERSION));
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::Add(std::shared_ptr<prometheus::Collectable> c) {
  exposer_->RegisterCollectable(c);
  owned_.push_back(std::move(c));
}

int MetricsServer::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace inferd::metrics
