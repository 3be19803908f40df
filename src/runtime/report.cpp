#include "runtime/report.hpp"

#include <cstdio>

namespace ltri {
namespace {

std::string line(const char* format, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, args...);
  return std::string(buf) + "\n";
}

// "(X ms per token, Y tokens per second)"; zeros for an empty phase rather than inf/nan.
std::string rates(double ms, int64_t n) {
  const double ms_per = n > 0 ? ms / double(n) : 0.0;
  const double per_s = ms > 0 && n > 0 ? 1000.0 * double(n) / ms : 0.0;
  return line("(%8.2f ms per token, %8.2f tokens per second)", ms_per, per_s);
}

}  // namespace

double bytes_to_mib(size_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

std::string format_timings(double load_ms, const GenerateStats& s, size_t peak_rss_bytes) {
  std::string out;
  out += line("       load time = %10.2f ms", load_ms);
  std::string l = line("prompt eval time = %10.2f ms / %5lld tokens ", s.prompt_ms, (long long)s.prompt_tokens);
  out += l.substr(0, l.size() - 1) + rates(s.prompt_ms, s.prompt_tokens);
  l = line("       eval time = %10.2f ms / %5lld runs   ", s.eval_ms, (long long)s.eval_runs);
  out += l.substr(0, l.size() - 1) + rates(s.eval_ms, s.eval_runs);
  out += line("      total time = %10.2f ms / %5lld tokens", s.total_ms,
              (long long)(s.prompt_tokens + s.eval_runs));
  if (s.kv_host_bytes > 0) {
    out += line("peak RSS = %.1f MiB, KV cache = %.1f MiB, host KV store = %.1f MiB", bytes_to_mib(peak_rss_bytes),
                bytes_to_mib(s.kv_bytes), bytes_to_mib(s.kv_host_bytes));
  } else {
    out += line("peak RSS = %.1f MiB, KV cache = %.1f MiB", bytes_to_mib(peak_rss_bytes), bytes_to_mib(s.kv_bytes));
  }
  return out;
}

}  // namespace ltri
