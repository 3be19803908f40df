#include "kv/background_host_alloc.hpp"

#include <system_error>
#include <utility>

#include "ops/backend.hpp"

namespace ltri {

float* alloc_host_memory(Backend* backend, size_t n_floats) {
  return backend ? backend->alloc_host(n_floats) : new float[n_floats];
}

void free_host_memory(Backend* backend, float* p) {
  if (backend) {
    backend->free_host(p);
  } else {
    delete[] p;
  }
}

BackgroundHostAlloc::BackgroundHostAlloc(Backend* backend, size_t n_floats) : backend_(backend), n_floats_(n_floats) {
  try {
    result_ = std::async(std::launch::async, [backend, n_floats] { return alloc_host_memory(backend, n_floats); });
  } catch (const std::system_error&) {
    // No thread to be had: nothing pending, the caller allocates when it needs the memory.
  }
}

BackgroundHostAlloc::~BackgroundHostAlloc() { discard(); }

BackgroundHostAlloc::BackgroundHostAlloc(BackgroundHostAlloc&& o) noexcept
    : backend_(o.backend_), n_floats_(o.n_floats_), result_(std::move(o.result_)) {}

BackgroundHostAlloc& BackgroundHostAlloc::operator=(BackgroundHostAlloc&& o) noexcept {
  if (this != &o) {
    discard();
    backend_ = o.backend_;
    n_floats_ = o.n_floats_;
    result_ = std::move(o.result_);
  }
  return *this;
}

float* BackgroundHostAlloc::take() { return result_.get(); }  // get() leaves result_ invalid

void BackgroundHostAlloc::discard() noexcept {
  if (!result_.valid()) return;
  try {
    free_host_memory(backend_, result_.get());
  } catch (...) {
    // The allocation failed: there is nothing to free, and no one left to tell.
  }
}

}  // namespace ltri
