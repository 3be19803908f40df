#pragma once
// Host memory of this process, as the kernel counts it (/proc/self/status), for the reports
// `ltri run` and `ltri bench` print, and the memory a load may still use. Returns zeros where
// /proc is not available.
#include <cstddef>

namespace ltri {

struct MemoryStats {
  size_t rss_bytes = 0;       // VmRSS: resident now
  size_t peak_rss_bytes = 0;  // VmHWM: the most that was ever resident
};

MemoryStats read_memory_stats();
size_t current_rss_bytes();
size_t peak_rss_bytes();
// MemAvailable of /proc/meminfo: what can be allocated now without swapping; 0 if unknown.
size_t available_memory_bytes();

}  // namespace ltri
