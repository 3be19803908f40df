#pragma once
// The weights of a Llama-family model in backend memory: norms and biases in f32; the matrices
// (q/k/v/o, gate/up/down, lm_head, the embedding table) in f32 or, on a backend that computes
// with bf16 weights (CUDA), in bf16: always with WeightPrecision::Bf16, and with Auto for random
// weights whose config.json names torch_dtype bfloat16 (the 8B benchmarks). Loaded checkpoints
// stay f32 under Auto: the bundled demo model is a bf16 checkpoint too, and its CPU/CUDA greedy
// parity (tests/kernels/test_cuda_model.cpp, scripts/gpu_test.sh) needs f32 on both devices.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "io/model_config.hpp"
#include "model/model.hpp"
#include "ops/backend.hpp"

namespace ltri {

// One weight matrix in backend memory, in the dtype the backend computes it in: its own buffer,
// or (view) rows of a fused matrix that another MatrixWeight owns.
struct MatrixWeight {
  BackendBuffer buffer;  // F32: numel floats; BF16: numel bf16 values packed two per float
  DType dtype = DType::F32;
  size_t numel = 0;
  const float* view = nullptr;  // set: the matrix lives there (in a fused buffer), buffer is empty

  WeightRef ref() const { return {view ? view : buffer.data(), dtype}; }
  size_t bytes() const { return numel * dtype_size(dtype); }
};

struct LayerWeights {
  BackendBuffer attn_norm;  // (hidden)
  MatrixWeight wq;          // (n_heads * head_dim, hidden)
  MatrixWeight wk;          // (n_kv_heads * head_dim, hidden)
  MatrixWeight wv;          // (n_kv_heads * head_dim, hidden)
  BackendBuffer bq, bk, bv; // biases (Qwen2), empty otherwise
  MatrixWeight wo;          // (hidden, n_heads * head_dim)
  BackendBuffer mlp_norm;   // (hidden)
  MatrixWeight w_gate;      // (ffn, hidden)
  MatrixWeight w_up;        // (ffn, hidden)
  MatrixWeight w_down;      // (hidden, ffn)
  // bf16 weights: wq, wk, wv are views of the rows of qkv ((q_out + 2 kv_out), hidden), and
  // w_gate, w_up of gate_up ((2 ffn), hidden), so a decode step computes each group as one GEMV
  // (fuse_projections). Empty (numel 0) when the matrices are held apart (f32).
  MatrixWeight qkv;
  MatrixWeight gate_up;
};

struct LlamaWeights {
  MatrixWeight embed;        // (vocab, hidden)
  std::vector<LayerWeights> layers;
  BackendBuffer final_norm;  // (hidden)
  MatrixWeight lm_head;      // (vocab, hidden); empty when tied to embed
  size_t n_params = 0;
  size_t bytes = 0;  // in backend memory, each tensor in its own dtype

  WeightRef output_matrix() const { return lm_head.numel > 0 ? lm_head.ref() : embed.ref(); }
};

// The dtype matrices are held in on `backend` for a checkpoint of dtype `checkpoint`
// (auto_checkpoint_dtype): Auto keeps bf16 as bf16 where the backend computes with bf16 weights,
// anything else becomes f32; F32 always f32; Bf16 always bf16 (one-line error on a backend
// without bf16 weights). Tensors stored otherwise are converted on the host.
DType matrix_device_dtype(WeightPrecision precision, DType checkpoint, const Backend& backend);
// The dtype config.json's torch_dtype (or dtype) names: "bfloat16" -> BF16, "float16" -> F16,
// anything else (float32, absent) -> F32.
DType config_weight_dtype(const ModelConfig& config);
// The checkpoint dtype WeightPrecision::Auto follows: config_weight_dtype for random weights,
// F32 for loaded checkpoints (see the top of this file).
DType auto_checkpoint_dtype(const ModelConfig& config, bool random_weights);

// From the safetensors of `dir`, every shape checked against the config. bf16 tensors held in
// bf16 are copied from the mapped file straight to the backend (no host copy of 16 GB at 8B).
LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& config, Backend& backend,
                                WeightPrecision precision = WeightPrecision::Auto);
// Seeded random weights for benchmarks at real shapes: matrices normal(0, 1/sqrt(fan_in)),
// embeddings normal(0, 1), norms 1, biases 0. With a bf16 torch_dtype the matrices are rounded
// to bf16 values on every backend (as a bf16 checkpoint would be). Each value depends only on
// (seed, tensor, element), not on the thread count (model/random_normal.hpp).
LlamaWeights random_llama_weights(const ModelConfig& config, uint64_t seed, Backend& backend,
                                  WeightPrecision precision = WeightPrecision::Auto);

}  // namespace ltri
