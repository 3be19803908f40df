#pragma once
// One host allocation made on a background thread, so that its cost (page-locking on CUDA:
// ~35 ms for a 128 MB slab of the context store) is paid while the caller keeps working, and
// the caller waits only if it needs the memory before the thread is done.
//
// The memory belongs to this object until take() hands it over. Destroying (or assigning over)
// an object whose allocation is in flight waits for the thread and frees what it allocated: no
// leak, and the thread never touches anything but the pointer it returns, so its owner may be
// moved or destroyed at any time. If no thread can be started, nothing is pending and the
// caller allocates itself.
#include <cstddef>
#include <future>

namespace ltri {

class Backend;

// Backend::alloc_host / free_host, or new[] / delete[] without a backend.
float* alloc_host_memory(Backend* backend, size_t n_floats);
void free_host_memory(Backend* backend, float* p);

class BackgroundHostAlloc {
 public:
  BackgroundHostAlloc() = default;
  // Starts alloc_host_memory(backend, n_floats) on a thread of its own. backend (if any) must be
  // safe to call from another thread and outlive this object.
  BackgroundHostAlloc(Backend* backend, size_t n_floats);
  ~BackgroundHostAlloc();
  BackgroundHostAlloc(BackgroundHostAlloc&& o) noexcept;
  BackgroundHostAlloc& operator=(BackgroundHostAlloc&& o) noexcept;
  BackgroundHostAlloc(const BackgroundHostAlloc&) = delete;
  BackgroundHostAlloc& operator=(const BackgroundHostAlloc&) = delete;

  // Whether an allocation is in flight or done and not taken.
  bool pending() const { return result_.valid(); }
  size_t n_floats() const { return n_floats_; }
  // Waits for the allocation and hands the memory over (the caller frees it with
  // free_host_memory); rethrows the allocation's error. Only when pending().
  float* take();

 private:
  void discard() noexcept;  // waits, frees the memory (or drops the error)

  Backend* backend_ = nullptr;
  size_t n_floats_ = 0;
  std::future<float*> result_;
};

}  // namespace ltri
