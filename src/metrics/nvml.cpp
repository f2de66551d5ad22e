#include "metrics/nvml.h"

#include <dlfcn.h>

// Declarations from NVML's public API (nvml.h), ABI-stable since the _v2 entry points. At global scope, as in
// nvml.h, so the function pointer types are the library's own (UBSan's -fsanitize=function compares them).
extern "C" {
struct nvmlDevice_st;
struct nvmlUtilization_t {
  unsigned int gpu;     // percent
  unsigned int memory;  // percent
};
struct nvmlMemory_t {
  unsigned long long total;  // bytes
  unsigned long long free;
  unsigned long long used;
};
}

namespace inferd::metrics {
namespace {

using nvmlReturn_t = int;  // NVML_SUCCESS = 0
using nvmlDevice_t = ::nvmlDevice_st*;
constexpr int kNvmlTemperatureGpu = 0;
constexpr unsigned kUuidBytes = 96;
constexpr unsigned kNameBytes = 96;

}  // namespace

struct Nvml::Api {
  nvmlReturn_t (*init)();
  nvmlReturn_t (*shutdown)();
  const char* (*error_string)(nvmlReturn_t);
  nvmlReturn_t (*device_count)(unsigned int*);
  nvmlReturn_t (*handle_by_index)(unsigned int, nvmlDevice_t*);
  nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*);
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*);
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*);  // milliwatts
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int*);
};

std::unique_ptr<Nvml> Nvml::Open(std::string* why, const char* library) {
  void* h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = dlerror();
    *why = std::string("cannot load ") + library + ": " + (e ? e : "unknown error");
    return nullptr;
  }
  auto api = std::make_unique<Api>();
  bool missing = false;
  std::string missing_name;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    if (fn == nullptr && !missing) {
      missing = true;
      missing_name = name;
    }
  };
  sym(api->init, "nvmlInit_v2");
  sym(api->shutdown, "nvmlShutdown");
  sym(api->error_string, "nvmlErrorString");
  sym(api->device_count, "nvmlDeviceGetCount_v2");
  sym(api->handle_by_index, "nvmlDeviceGetHandleByIndex_v2");
  sym(api->uuid, "nvmlDeviceGetUUID");
  sym(api->name, "nvmlDeviceGetName");
  sym(api->utilization, "nvmlDeviceGetUtilizationRates");
  sym(api->memory, "nvmlDeviceGetMemoryInfo");
  sym(api->power, "nvmlDeviceGetPowerUsage");
  sym(api->temperature, "nvmlDeviceGetTemperature");
  if (missing) {
    *why = std::string(library) + " lacks " + missing_name;
    dlclose(h);
    return nullptr;
  }
  if (nvmlReturn_t rc = api->init(); rc != 0) {
    *why = std::string("nvmlInit_v2 failed: ") + api->error_string(rc);
    dlclose(h);
    return nullptr;
  }
  return std::unique_ptr<Nvml>(new Nvml(h, std::move(api)));
}

Nvml::Nvml(void* handle, std::unique_ptr<Api> api) : handle_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(handle_);
}

std::vector<GpuSample> Nvml::Sample() const {
  std::vector<GpuSample> out;
  unsigned int count = 0;
  if (api_->device_count(&count) != 0) return out;
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (api_->handle_by_index(i, &dev) != 0) continue;
    GpuSample s;
    s.index = i;
    char buf[kUuidBytes > kNameBytes ? kUuidBytes : kNameBytes] = {};
    if (api_->uuid(dev, buf, kUuidBytes) == 0) s.uuid = buf;
    if (api_->name(dev, buf, kNameBytes) == 0) s.name = buf;
    nvmlUtilization_t u{};
    if (api_->utilization(dev, &u) == 0) {
      s.has_utilization = true;
      s.utilization_ratio = u.gpu / 100.0;
      s.memory_utilization_ratio = u.memory / 100.0;
    }
    nvmlMemory_t m{};
    if (api_->memory(dev, &m) == 0) {
      s.has_memory = true;
      s.memory_used_bytes = static_cast<double>(m.used);
      s.memory_total_bytes = static_cast<double>(m.total);
    }
    unsigned int mw = 0;
    if (api_->power(dev, &mw) == 0) {
      s.has_power = true;
      s.power_watts = mw / 1000.0;
    }
    unsigned int t = 0;
    if (api_->temperature(dev, kNvmlTemperatureGpu, &t) == 0) {
      s.has_temperature = true;
      s.temperature_celsius = t;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace inferd::metrics
