// Hardware tier: per-GPU series from NVML, sampled by a thread of this collector every `interval`;
// scrapes read the latest sample. Without NVML (no driver) the collector exports nothing and one log
// line says why.
//
// Series (label gpu = NVML device index, stable for a given machine and driver; cardinality = GPUs):
//   inferd_gpu_info {gpu, uuid, name} (always 1), inferd_gpu_utilization_ratio,
//   inferd_gpu_memory_utilization_ratio, inferd_gpu_memory_used_bytes, inferd_gpu_memory_total_bytes,
//   inferd_gpu_power_watts, inferd_gpu_temperature_celsius.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "metrics/nvml.h"

namespace inferd::metrics {

class GpuCollector : public prometheus::Collectable {
 public:
  explicit GpuCollector(std::chrono::milliseconds interval = std::chrono::seconds(5),
                        const char* library = "libnvidia-ml.so.1");
  ~GpuCollector() override;  // stops and joins the sampling thread
  bool available() const { return nvml_ != nullptr; }
  std::vector<prometheus::MetricFamily> Collect() const override;

  // The families for `samples` (what Collect exports for the latest sample).
  static std::vector<prometheus::MetricFamily> Families(const std::vector<GpuSample>& samples);

 private:
  void Run(std::chrono::milliseconds interval);

  std::unique_ptr<Nvml> nvml_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;              // guarded by mu_
  std::vector<GpuSample> latest_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace inferd::metrics
