// Random and loaded weights on the CPU backend: random weights are the same with 1 and 4
// threads and differ across seeds, follow the distribution contract (matrices normal with std
// 1/sqrt(fan_in), embeddings std 1, norms 1, biases 0), are bf16 values when config.json says
// torch_dtype bfloat16; the CPU keeps every matrix in f32 and refuses bf16 weights in one line;
// the bundled demo model (a bf16 checkpoint) loads as f32 under Auto.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "io/model_config.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "model/llama_weights.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

ModelConfig tiny_config(const std::string& extra = "") {
  return parse_model_config(R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 300,
    "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2)" + extra + "}",
                            "tiny config");
}

std::vector<float> values(const MatrixWeight& m) {
  EXPECT_EQ(m.dtype, DType::F32);
  return std::vector<float>(m.buffer.data(), m.buffer.data() + m.numel);
}

std::vector<float> values(const BackendBuffer& b) { return std::vector<float>(b.data(), b.data() + b.size()); }

double stddev_of(const std::vector<float>& v) {
  double s = 0.0, s2 = 0.0;
  for (float x : v) {
    s += x;
    s2 += double(x) * x;
  }
  const double mean = s / double(v.size());
  return std::sqrt(s2 / double(v.size()) - mean * mean);
}

TEST(LlamaWeights, random_weights_do_not_depend_on_the_thread_count) {
  const ModelConfig c = tiny_config();
  CpuBackend one(1);
  const LlamaWeights a = random_llama_weights(c, 5, one);
  CpuBackend four(4);
  const LlamaWeights b = random_llama_weights(c, 5, four);
  EXPECT_EQ(values(a.embed), values(b.embed));
  for (size_t l = 0; l < 2; ++l) {
    EXPECT_EQ(values(a.layers[l].wq), values(b.layers[l].wq));
    EXPECT_EQ(values(a.layers[l].w_down), values(b.layers[l].w_down));
  }
  const LlamaWeights other = random_llama_weights(c, 6, four);
  EXPECT_NE(values(a.layers[0].wq), values(other.layers[0].wq));
  // Tensors draw from streams of their own: same-shape matrices differ.
  EXPECT_NE(values(a.layers[0].w_gate), values(a.layers[0].w_up));
}

TEST(LlamaWeights, random_weights_follow_the_distribution_contract) {
  const ModelConfig c = tiny_config();
  CpuBackend cpu(2);
  const LlamaWeights w = random_llama_weights(c, 1, cpu);
  // 300 x 256 = 76800 samples: std within ~0.3% (1/sqrt(2n)); 2% is 7 standard errors.
  EXPECT_NEAR(stddev_of(values(w.embed)), 1.0, 0.02);
  EXPECT_NEAR(stddev_of(values(w.lm_head)) * std::sqrt(256.0), 1.0, 0.02);
  EXPECT_NEAR(stddev_of(values(w.layers[1].w_gate)) * std::sqrt(256.0), 1.0, 0.02);
  EXPECT_NEAR(stddev_of(values(w.layers[1].w_down)) * std::sqrt(512.0), 1.0, 0.02);
  EXPECT_EQ(values(w.layers[0].attn_norm), std::vector<float>(256, 1.0f));
  EXPECT_EQ(values(w.final_norm), std::vector<float>(256, 1.0f));
  EXPECT_EQ(values(w.layers[0].bq), std::vector<float>(256, 0.0f));  // Qwen2: q/k/v biases
  EXPECT_EQ(values(w.layers[0].bk), std::vector<float>(128, 0.0f));
  // Parameters: embed + lm_head, final norm; per layer norms, biases, q/o, k/v, gate/up/down.
  const size_t params = 2 * 300 * 256 + 256 + 2 * (2 * 256 + 256 + 2 * 128 + 2 * 256 * 256 + 2 * 128 * 256 + 3 * 512 * 256);
  EXPECT_EQ(w.n_params, params);
  EXPECT_EQ(w.bytes, params * 4);
}

TEST(LlamaWeights, bfloat16_config_gives_bf16_values_kept_in_f32_on_the_cpu) {
  CpuBackend cpu(2);
  const LlamaWeights bf16 = random_llama_weights(tiny_config(R"(, "torch_dtype": "bfloat16")"), 3, cpu);
  const LlamaWeights f32 = random_llama_weights(tiny_config(), 3, cpu);
  const std::vector<float> rounded = values(bf16.layers[0].wq), exact = values(f32.layers[0].wq);
  size_t changed = 0;
  for (size_t i = 0; i < rounded.size(); ++i) {
    ASSERT_EQ(rounded[i], bf16_to_f32(f32_to_bf16(exact[i]))) << i;  // the same samples, rounded
    changed += rounded[i] != exact[i];
  }
  EXPECT_GT(changed, rounded.size() / 2);
  EXPECT_EQ(bf16.bytes, f32.bytes);  // f32 storage on the CPU
}

TEST(LlamaWeights, cpu_matrices_stay_f32_and_bf16_is_refused_in_one_line) {
  CpuBackend cpu(1);
  EXPECT_EQ(matrix_device_dtype(WeightPrecision::Auto, DType::BF16, cpu), DType::F32);
  EXPECT_EQ(matrix_device_dtype(WeightPrecision::F32, DType::BF16, cpu), DType::F32);
  try {
    (void)matrix_device_dtype(WeightPrecision::Bf16, DType::BF16, cpu);
    FAIL() << "bf16 weights accepted by the cpu backend";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--weights bf16: the cpu backend computes with f32 weights only");
  }
  EXPECT_EQ(config_weight_dtype(tiny_config(R"(, "torch_dtype": "bfloat16")")), DType::BF16);
  EXPECT_EQ(config_weight_dtype(tiny_config(R"(, "dtype": "bfloat16")")), DType::BF16);  // transformers 5
  EXPECT_EQ(config_weight_dtype(tiny_config(R"(, "torch_dtype": "float32")")), DType::F32);
  EXPECT_EQ(config_weight_dtype(tiny_config()), DType::F32);
}

TEST(LlamaWeights, demo_model_loads_as_f32) {
  const std::string dir = test::source_dir() + "/models/ltri-demo";
  const ModelConfig c = load_model_config(dir + "/config.json");
  EXPECT_EQ(config_weight_dtype(c), DType::BF16);  // "dtype": "bfloat16", bf16 tensors
  EXPECT_EQ(auto_checkpoint_dtype(c, false), DType::F32);  // loaded checkpoints: f32 under Auto
  EXPECT_EQ(auto_checkpoint_dtype(c, true), DType::BF16);
  CpuBackend cpu(2);
  const LlamaWeights w = load_llama_weights(dir, c, cpu);
  EXPECT_EQ(w.embed.dtype, DType::F32);
  EXPECT_EQ(w.layers[0].wq.dtype, DType::F32);
  EXPECT_EQ(w.bytes, w.n_params * 4);
}

}  // namespace
}  // namespace ltri
