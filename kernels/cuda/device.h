// CUDA device discovery that never fails on machines without a driver or GPU.
#pragma once

namespace inferd::kernels {

// Number of usable CUDA devices; 0 when no driver, no device, or the runtime cannot start.
int CudaDeviceCount();

}  // namespace inferd::kernels
