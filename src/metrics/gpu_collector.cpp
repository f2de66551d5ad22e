#include "metrics/gpu_collector.h"

#include <spdlog/spdlog.h>

#include "metrics/family_builder.h"

namespace inferd::metrics {

GpuCollector::GpuCollector(std::chrono::milliseconds interval, const char* library) {
  std::string why;
  nvml_ = Nvml::Open(&why, library);
  if (nvml_ == nullptr) {
    spdlog::info("metrics: no GPU series ({})", why);
    return;
  }
  latest_ = nvml_->Sample();
  spdlog::info("metrics: NVML reports {} GPU(s), sampled every {} ms", latest_.size(), interval.count());
  thread_ = std::thread([this, interval] { Run(interval); });
}

GpuCollector::~GpuCollector() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GpuCollector::Run(std::chrono::milliseconds interval) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
    lock.unlock();
    std::vector<GpuSample> s = nvml_->Sample();
    lock.lock();
    latest_ = std::move(s);
  }
}

std::vector<prometheus::MetricFamily> GpuCollector::Collect() const {
  if (nvml_ == nullptr) return {};
  std::lock_guard<std::mutex> lock(mu_);
  return Families(latest_);
}

std::vector<prometheus::MetricFamily> GpuCollector::Families(const std::vector<GpuSample>& samples) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  if (samples.empty()) return out;
  FamilyBuilder info("inferd_gpu_info", "GPU identity; the value is always 1.", MetricType::Gauge);
  FamilyBuilder util("inferd_gpu_utilization_ratio", "Share of the last NVML sample period a kernel ran on the GPU.",
                     MetricType::Gauge);
  FamilyBuilder mem_util("inferd_gpu_memory_utilization_ratio",
                         "Share of the last NVML sample period device memory was read or written.", MetricType::Gauge);
  FamilyBuilder used("inferd_gpu_memory_used_bytes", "GPU memory in use.", MetricType::Gauge);
  FamilyBuilder total("inferd_gpu_memory_total_bytes", "GPU memory installed.", MetricType::Gauge);
  FamilyBuilder power("inferd_gpu_power_watts", "GPU power draw.", MetricType::Gauge);
  FamilyBuilder temp("inferd_gpu_temperature_celsius", "GPU core temperature.", MetricType::Gauge);
  for (const GpuSample& s : samples) {
    const std::string gpu = std::to_string(s.index);
    info.Add({{"gpu", gpu}, {"uuid", s.uuid}, {"name", s.name}}, 1.0);
    if (s.has_utilization) {
      util.Add({{"gpu", gpu}}, s.utilization_ratio);
      mem_util.Add({{"gpu", gpu}}, s.memory_utilization_ratio);
    }
    if (s.has_memory) {
      used.Add({{"gpu", gpu}}, s.memory_used_bytes);
      total.Add({{"gpu", gpu}}, s.memory_total_bytes);
    }
    if (s.has_power) power.Add({{"gpu", gpu}}, s.power_watts);
    if (s.has_temperature) temp.Add({{"gpu", gpu}}, s.temperature_celsius);
  }
  for (FamilyBuilder* f : {&info, &util, &mem_util, &used, &total, &power, &temp}) {
    prometheus::MetricFamily fam = f->Take();
    if (!fam.metric.empty()) out.push_back(std::move(fam));
  }
  return out;
}

}  // namespace inferd::metrics
