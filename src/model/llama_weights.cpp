#include "model/llama_weights.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "model/random_normal.hpp"

namespace ltri {

namespace {

// Everything the loader and the random initialiser share: the list of tensors and shapes.
// make_vector builds norms and biases (f32), make_matrix the weight matrices. fan_in tells the
// random initialiser the distribution: > 0 normal(0, 1/sqrt(fan_in)); 0 embeddings, normal(0, 1);
// -1 norms, ones; -2 biases, zeros.
template <class MakeVector, class MakeMatrix>
LlamaWeights build(const ModelConfig& c, MakeVector make_vector, MakeMatrix make_matrix) {
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_out = c.num_attention_heads * hd, kv_out = c.num_key_value_heads * hd;
  const std::string kv_why = cat("num_key_value_heads ", c.num_key_value_heads, " x head_dim ", hd);
  const std::string q_why = cat("num_attention_heads ", c.num_attention_heads, " x head_dim ", hd);
  using Shape = std::vector<int64_t>;
  LlamaWeights w;
  w.embed = make_matrix("model.embed_tokens.weight", Shape{c.vocab_size, hidden}, "vocab_size x hidden_size", 0.0);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    LayerWeights L;
    L.attn_norm = make_vector(p + "input_layernorm.weight", Shape{hidden}, "hidden_size", -1.0);
    L.wq = make_matrix(p + "self_attn.q_proj.weight", Shape{q_out, hidden}, q_why, double(hidden));
    L.wk = make_matrix(p + "self_attn.k_proj.weight", Shape{kv_out, hidden}, kv_why, double(hidden));
    L.wv = make_matrix(p + "self_attn.v_proj.weight", Shape{kv_out, hidden}, kv_why, double(hidden));
    if (c.attention_bias) {
      L.bq = make_vector(p + "self_attn.q_proj.bias", Shape{q_out}, q_why, -2.0);
      L.bk = make_vector(p + "self_attn.k_proj.bias", Shape{kv_out}, kv_why, -2.0);
      L.bv = make_vector(p + "self_attn.v_proj.bias", Shape{kv_out}, kv_why, -2.0);
    }
    L.wo = make_matrix(p + "self_attn.o_proj.weight", Shape{hidden, q_out}, q_why, double(q_out));
    L.mlp_norm = make_vector(p + "post_attention_layernorm.weight", Shape{hidden}, "hidden_size", -1.0);
    const std::string ffn_why = "intermediate_size x hidden_size";
    L.w_gate = make_matrix(p + "mlp.gate_proj.weight", Shape{c.intermediate_size, hidden}, ffn_why, double(hidden));
    L.w_up = make_matrix(p + "mlp.up_proj.weight", Shape{c.intermediate_size, hidden}, ffn_why, double(hidden));
    L.w_down = make_matrix(p + "mlp.down_proj.weight", Shape{hidden, c.intermediate_size},
                           "hidden_size x intermediate_size", double(c.intermediate_size));
    w.layers.push_back(std::move(L));
  }
  w.final_norm = make_vector("model.norm.weight", Shape{hidden}, "hidden_size", -1.0);
  if (!c.tie_word_embeddings) {
    w.lm_head = make_matrix("lm_head.weight", Shape{c.vocab_size, hidden}, "vocab_size x hidden_size", double(hidden));
  }
  return w;
}

void count(LlamaWeights& w) {
  size_t vectors = w.final_norm.size(), params = 0, bytes = 0;
  auto matrix = [&](const MatrixWeight& m) {
    params += m.numel;
    bytes += m.bytes();
  };
  matrix(w.embed);
  matrix(w.lm_head);
  for (const LayerWeights& L : w.layers) {
    vectors += L.attn_norm.size() + L.bq.size() + L.bk.size() + L.bv.size() + L.mlp_norm.size();
    for (const MatrixWeight* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) matrix(*m);
  }
  w.n_params = params + vectors;
  w.bytes = bytes + vectors * sizeof(float);
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A backend buffer for `numel` elements of `dtype` (bf16: two per float, rounded up).
MatrixWeight allocate_matrix(Backend& backend, DType dtype, size_t numel) {
  MatrixWeight m;
  m.dtype = dtype;
  m.numel = numel;
  const size_t floats = dtype == DType::F32 ? numel : (numel * dtype_size(dtype) + 3) / 4;
  m.buffer = BackendBuffer(backend, floats);
  return m;
}

// Uploads n f32 values as a matrix of `dtype` (bf16: rounded on the host first).
MatrixWeight upload_matrix(Backend& backend, DType dtype, const float* host, size_t n,
                           std::vector<uint16_t>& bf16_host) {
  MatrixWeight m = allocate_matrix(backend, dtype, n);
  if (dtype == DType::F32) {
    backend.upload(m.buffer.data(), host, n);
  } else {
    bf16_host.resize(n);
#pragma omp parallel for schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; ++i) bf16_host[i] = f32_to_bf16(host[i]);
    backend.upload_bytes(m.buffer.data(), bf16_host.data(), n * 2);
  }
  return m;
}

// Moves `parts` (same dtype, same number of columns) into one buffer, stacked by rows in that
// order, and leaves each part a view of its rows; the fused matrix is returned. Nothing happens
// (an empty matrix is returned) unless every part is bf16: only the CUDA backend holds bf16
// weights, and its one-row GEMV computes every output row by itself, so the fused matrix gives
// bit for bit the results of the parts.
MatrixWeight fuse_rows(Backend& backend, std::vector<MatrixWeight*> parts) {
  size_t numel = 0;
  for (const MatrixWeight* m : parts) {
    if (m->dtype != DType::BF16 || m->view || m->numel % 2 != 0) return {};
    numel += m->numel;
  }
  MatrixWeight fused = allocate_matrix(backend, DType::BF16, numel);
  size_t at = 0;  // floats into fused: two bf16 values per float
  for (MatrixWeight* m : parts) {
    backend.copy(fused.buffer.data() + at, m->buffer.data(), m->numel / 2);
    m->buffer = BackendBuffer();  // frees the part's own copy (the copy above is enqueued first)
    m->view = fused.buffer.data() + at;
    at += m->numel / 2;
  }
  return fused;
}

// Fuses each layer's q/k/v and gate/up matrices where they are bf16 (one extra layer's group
// in backend memory at a time while it copies).
void fuse_projections(LlamaWeights& w, Backend& backend) {
  for (LayerWeights& L : w.layers) {
    L.qkv = fuse_rows(backend, {&L.wq, &L.wk, &L.wv});
    L.gate_up = fuse_rows(backend, {&L.w_gate, &L.w_up});
  }
}

}  // namespace

DType matrix_device_dtype(WeightPrecision precision, DType checkpoint, const Backend& backend) {
  switch (precision) {
    case WeightPrecision::F32:
      return DType::F32;
    case WeightPrecision::Bf16:
      if (!backend.supports_weight_dtype(DType::BF16)) {
        fail("--weights bf16: the ", backend.name(), " backend computes with f32 weights only");
      }
      return DType::BF16;
    case WeightPrecision::Auto:
      break;
  }
  return checkpoint == DType::BF16 && backend.supports_weight_dtype(DType::BF16) ? DType::BF16 : DType::F32;
}

DType config_weight_dtype(const ModelConfig& config) {
  if (config.torch_dtype == "bfloat16") return DType::BF16;
  if (config.torch_dtype == "float16") return DType::F16;
  return DType::F32;
}

DType auto_checkpoint_dtype(const ModelConfig& config, bool random_weights) {
  return random_weights ? config_weight_dtype(config) : DType::F32;
}

LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& config, Backend& backend,
                                WeightPrecision precision) {
  const WeightStore store = WeightStore::open_dir(dir);
  if (config.tie_word_embeddings == false && !store.find("lm_head.weight")) {
    fail(dir, ": missing tensor 'lm_head.weight' (config.json has tie_word_embeddings false)");
  }
  const DType dtype = matrix_device_dtype(precision, auto_checkpoint_dtype(config, false), backend);
  std::vector<float> host;          // one tensor in f32, reused
  std::vector<uint16_t> bf16_host;  // one tensor rounded to bf16, reused
  auto make_vector = [&](const std::string& name, const std::vector<int64_t>& shape, const std::string& why,
                         double) {
    const TensorEntry& t = store.get(name, shape, why);
    host.resize(size_t(t.numel()));
    convert_to_f32(t.data, t.dtype, host.data(), host.size());
    BackendBuffer buf(backend, host.size());
    backend.upload(buf.data(), host.data(), host.size());
    return buf;
  };
  auto make_matrix = [&](const std::string& name, const std::vector<int64_t>& shape, const std::string& why,
                         double) {
    const TensorEntry& t = store.get(name, shape, why);
    const size_t n = size_t(t.numel());
    if (dtype == DType::BF16 && t.dtype == DType::BF16) {
      // Straight from the mapped file: no host copy of an 8B model's 16 GB.
      MatrixWeight m = allocate_matrix(backend, DType::BF16, n);
      backend.upload_bytes(m.buffer.data(), t.data, t.nbytes);
      return m;
    }
    host.resize(n);
    convert_to_f32(t.data, t.dtype, host.data(), n);
    return upload_matrix(backend, dtype, host.data(), n, bf16_host);
  };
  LlamaWeights w = build(config, make_vector, make_matrix);
  fuse_projections(w, backend);
  count(w);
  return w;
}

