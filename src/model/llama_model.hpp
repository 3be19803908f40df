#pragma once
// The Llama-family forward pass (Llama, Mistral, Qwen2 share it: pre-norm decoder blocks with
// RMSNorm, RoPE attention with GQA and optional q/k/v biases, SwiGLU MLP), written against the
// op table so any backend runs it, and against the KV-policy seam so any policy decides what
// attention sees.
#include <memory>
#include <string>

#include "kv/kv_policy.hpp"
#include "model/llama_weights.hpp"
#include "model/model.hpp"
#include "ops/backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {

class LlamaModel : public Model {
 public:
  // dir: the model directory (where per-model files such as ltri_heads.json are looked for).
  LlamaModel(ModelConfig config, std::unique_ptr<Backend> backend, LlamaWeights weights,
             std::string dir);

  const ModelConfig& config() const override { return config_; }
  std::unique_ptr<Session> new_session(const SessionOptions& options) const override;
  size_t weight_bytes() const override { return weights_.bytes; }

  Backend& backend() const override { return *backend_; }
  const LlamaWeights& weights() const { return weights_; }
  const std::string& dir() const { return dir_; }

 private:
  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  LlamaWeights weights_;
  std::string dir_;
};

class LlamaSession : public Session {
 public:
  LlamaSession(const LlamaModel& model, const SessionOptions& options);

  void forward(std::span<const int32_t> tokens, float* last_logits, float* all_logits,
               const ProgressFn& progress) override;
  int64_t n_past() const override { return policy_->n_past(); }
  int64_t max_context() const override { return max_context_; }
  void reset() override { policy_->reset(); }
  size_t kv_bytes() const override { return policy_->kv_bytes(); }
  size_t kv_host_bytes() const override { return policy_->host_bytes(); }
  const KvPolicy& policy() const { return *policy_; }

 private:
  // One chunk through every layer; logits of rows [first_row, n) go to `logits` (host).
  void forward_chunk(const int32_t* ids, int64_t n, int64_t first_row, float* logits);
  // One line (model/memory_growth_check.hpp) when the policy's device or host memory would grow
  // past what is free over the `tokens_left` tokens still to come of a prompt of n.
  void check_memory_growth(int64_t tokens_left, int64_t n) const;

  const LlamaModel& model_;
  const ModelConfig& c_;
  Backend& backend_;
  int64_t chunk_;
  int64_t max_context_;
  std::unique_ptr<KvPolicy> policy_;
  AttentionObserver* observer_ = nullptr;  // analysis tools only
  RopeTable rope_;
  // Activations, preallocated for one chunk.
  BackendBuffer ids_;     // (chunk) token ids, bit-cast to float storage for the backend
  BackendBuffer x_;       // (chunk, hidden) residual stream
  BackendBuffer h_;       // (chunk, hidden) normed input of a block
  // q (n, n_heads, head_dim), then k (n, n_kv_heads, head_dim) pre-RoPE, then v (same), for a
  // chunk of n tokens: for n = 1 that is one row [q | k | v], what the fused qkv GEMV writes.
  BackendBuffer qkv_;     // (chunk, (n_heads + 2 n_kv_heads) * head_dim)
  BackendBuffer attn_;    // (chunk, n_heads, head_dim)
  BackendBuffer gate_up_; // gate (n, ffn), then up (n, ffn): for n = 1 the fused gate/up GEMV's row
  BackendBuffer logits_;  // (1, vocab); (chunk, vocab) once every row was asked for
};

}  // namespace ltri
