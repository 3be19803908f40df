#include "progress.hpp"

#include "core/error.hpp"

namespace ltri::eval {

std::string format_seconds(double s) {
  if (s < 60) return cat(int64_t(s + 0.5), " s");
  if (s < 3600) return cat(int64_t(s / 60), " min ", int64_t(s) % 60, " s");
  return cat(int64_t(s / 3600), " h ", int64_t(s / 60) % 60, " min");
}

std::string one_line(const std::string& text, size_t limit) {
  std::string out;
  for (char c : text) {
    if (out.size() >= limit) return out + "...";
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

}  // namespace ltri::eval
