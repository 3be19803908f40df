#pragma once
// Paths the tests read, fixed at configure time.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ltri::test {

inline std::string source_dir() { return LTRI_SOURCE_DIR; }
inline std::string fixtures_dir() { return LTRI_FIXTURES_DIR; }
inline std::string bin_dir() { return LTRI_BIN_DIR; }
inline std::string ltri_binary() { return std::string(LTRI_BIN_DIR) + "/ltri"; }
// Third-party files fetched by scripts/setup.sh (never committed): .deps/ in the source tree.
inline std::string deps_dir() { return std::string(LTRI_SOURCE_DIR) + "/.deps"; }

// A scratch path in the temp directory that no other test process uses: CTest runs tests in
// parallel, each in its own process, so a fixed name would be shared (and deleted) under them.
inline std::string scratch_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name)).string();
}

}  // namespace ltri::test
