#include "runtime/model_dir.hpp"

#include <cstdlib>
#include <filesystem>

#include "core/error.hpp"

namespace ltri {

std::string resolve_model_dir(const std::string& flag, const std::string& bundled) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // A path may name a directory, or for commands that need only the tokenizer, a file.
  if (!flag.empty()) {
    if (!fs::exists(flag, ec)) fail("-m ", flag, ": model directory not found");
    return flag;
  }
  const char* env = std::getenv(kModelDirEnv);
  if (env && *env) {
    if (!fs::exists(env, ec)) fail(kModelDirEnv, "=", env, ": model directory not found");
    return env;
  }
  if (bundled.empty() || !fs::is_directory(bundled, ec)) {
    fail("no model directory given (-m) and the bundled model ", bundled.empty() ? "(none)" : bundled,
         " is missing");
  }
  return bundled;
}

}  // namespace ltri
