#pragma once
// Paths the tests read, fixed at configure time.
#include <string>

namespace ltri::test {

inline std::string source_dir() { return LTRI_SOURCE_DIR; }
inline std::string fixtures_dir() { return LTRI_FIXTURES_DIR; }
inline std::string bin_dir() { return LTRI_BIN_DIR; }
inline std::string ltri_binary() { return std::string(LTRI_BIN_DIR) + "/ltri"; }
// Third-party files fetched by scripts/setup.sh (never committed): .deps/ in the source tree.
inline std::string deps_dir() { return std::string(LTRI_SOURCE_DIR) + "/.deps"; }

}  // namespace ltri::test
