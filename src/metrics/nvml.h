// NVML, opened at run time: dlopen("libnvidia-ml.so.1") and our own declarations of the few functions
// and structs used (these machines have no NVML headers). Plain data out; no Prometheus here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace inferd::metrics {

struct GpuSample {
  uint32_t index = 0;
  std::string uuid;
  std::string name;
  bool has_utilization = false;
  double utilization_ratio = 0;         // share of the last sample period a kernel ran, 0..1
  double memory_utilization_ratio = 0;  // share of it device memory was read or written, 0..1
  bool has_memory = false;
  double memory_used_bytes = 0;
  double memory_total_bytes = 0;
  bool has_power = false;
  double power_watts = 0;
  bool has_temperature = false;
  double temperature_celsius = 0;
};

class Nvml {
 public:
  // Loads and initialises NVML. nullptr when the library is missing or init fails; `why` then says why.
  static std::unique_ptr<Nvml> Open(std::string* why, const char* library = "libnvidia-ml.so.1");
  ~Nvml();  // nvmlShutdown, dlclose
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // One sample per device; a field whose query failed has its has_* false.
  std::vector<GpuSample> Sample() const;

 private:
  struct Api;
  explicit Nvml(void* handle, std::unique_ptr<Api> api);
  void* handle_;
  std::unique_ptr<Api> api_;
};

}  // namespace inferd::metrics
