#pragma once
// Which model directory a command uses: `-m` when given, else $LTRI_MODEL_DIR, else the model
// bundled with the source tree (so `ltri run -p "..."` works straight after a build).
#include <string>

namespace ltri {

constexpr const char* kModelDirEnv = "LTRI_MODEL_DIR";

// `flag`: the -m value ("" when absent); `bundled`: the built-in default. Throws ltri::Error
// saying which of the three sources named a path that does not exist.
std::string resolve_model_dir(const std::string& flag, const std::string& bundled);

}  // namespace ltri
