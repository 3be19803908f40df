#pragma once
// config.json of a Hugging Face Llama-family checkpoint -> ModelConfig.
// Reads both dialects: transformers 4.x (top-level rope_theta / rope_scaling) and 5.x
// (rope_parameters {rope_theta, rope_type, ...}).
#include <cstdint>
#include <string>
#include <vector>

namespace ltri {

enum class Architecture { Llama, Mistral, Qwen2 };
const char* architecture_name(Architecture a);  // "LlamaForCausalLM", ...

enum class RopeScalingType { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  // llama3 only:
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases; true for Qwen2 unless the config says otherwise
  bool mlp_bias = false;
  int64_t max_position_embeddings = 2048;
  int64_t sliding_window = 0;  // 0 = none (Mistral may set one; informational here)
  int64_t bos_token_id = -1;   // -1 = none
  std::vector<int64_t> eos_token_ids;  // eos_token_id may be an int or a list
  std::string hidden_act = "silu";     // only silu is supported
  std::string torch_dtype;  // as written ("bfloat16", "float32", ...; transformers 5: "dtype"); "" if absent
};

// Throws ltri::Error "<path>: <problem>" (broken JSON, missing/invalid field, unknown
// architecture, unsupported rope_scaling such as yarn, hidden_act other than silu).
ModelConfig load_model_config(const std::string& path);
// Same from text; `source` names it in errors.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

}  // namespace ltri
