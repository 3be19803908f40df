#pragma once
// How much GPU memory a Llama-family model needs before any of it is loaded, so a GPU too small
// is one clear error up front instead of an out-of-memory failure minutes into loading. Pure
// functions of the config and the session options (tested without a GPU); the CUDA load path
// compares the total with cudaMemGetInfo's free bytes through check_gpu_memory.
#include <cstddef>
#include <cstdint>

#include "core/dtype.hpp"
#include "io/model_config.hpp"
#include "model/model.hpp"

namespace ltri {

struct GpuMemoryEstimate {
  size_t weights = 0;  // matrices in their device dtype, norms and biases in f32
  size_t kv = 0;       // KV the session's policy holds on the device, at most
  size_t scratch = 0;  // one chunk's activations, the logits, the backend's scratch, headroom
  size_t total() const { return weights + kv + scratch; }
};

// Fixed headroom in every estimate: cuBLAS workspaces and allocator rounding.
constexpr size_t kGpuHeadroomBytes = size_t(256) << 20;

// Bytes of the weights with every matrix (embedding table included) in `matrix_dtype`.
size_t llama_weight_bytes(const ModelConfig& config, DType matrix_dtype);
// Bytes of f32 KV the session's policy can hold on the device: `full` the whole context
// (max_context, or max_position_embeddings when 0); the streaming policies per layer n_init +
// twice the window (n_local + the policy's lag + chunk: the window buffer grows to twice its
// largest size) + the retrieved tokens' capacity (as kv/policy_factory.cpp sizes them).
size_t llama_kv_device_bytes(const ModelConfig& config, const SessionOptions& session);
// Bytes of the session's activations for one chunk (LlamaSession's buffers), the bf16 copy of
// the widest GEMM input, the attention's bf16 copy of the visible keys and values, the band's
// workspace (infllm, ltri), the RoPE table, plus kGpuHeadroomBytes.
size_t llama_scratch_bytes(const ModelConfig& config, const SessionOptions& session);

GpuMemoryEstimate estimate_gpu_memory(const ModelConfig& config, DType matrix_dtype, const SessionOptions& session);

// Throws ltri::Error, one line, when `need` exceeds `free_bytes`:
// "--device cuda: needs 18.2 GiB of GPU memory (weights 15.0 + KV 2.9 + scratch 0.3) but GPU 0
// has 7.5 GiB free".
void check_gpu_memory(const GpuMemoryEstimate& need, size_t free_bytes, int device);

}  // namespace ltri
