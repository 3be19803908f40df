#pragma once
// Runs the built `ltri` binary for the end-to-end eval tests and returns its exit status and
// output (stdout and stderr together).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_paths.hpp"

namespace ltri::eval::test_cli {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult run_ltri(const std::string& args) {
  const std::string command = test::ltri_binary() + " " + args + " 2>&1";
  CommandResult r;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string model_flag() { return "-m " + test::source_dir() + "/models/ltri-demo"; }

// The last line of the output, which must be the one "error:" line.
inline std::string last_line(const std::string& output) {
  std::string text = output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
}

}  // namespace ltri::eval::test_cli
