#include "model/llama_weights.hpp"

#include <cmath>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "model/random_normal.hpp"

namespace ltri {

namespace {

// Everything the loader and the random initialiser share: the list of tensors and shapes.
template <class MakeFn>
LlamaWeights build(const ModelConfig& c, MakeFn make) {
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_out = c.num_attention_heads * hd, kv_out = c.num_key_value_heads * hd;
  const std::string kv_why = cat("num_key_value_heads ", c.num_key_value_heads, " x head_dim ", hd);
  const std::string q_why = cat("num_attention_heads ", c.num_attention_heads, " x head_dim ", hd);
  LlamaWeights w;
  w.embed = make("model.embed_tokens.weight", std::vector<int64_t>{c.vocab_size, hidden}, "vocab_size x hidden_size", 0.0);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    LayerWeights L;
    L.attn_norm = make(p + "input_layernorm.weight", std::vector<int64_t>{hidden}, "hidden_size", -1.0);
    L.wq = make(p + "self_attn.q_proj.weight", std::vector<int64_t>{q_out, hidden}, q_why, double(hidden));
    L.wk = make(p + "self_attn.k_proj.weight", std::vector<int64_t>{kv_out, hidden}, kv_why, double(hidden));
    L.wv = make(p + "self_attn.v_proj.weight", std::vector<int64_t>{kv_out, hidden}, kv_why, double(hidden));
    if (c.attention_bias) {
      L.bq = make(p + "self_attn.q_proj.bias", std::vector<int64_t>{q_out}, q_why, -2.0);
      L.bk = make(p + "self_attn.k_proj.bias", std::vector<int64_t>{kv_out}, kv_why, -2.0);
      L.bv = make(p + "self_attn.v_proj.bias", std::vector<int64_t>{kv_out}, kv_why, -2.0);
    }
    L.wo = make(p + "self_attn.o_proj.weight", std::vector<int64_t>{hidden, q_out}, q_why, double(q_out));
    L.mlp_norm = make(p + "post_attention_layernorm.weight", std::vector<int64_t>{hidden}, "hidden_size", -1.0);
    const std::string ffn_why = "intermediate_size x hidden_size";
    L.w_gate = make(p + "mlp.gate_proj.weight", std::vector<int64_t>{c.intermediate_size, hidden}, ffn_why, double(hidden));
    L.w_up = make(p + "mlp.up_proj.weight", std::vector<int64_t>{c.intermediate_size, hidden}, ffn_why, double(hidden));
    L.w_down = make(p + "mlp.down_proj.weight", std::vector<int64_t>{hidden, c.intermediate_size}, "hidden_size x intermediate_size", double(c.intermediate_size));
    w.layers.push_back(std::move(L));
  }
  w.final_norm = make("model.norm.weight", std::vector<int64_t>{hidden}, "hidden_size", -1.0);
  if (!c.tie_word_embeddings) {
    w.lm_head = make("lm_head.weight", std::vector<int64_t>{c.vocab_size, hidden}, "vocab_size x hidden_size", double(hidden));
  }
  return w;
}

size_t count_params(const LlamaWeights& w) {
  size_t n = w.embed.size() + w.final_norm.size() + w.lm_head.size();
  for (const LayerWeights& L : w.layers) {
    n += L.attn_norm.size() + L.wq.size() + L.wk.size() + L.wv.size() + L.bq.size() + L.bk.size() +
         L.bv.size() + L.wo.size() + L.mlp_norm.size() + L.w_gate.size() + L.w_up.size() + L.w_down.size();
  }
  return n;
}

}  // namespace

LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& config, Backend& backend) {
  const WeightStore store = WeightStore::open_dir(dir);
  if (config.tie_word_embeddings == false && !store.find("lm_head.weight")) {
    fail(dir, ": missing tensor 'lm_head.weight' (config.json has tie_word_embeddings false)");
  }
  std::vector<float> host;
  auto make = [&](const std::string& name, const std::vector<int64_t>& shape, const std::string& why,
                  double) {
    const TensorEntry& t = store.get(name, shape, why);
    host.resize(size_t(t.numel()));
    convert_to_f32(t.data, t.dtype, host.data(), host.size());
    BackendBuffer buf(backend, host.size());
    backend.upload(buf.data(), host.data(), host.size());
    return buf;
  };
  LlamaWeights w = build(config, make);
  w.n_params = count_params(w);
  return w;
}

LlamaWeights random_llama_weights(const ModelConfig& config, uint64_t seed, Backend& backend) {
  std::vector<float> host;
  uint64_t stream = 0;  // the tensor's index in build()'s order: its own random stream
  // fan_in > 0: normal(0, 1/sqrt(fan_in)); 0: embeddings, normal(0, 1); -1: norms, ones;
  // -2: biases, zeros.
  auto make = [&](const std::string&, const std::vector<int64_t>& shape, const std::string&,
                  double fan_in) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    host.assign(size_t(n), 0.0f);
    if (fan_in == -1.0) {
      std::fill(host.begin(), host.end(), 1.0f);
    } else if (fan_in >= 0.0) {
      const float stddev = fan_in > 0 ? float(1.0 / std::sqrt(fan_in)) : 1.0f;
      fill_random_normal(seed, stream, stddev, host.data(), host.size());
    }
    ++stream;
    BackendBuffer buf(backend, host.size());
    backend.upload(buf.data(), host.data(), host.size());
    return buf;
  };
  LlamaWeights w = build(config, make);
  w.n_params = count_params(w);
  return w;
}

}  // namespace ltri
