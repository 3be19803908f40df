#include "model/gpu_memory_estimate.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

#include "core/error.hpp"
#include "kv/policy_factory.hpp"

namespace ltri {

namespace {

// The context and chunk a session resolves its options to (as LlamaSession's constructor).
struct SessionShape {
  int64_t max_context = 0;
  int64_t chunk = 0;
};

SessionShape session_shape(const ModelConfig& c, const SessionOptions& s) {
  const bool streaming = is_streaming_policy(s.attention.policy);
  SessionShape shape;
  shape.max_context = s.max_context > 0 ? s.max_context
                      : streaming      ? std::numeric_limits<int64_t>::max() / 2
                                       : c.max_position_embeddings;
  shape.chunk = std::max<int64_t>(1, std::min(s.chunk, shape.max_context));
  return shape;
}

// Tokens per layer a policy keeps in device KV buffers, at most.
int64_t kv_tokens_per_layer(const ModelConfig& c, const SessionOptions& s) {
  const SessionShape shape = session_shape(c, s);
  const AttentionOptions& a = s.attention;
  if (!is_streaming_policy(a.policy)) return shape.max_context;  // full: the whole context
  int64_t lag = 0, retrieved = 0;
  if (a.policy == "infllm") {
    lag = a.block_size - 1;
    retrieved = a.budget;
  } else if (a.policy == "ltri") {
    lag = a.span_max - 1;
    retrieved = decode_capacity(a);
  }
  const int64_t window = a.n_local + lag + shape.chunk;
  // The window buffer has room for two windows (it shifts down when full); the retrieved units
  // have two buffers taking turns (kv/retrieved_kv.hpp), each of the retrieved capacity.
  return std::min(shape.max_context, a.n_init + 2 * window + 2 * retrieved);
}

std::string gib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", double(bytes) / double(size_t(1) << 30));
  return text;
}

}  // namespace

size_t llama_weight_bytes(const ModelConfig& c, DType matrix_dtype) {
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_out = c.num_attention_heads * hd, kv_out = c.num_key_value_heads * hd;
  const int64_t per_layer_matrices = 2 * q_out * hidden + 2 * kv_out * hidden + 3 * c.intermediate_size * hidden;
  const int64_t matrices = c.vocab_size * hidden * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * per_layer_matrices;
  const int64_t per_layer_vectors = 2 * hidden + (c.attention_bias ? q_out + 2 * kv_out : 0);
  const int64_t vectors = hidden + c.num_hidden_layers * per_layer_vectors;
  return size_t(matrices) * dtype_size(matrix_dtype) + size_t(vectors) * sizeof(float);
}

size_t llama_kv_device_bytes(const ModelConfig& c, const SessionOptions& s) {
  const size_t per_token = size_t(2 * c.num_key_value_heads * c.head_dim) * sizeof(float);  // k and v
  return size_t(c.num_hidden_layers) * size_t(kv_tokens_per_layer(c, s)) * per_token;
}

size_t llama_scratch_bytes(const ModelConfig& c, const SessionOptions& s) {
  const SessionShape shape = session_shape(c, s);
  const int64_t q_dim = c.num_attention_heads * c.head_dim, kv_dim = c.num_key_value_heads * c.head_dim;
  // ids, x, h, q, k, v, attn, gate, up per chunk token, and one row of logits: LlamaSession's
  // buffers.
  const int64_t per_token = 1 + 2 * c.hidden_size + 2 * q_dim + 2 * kv_dim + 2 * c.intermediate_size;
  const int64_t widest_input = std::max({c.hidden_size, q_dim, c.intermediate_size});
  const int64_t rope_positions = std::min(shape.max_context, kv_tokens_per_layer(c, s) + shape.chunk);
  // The tensor-core attention's bf16 copy of a call's visible keys and values (at most every
  // key the policy holds on the device, plus the chunk's); the wgmma kernel pads each of a
  // plan's segments (at most 8, cuda_kernels.hpp) to a multiple of 64 keys.
  const int64_t visible = std::min(shape.max_context, kv_tokens_per_layer(c, s) + shape.chunk) + 8 * 63;
  const size_t attention = size_t(2 * visible * kv_dim) * 2;
  // The band's workspace (infllm, ltri; cuda_band.cu): its output, the (heads, chunk, width)
  // probabilities and row sums, the rotated queries and keys.
  int64_t band = 0;
  const AttentionOptions& a = s.attention;
  const int64_t width = a.policy == "ltri" ? a.span_max : a.policy == "infllm" ? a.block_size : 0;
  if (width > 0) {
    const int64_t n = shape.chunk, n_keys = n + width - 1;
    band = n_keys * c.num_key_value_heads + n * width + c.num_attention_heads * n * (width + 1) + n * q_dim +
           n_keys * kv_dim;
  }
  // Two-pass attention (infllm, ltri; CudaBackend::attention_early): the early pass's own bf16
  // copy of init, window and chunk (the second pass's goes in the buffer above), and both
  // passes' unnormalised outputs with their (max, sum) per row.
  int64_t early_partials = 0;
  size_t early_tiles = 0;
  if (width > 0) {
    // kv_tokens_per_layer holds init and two of (window with its chunk + retrieved): one of
    // those bounds what the early pass sees; its three segments each padded to 64 keys.
    const int64_t early_keys = a.n_init + (kv_tokens_per_layer(c, s) - a.n_init + 1) / 2 + 3 * 63;
    early_tiles = size_t(2 * early_keys * kv_dim) * 2;
    early_partials = 2 * shape.chunk * c.num_attention_heads * (c.head_dim + 2);
  }
  return size_t(shape.chunk * per_token + c.vocab_size + band + early_partials) * sizeof(float) +
         size_t(shape.chunk * widest_input) * 2 + attention + early_tiles + size_t(rope_positions * c.head_dim) * sizeof(float) +
         kGpuHeadroomBytes;
}

GpuMemoryEstimate estimate_gpu_memory(const ModelConfig& c, DType matrix_dtype, const SessionOptions& s) {
  GpuMemoryEstimate e;
  e.weights = llama_weight_bytes(c, matrix_dtype);
  e.kv = llama_kv_device_bytes(c, s);
  e.scratch = llama_scratch_bytes(c, s);
  return e;
}

void check_gpu_memory(const GpuMemoryEstimate& need, size_t free_bytes, int device) {
  if (need.total() <= free_bytes) return;
  fail("--device cuda: needs ", gib(need.total()), " GiB of GPU memory (weights ", gib(need.weights), " + KV ",
       gib(need.kv), " + scratch ", gib(need.scratch), ") but GPU ", device, " has ", gib(free_bytes), " GiB free");
}

}  // namespace ltri
