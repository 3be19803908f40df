#include "core/log.hpp"

namespace ltri {

namespace {
LogLevel g_level = LogLevel::Info;
}

LogLevel log_level() { return g_level; }
void set_log_level(LogLevel level) { g_level = level; }

void log_info(const std::string& line) {
  if (g_level >= LogLevel::Info) std::fprintf(stderr, "%s\n", line.c_str());
}
void log_warn(const std::string& line) { std::fprintf(stderr, "warning: %s\n", line.c_str()); }
void log_debug(const std::string& line) {
  if (g_level >= LogLevel::Debug) std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace ltri
