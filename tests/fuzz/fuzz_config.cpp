// libFuzzer target for config.json parsing (parse_model_config).
// Refusing input with ltri::Error is the expected outcome; any other exception, a crash or a
// sanitizer report is a bug. An accepted config must hold the invariants the model code relies
// on: positive sizes, num_key_value_heads dividing num_attention_heads, an even head_dim,
// positive rope_theta / rms_norm_eps and a known RoPE scaling with a positive factor.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "io/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ltri::ModelConfig c;
  try {
    c = ltri::parse_model_config(text, "fuzz/config.json");
  } catch (const ltri::Error&) {
    return 0;
  }
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_hidden_layers <= 0 ||
      c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 || c.head_dim <= 0 ||
      c.max_position_embeddings <= 0) {
    std::abort();
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0 || c.head_dim % 2 != 0) std::abort();
  if (!(c.rope_theta > 0) || !(c.rms_norm_eps > 0) || c.hidden_act != "silu" || c.mlp_bias) std::abort();
  if (c.rope_scaling.type != ltri::RopeScalingType::None && !(c.rope_scaling.factor > 0)) std::abort();
  for (int64_t id : c.eos_token_ids) {
    if (id < 0) std::abort();
  }
  return 0;
}
