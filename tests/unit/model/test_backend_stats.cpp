// Backend::stats() on the CPU backend: alloc/free move device_bytes by the (64-byte rounded)
// allocation size, the peak holds the high-water mark until reset_peak(), and upload/download
// count nothing (they copy within host memory). A loaded model reaches its backend through
// Model::backend(), and holds at least its weights there.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <vector>

#include "kernels/cpu/cpu_backend.hpp"
#include "model/model.hpp"
#include "ops/backend.hpp"

namespace ltri {
namespace {

TEST(BackendStats, cpu_counts_allocations_and_not_host_copies) {
  CpuBackend cpu(1);
  EXPECT_EQ(cpu.stats().device_bytes, 0u);
  float* a = cpu.alloc(1000);  // 4000 bytes, rounded up to 4032 (a multiple of 64)
  EXPECT_EQ(cpu.stats().device_bytes, 4032u);
  float* b = cpu.alloc(16);  // 64 bytes exactly
  EXPECT_EQ(cpu.stats().device_bytes, 4096u);
  EXPECT_EQ(cpu.stats().device_peak_bytes, 4096u);
  cpu.free(a);
  EXPECT_EQ(cpu.stats().device_bytes, 64u);
  EXPECT_EQ(cpu.stats().device_peak_bytes, 4096u);  // the high-water mark stays
  cpu.reset_peak();
  EXPECT_EQ(cpu.stats().device_peak_bytes, 64u);

  std::vector<float> host(16, 2.0f);
  cpu.upload(b, host.data(), host.size());
  cpu.download(host.data(), b, host.size());
  EXPECT_EQ(cpu.stats().h2d_bytes, 0u);
  EXPECT_EQ(cpu.stats().d2h_bytes, 0u);
  cpu.free(b);
  cpu.free(nullptr);
  EXPECT_EQ(cpu.stats().device_bytes, 0u);
  EXPECT_EQ(cpu.stats().device_peak_bytes, 64u);
}

TEST(BackendStats, a_model_reaches_its_backend_which_holds_the_weights) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ltri_stats_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 97,
    "hidden_size": 48, "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 6,
    "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-5})";
  ModelLoadOptions o;
  o.random_weights = true;
  o.threads = 1;
  const std::unique_ptr<Model> model = Model::load(dir.string(), o);
  fs::remove_all(dir);
  // Parameters counted from the config: embed + lm_head (97 x 48 each), final norm, and per
  // layer 2 norms (48), q and o (48 x 48), k and v (16 x 48), gate/up/down (80 x 48).
  const size_t params = 2 * 97 * 48 + 48 + 2 * (2 * 48 + 2 * 48 * 48 + 2 * 16 * 48 + 3 * 80 * 48);
  EXPECT_EQ(model->weight_bytes(), params * 4);
  const BackendStats stats = model->backend().stats();
  EXPECT_GE(stats.device_bytes, params * 4);
  EXPECT_EQ(stats.device_peak_bytes, stats.device_bytes);  // nothing freed yet
  EXPECT_STREQ(model->backend().name(), "cpu");
}

}  // namespace
}  // namespace ltri
