#pragma once
// Diagnostics go to stderr (stdout carries generated text only).
#include <cstdio>
#include <string>

namespace ltri {

enum class LogLevel { Quiet = 0, Info = 1, Debug = 2 };
LogLevel log_level();
void set_log_level(LogLevel level);

void log_info(const std::string& line);   // printed unless Quiet
void log_warn(const std::string& line);   // always printed, prefixed "warning: "
void log_debug(const std::string& line);  // printed at Debug

}  // namespace ltri
