#pragma once
// Bookkeeping behind Backend::stats(): bytes moved host <-> backend and bytes allocated through
// alloc(), now and at the peak. free() is handed only a pointer, so the size of every live
// allocation is remembered here. A mutex makes it safe should a policy allocate from worker
// threads; alloc/free are rare (weights at load, KV growth), so it costs nothing measurable.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "ops/backend.hpp"

namespace ltri {

class AllocationCounter {
 public:
  void on_alloc(const void* p, size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = bytes;
    stats_.device_bytes += bytes;
    stats_.device_peak_bytes = std::max(stats_.device_peak_bytes, stats_.device_bytes);
  }
  void on_free(const void* p) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours (or freed twice): nothing to subtract
    stats_.device_bytes -= it->second;
    live_.erase(it);
  }
  void on_upload(size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    stats_.h2d_bytes += bytes;
  }
  void on_download(size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    stats_.d2h_bytes += bytes;
  }
  BackendStats stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  // The peak restarts from what is allocated now (e.g. after the weights, before a test).
  void reset_peak() {
    const std::lock_guard<std::mutex> lock(mutex_);
    stats_.device_peak_bytes = stats_.device_bytes;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<const void*, size_t> live_;
  BackendStats stats_;
};

}  // namespace ltri
