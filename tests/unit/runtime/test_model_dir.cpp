// Which model directory a command uses (-m, else $LTRI_MODEL_DIR, else the bundled one), and
// the parameter count derived from a config alone.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <unistd.h>

#include "core/error.hpp"
#include "io/model_config.hpp"
#include "model/model.hpp"
#include "runtime/engine.hpp"
#include "runtime/model_dir.hpp"
#include "runtime/model_info.hpp"
#include "test_paths.hpp"

#include <nlohmann/json.hpp>

namespace ltri {
namespace {

// Sets $LTRI_MODEL_DIR (or unsets it for nullopt) for one scope, restoring the old value.
class ScopedModelDirEnv {
 public:
  explicit ScopedModelDirEnv(std::optional<std::string> value) {
    if (const char* old = std::getenv(kModelDirEnv)) old_ = old;
    if (value) {
      setenv(kModelDirEnv, value->c_str(), 1);
    } else {
      unsetenv(kModelDirEnv);
    }
  }
  ~ScopedModelDirEnv() {
    if (old_) {
      setenv(kModelDirEnv, old_->c_str(), 1);
    } else {
      unsetenv(kModelDirEnv);
    }
  }

 private:
  std::optional<std::string> old_;
};

std::string error_of(const std::string& flag, const std::string& bundled) {
  try {
    resolve_model_dir(flag, bundled);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ModelDir, flag_then_environment_then_bundled) {
  const std::string a = test::fixtures_dir() + "/tiny/llama_gqa_bf16";
  const std::string b = test::fixtures_dir() + "/tiny/qwen2_bias_tied_bf16";
  const std::string bundled = test::source_dir() + "/models/ltri-demo";
  {
    ScopedModelDirEnv env(b);
    EXPECT_EQ(resolve_model_dir(a, bundled), a);
    EXPECT_EQ(resolve_model_dir("", bundled), b);
  }
  {
    ScopedModelDirEnv env(std::nullopt);
    EXPECT_EQ(resolve_model_dir("", bundled), bundled);
    ScopedModelDirEnv empty(std::string(""));  // set but empty: as if unset
    EXPECT_EQ(resolve_model_dir("", bundled), bundled);
  }
}

TEST(ModelDir, each_source_is_named_when_its_path_is_missing) {
  ScopedModelDirEnv env(std::string("/nonexistent/env-dir"));
  EXPECT_EQ(error_of("/nonexistent/flag-dir", "/x"), "-m /nonexistent/flag-dir: model directory not found");
  EXPECT_EQ(error_of("", "/x"), "LTRI_MODEL_DIR=/nonexistent/env-dir: model directory not found");
  ScopedModelDirEnv unset(std::nullopt);
  const std::string no_bundled = error_of("", "/nonexistent/bundled");
  EXPECT_NE(no_bundled.find("no model directory given (-m)"), std::string::npos) << no_bundled;
  EXPECT_NE(no_bundled.find("/nonexistent/bundled"), std::string::npos) << no_bundled;
}

TEST(ModelInfo, parameter_count_equals_the_loaded_weights) {
  // count_parameters reads the config; weight_bytes counts the f32 tensors actually loaded.
  for (const std::string& dir : {test::source_dir() + "/models/ltri-demo",
                                test::fixtures_dir() + "/tiny/llama_gqa_bf16",
                                test::fixtures_dir() + "/tiny/qwen2_bias_tied_bf16",
                                test::fixtures_dir() + "/tiny/mistral_head_dim_f16"}) {
    const auto model = Model::load(dir);
    EXPECT_EQ(count_parameters(model->config()) * int64_t(sizeof(float)), int64_t(model->weight_bytes())) << dir;
  }
  EXPECT_EQ(count_parameters(load_model_config(test::source_dir() + "/models/ltri-demo/config.json")), 15733632);
}

// The host-memory check is the CPU backend's (f32 weights in RAM); a CUDA load holds one tensor
// at a time on the host and is checked against device memory instead.
TEST(ModelInfo, host_memory_check_applies_to_the_cpu_backend_only) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ltri_huge_model_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  nlohmann::json config;
  std::ifstream(test::source_dir() + "/models/ltri-demo/config.json") >> config;
  config["hidden_size"] = 65536;  // ~1.2e13 parameters: no machine has the RAM for them as f32
  config["intermediate_size"] = 262144;
  config["num_hidden_layers"] = 200;
  config["num_attention_heads"] = 512;
  config["num_key_value_heads"] = 512;
  std::ofstream(dir / "config.json") << config.dump();
  auto load_error = [&](Device device) {
    ModelLoadOptions options;
    options.device = device;
    try {
      Engine::load(dir.string(), options);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(load_error(Device::Cpu).find("parameters need"), std::string::npos) << load_error(Device::Cpu);
  EXPECT_NE(load_error(Device::Cpu).find("as f32 weights, but only"), std::string::npos);
  // CUDA: some other refusal (no tokenizer, no CUDA build, no GPU, too little GPU memory).
  const std::string cuda = load_error(Device::Cuda);
  EXPECT_EQ(cuda.find("parameters need"), std::string::npos) << cuda;
  EXPECT_NE(cuda, "(no error)");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ltri
