// Process and host metrics read from /proc on every scrape (Prometheus client conventions:
// process_cpu_seconds_total, process_resident_memory_bytes, ...), plus inferd_build_info.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace inferd::metrics {

class ProcessCollector : public prometheus::Collectable {
 public:
  explicit ProcessCollector(std::string version);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string version_;
};

}  // namespace inferd::metrics
