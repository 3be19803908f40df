#pragma once
// Turns CUDA runtime and cuBLAS status codes into ltri::Error: one line naming the call that
// failed, the error, and where. Kernel launches are checked right after the launch (bad
// configuration); faults inside a kernel surface at the next synchronising call (a download),
// which then names itself: run with CUDA_LAUNCH_BLOCKING=1 to pin them to the kernel.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.hpp"

namespace ltri::cuda {

inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    fail("CUDA: ", call, " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") at ",
         file, ":", line);
  }
}

inline void check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail("cuBLAS: ", call, " failed: ", cublasGetStatusName(status), " (", cublasGetStatusString(status),
         ") at ", file, ":", line);
  }
}

// After a <<<...>>> launch: configuration errors (too much shared memory, bad grid).
inline void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    fail("CUDA: kernel ", kernel, " launch failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status),
         ") at ", file, ":", line);
  }
}

}  // namespace ltri::cuda

#define LTRI_CUDA_CHECK(call) ::ltri::cuda::check((call), #call, __FILE__, __LINE__)
#define LTRI_CUDA_CHECK_LAUNCH(kernel) ::ltri::cuda::check_launch(kernel, __FILE__, __LINE__)
