#include "core/memory_stats.hpp"

#include <cstdio>
#include <cstring>

namespace ltri {
namespace {

// "VmHWM:     12345 kB" -> bytes; 0 if the line is not this field.
size_t parse_kib_field(const char* line, const char* field) {
  const size_t n = std::strlen(field);
  if (std::strncmp(line, field, n) != 0 || line[n] != ':') return 0;
  unsigned long long kib = 0;
  if (std::sscanf(line + n + 1, "%llu", &kib) != 1) return 0;
  return size_t(kib) * 1024;
}

}  // namespace

MemoryStats read_memory_stats() {
  MemoryStats stats;
  // Read with stdio rather than iostreams: this is called at the end of every run and should
  // not depend on locale state or allocate much.
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return stats;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    if (size_t v = parse_kib_field(line, "VmRSS")) stats.rss_bytes = v;
    if (size_t v = parse_kib_field(line, "VmHWM")) stats.peak_rss_bytes = v;
  }
  std::fclose(f);
  return stats;
}

size_t current_rss_bytes() { return read_memory_stats().rss_bytes; }
size_t peak_rss_bytes() { return read_memory_stats().peak_rss_bytes; }

size_t available_memory_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  size_t available = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (size_t v = parse_kib_field(line, "MemAvailable")) available = v;
  }
  std::fclose(f);
  return available;
}

}  // namespace ltri
