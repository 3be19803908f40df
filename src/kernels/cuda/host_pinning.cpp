#include "kernels/cuda/host_pinning.hpp"

#include <cuda_runtime.h>
#include <sys/mman.h>

#include <cstdlib>
#include <string>

#include "core/error.hpp"

namespace ltri::cuda {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kSmallPage = 4096;
}  // namespace

bool host_pin_by_register() {
  // Read at every allocation: a store takes a few dozen slabs per layer, each far costlier.
  const char* env = std::getenv("LTRI_HOST_PIN");
  const std::string mode = env ? env : "";
  if (mode.empty() || mode == "register") return true;
  if (mode == "alloc") return false;
  fail("LTRI_HOST_PIN=", mode, ": expected register or alloc");
}

float* pin_registered(size_t bytes, size_t* mapped) {
  const size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  (void)madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
  // One write per small page faults every page in now, on this thread (a huge page takes the
  // first write of its 512 small ones).
  volatile char* bytes_at = static_cast<char*>(p);
  for (size_t at = 0; at < size; at += kSmallPage) bytes_at[at] = 0;
  // Mapped: kernels may read the slabs in place (CudaBackend::gather_rows_stable); a device
  // that cannot map host memory still gets it page-locked, unmapped.
  cudaError_t status = cudaHostRegister(p, size, cudaHostRegisterPortable | cudaHostRegisterMapped);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    status = cudaHostRegister(p, size, cudaHostRegisterPortable);
  }
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    munmap(p, size);
    return nullptr;
  }
  *mapped = size;
  return static_cast<float*>(p);
}

void unpin_registered(float* p, size_t mapped) {
  (void)cudaHostUnregister(p);
  munmap(p, mapped);
}

}  // namespace ltri::cuda
