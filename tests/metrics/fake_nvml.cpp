// A stand-in libnvidia-ml.so.1 for GpuCollector's tests: two devices with fixed readings; device 1's
// power query fails (NVML_ERROR_NOT_SUPPORTED = 3). Declarations match NVML's C ABI.
#include <cstring>

extern "C" {
struct nvmlDevice_st {
  unsigned index;
};
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
struct nvmlMemory_t {
  unsigned long long total, free, used;
};

static nvmlDevice_st devices[2] = {{0}, {1}};

int nvmlInit_v2() {
  return 0;
}
int nvmlShutdown() {
  return 0;
}
const char* nvmlErrorString(int) {
  return "fake error";
}
int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_st** d) {
  if (i > 1) return 2;
  *d = &devices[i];
  return 0;
}
int nvmlDeviceGetUUID(nvmlDevice_st* d, char* buf, unsigned int len) {
  std::strncpy(buf, d->index == 0 ? "GPU-aaaa" : "GPU-bbbb", len);
  return 0;
}
int nvmlDeviceGetName(nvmlDevice_st*, char* buf, unsigned int len) {
  std::strncpy(buf, "Fake H200", len);
  return 0;
}
int nvmlDeviceGetUtilizationRates(nvmlDevice_st* d, nvmlUtilization_t* u) {
  u->gpu = d->index == 0 ? 93 : 10;
  u->memory = d->index == 0 ? 41 : 5;
  return 0;
}
int nvmlDeviceGetMemoryInfo(nvmlDevice_st* d, nvmlMemory_t* m) {
  m->total = 150000000000ULL;
  m->used = d->index == 0 ? 120000000000ULL : 1000000ULL;
  m->free = m->total - m->used;
  return 0;
}
int nvmlDeviceGetPowerUsage(nvmlDevice_st* d, unsigned int* mw) {
  if (d->index == 1) return 3;
  *mw = 612500;
  return 0;
}
int nvmlDeviceGetTemperature(nvmlDevice_st* d, int, unsigned int* t) {
  *t = d->index == 0 ? 71 : 35;
  return 0;
}
}
