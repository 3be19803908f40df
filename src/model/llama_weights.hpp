#pragma once
// The weights of a Llama-family model, converted once to f32 in backend memory.
#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.hpp"
#include "ops/backend.hpp"

namespace ltri {

struct LayerWeights {
  BackendBuffer attn_norm;  // (hidden)
  BackendBuffer wq;         // (n_heads * head_dim, hidden)
  BackendBuffer wk;         // (n_kv_heads * head_dim, hidden)
  BackendBuffer wv;         // (n_kv_heads * head_dim, hidden)
  BackendBuffer bq, bk, bv; // biases (Qwen2), empty otherwise
  BackendBuffer wo;         // (hidden, n_heads * head_dim)
  BackendBuffer mlp_norm;   // (hidden)
  BackendBuffer w_gate;     // (ffn, hidden)
  BackendBuffer w_up;       // (ffn, hidden)
  BackendBuffer w_down;     // (hidden, ffn)
};

struct LlamaWeights {
  BackendBuffer embed;       // (vocab, hidden)
  std::vector<LayerWeights> layers;
  BackendBuffer final_norm;  // (hidden)
  BackendBuffer lm_head;     // (vocab, hidden); empty when tied to embed
  size_t n_params = 0;

  const float* output_matrix() const { return lm_head.data() ? lm_head.data() : embed.data(); }
};

// From the safetensors of `dir`, every shape checked against the config.
LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& config, Backend& backend);
// Seeded random weights (normal, std 1/sqrt(fan_in); norms 1) for benchmarks at real shapes.
LlamaWeights random_llama_weights(const ModelConfig& config, uint64_t seed, Backend& backend);

}  // namespace ltri
