#pragma once
// How the CUDA backend makes page-locked host memory (the context store's slabs): anonymous
// memory from mmap, advised to use transparent huge pages (2 MiB) and touched once per page
// before cudaHostRegister pins it. cudaHostAlloc pinned the slabs at ~1.3 GB/s on the H200
// machine (5.6 s of a 32K ltri prefill at 8B shape: the same prompt run twice took 15.35 s, then
// 9.70 s reusing the slabs); this way the 32K prefill took 8.23 s against 12.40 s, and 128K
// with a bf16 store 44.81 s against 65.64 s (THP in madvise mode there). LTRI_HOST_PIN=alloc
// goes back to cudaHostAlloc.
#include <cstddef>

namespace ltri::cuda {

// LTRI_HOST_PIN: "register" (default) or "alloc" (cudaHostAlloc); anything else is an error.
bool host_pin_by_register();

// `bytes` rounded up to whole 2 MiB pages, mapped, touched and registered with CUDA; *mapped
// gets the mapped size (for unpin_registered). Null, with nothing left allocated, if any step
// fails (the caller falls back as for a refused cudaHostAlloc).
float* pin_registered(size_t bytes, size_t* mapped);
// Unregisters and unmaps memory from pin_registered. Never throws.
void unpin_registered(float* p, size_t mapped);

}  // namespace ltri::cuda
