#include "runtime/engine.hpp"

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "io/model_config.hpp"
#include "runtime/generation_config.hpp"
#include "runtime/generator.hpp"
#include "runtime/model_info.hpp"

namespace ltri {

namespace fs = std::filesystem;

Engine::Engine(std::string model_dir, std::unique_ptr<Model> model, Tokenizer tokenizer, double load_ms)
    : model_dir_(std::move(model_dir)),
      model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      load_ms_(load_ms),
      eos_ids_(model_eos_ids(tokenizer_, model_->config())) {
  for (int64_t id : load_generation_eos_ids(model_dir_)) {
    if (id < model_->config().vocab_size && std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) {
      eos_ids_.push_back(int32_t(id));
    }
  }
}

Engine Engine::load(const std::string& model_dir, const ModelLoadOptions& options) {
  const Timer timer;
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    if (fs::exists(model_dir, ec)) fail(model_dir, ": not a directory (give the model directory, not a file in it)");
    fail(model_dir, ": model directory not found");
  }
  const fs::path config_path = fs::path(model_dir) / "config.json";
  if (!fs::exists(config_path, ec)) fail(model_dir, ": no config.json in the model directory");
  // Parsed here only to fail early (a bad field, or weights that cannot fit in memory);
  // Model::load reads it again (a few KB).
  const ModelConfig config = load_model_config(config_path.string());
  if (options.device == Device::Cpu) check_weights_fit_in_memory(config, model_dir);
  if (!fs::exists(fs::path(model_dir) / "tokenizer.json", ec)) {
    fail(model_dir, ": no tokenizer.json in the model directory");
  }
  Tokenizer tokenizer = Tokenizer::load(model_dir);
  std::unique_ptr<Model> model = Model::load(model_dir, options);
  return Engine(model_dir, std::move(model), std::move(tokenizer), timer.elapsed_ms());
}

}  // namespace ltri
