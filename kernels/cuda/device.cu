#include <cuda_runtime.h>

#include "cuda/device.h"

namespace inferd::kernels {

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return n;
}

}  // namespace inferd::kernels