LlamaWeights random_llama_weights(const ModelConfig& config, uint64_t seed, Backend& backend,
                                  WeightPrecision precision) {
  const DType checkpoint = config_weight_dtype(config);  // the values are rounded to it either way
  const DType dtype = matrix_device_dtype(precision, auto_checkpoint_dtype(config, true), backend);
  std::vector<float> host;
  std::vector<uint16_t> bf16_host;
  uint64_t stream = 0;  // the tensor's index in build()'s order: its own random stream
  auto make_vector = [&](const std::string&, const std::vector<int64_t>& shape, const std::string&,
                         double fan_in) {
    host.assign(size_t(numel_of(shape)), fan_in == -1.0 ? 1.0f : 0.0f);  // norms 1, biases 0
    ++stream;
    BackendBuffer buf(backend, host.size());
    backend.upload(buf.data(), host.data(), host.size());
    return buf;
  };
  auto make_matrix = [&](const std::string&, const std::vector<int64_t>& shape, const std::string&,
                         double fan_in) {
    const size_t n = size_t(numel_of(shape));
    const float stddev = fan_in > 0 ? float(1.0 / std::sqrt(fan_in)) : 1.0f;
    const uint64_t s = stream++;
    if (dtype == DType::BF16) {
      bf16_host.resize(n);
      fill_random_normal_bf16(seed, s, stddev, bf16_host.data(), n);
      MatrixWeight m = allocate_matrix(backend, DType::BF16, n);
      backend.upload_bytes(m.buffer.data(), bf16_host.data(), n * 2);
      return m;
    }
    host.resize(n);
    fill_random_normal(seed, s, stddev, host.data(), n);
    if (checkpoint == DType::BF16) {
      // The values a bf16 checkpoint would hold, so f32 and bf16 devices run the same model.
#pragma omp parallel for schedule(static) if (n > (1u << 16))
      for (size_t i = 0; i < n; ++i) host[i] = bf16_to_f32(f32_to_bf16(host[i]));
    }
    return upload_matrix(backend, DType::F32, host.data(), n, bf16_host);
  };
  LlamaWeights w = build(config, make_vector, make_matrix);
  fuse_projections(w, backend);
  count(w);
  return w;
}

}  // namespace ltri
