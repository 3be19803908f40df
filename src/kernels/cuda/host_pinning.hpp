#pragma once
// A second way to make page-locked host memory, for measuring against cudaHostAlloc: anonymous
// memory from mmap, advised to use transparent huge pages (2 MiB) and touched once per page
// before cudaHostRegister pins it. cudaHostAlloc of the context store's slabs cost ~1.3 GB/s on
// the H200 machine (5.6 s of a 32K ltri prefill at 8B shape, measured by running the same
// prompt twice: the second run reuses the slabs); faulting in huge pages first may leave the
// driver less to do. LTRI_HOST_PIN=register selects it; the default stays cudaHostAlloc.
#include <cstddef>

namespace ltri::cuda {

// LTRI_HOST_PIN: "alloc" (default, cudaHostAlloc) or "register"; anything else is an error.
bool host_pin_by_register();

// `bytes` rounded up to whole 2 MiB pages, mapped, touched and registered with CUDA; *mapped
// gets the mapped size (for unpin_registered). Null, with nothing left allocated, if any step
// fails (the caller falls back as for a refused cudaHostAlloc).
float* pin_registered(size_t bytes, size_t* mapped);
// Unregisters and unmaps memory from pin_registered. Never throws.
void unpin_registered(float* p, size_t mapped);

}  // namespace ltri::cuda
