#pragma once
// A loaded Llama-family model (Llama, Mistral, Qwen2) and the per-conversation state that runs
// it. The runtime (sampling, CLI) talks only to this interface; which backend executes the ops
// and which KV policy decides what each query sees are hidden behind it.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "io/model_config.hpp"
#include "kv/attention_observer.hpp"
#include "kv/attention_options.hpp"

namespace ltri {

class Backend;  // ops/backend.hpp

enum class Device { Cpu, Cuda };

struct SessionOptions {
  // Tokens the session may hold; 0 = no cap for the streaming policies (their KV memory does
  // not grow with the context), the model's max_position_embeddings for `full`.
  int64_t max_context = 0;
  int64_t chunk = 512;      // prefill chunk (-b): tokens per forward call through the layers
  AttentionOptions attention;  // which KV policy and its parameters (--attn ...)
  // Analysis tools only: sees every layer's queries and plan (CPU backend; not owned).
  AttentionObserver* observer = nullptr;
};

// The dtype weight matrices (q/k/v/o, gate/up/down, lm_head, embedding table) are held in for
// compute. Auto: f32 for a loaded checkpoint (CPU and GPU then compute the same numbers); for
// random weights the config's torch_dtype where the backend computes with it (bf16 on CUDA).
// Bf16 (CUDA only) also for a loaded checkpoint. Norms, biases, activations and KV stay f32.
enum class WeightPrecision { Auto, F32, Bf16 };

struct ModelLoadOptions {
  Device device = Device::Cpu;
  int threads = 0;  // 0 = all cores
  // Seeded random weights from config.json alone (benchmarks at real shapes, no download).
  bool random_weights = false;
  uint64_t random_seed = 1;
  WeightPrecision weights = WeightPrecision::Auto;
  // CUDA: the session the caller will open, so the GPU memory check before loading counts its
  // KV and activations too (without it, weights and one default chunk's activations only;
  // every new_session checks its own KV again against what is free then).
  std::optional<SessionOptions> planned_session;
};

// Called during prefill after each chunk: tokens done, tokens in this call.
using ProgressFn = std::function<void(int64_t done, int64_t total)>;

class Session {
 public:
  virtual ~Session() = default;
  // Runs `tokens` through the model at positions n_past() .. n_past()+n-1, in chunks, appending
  // their keys/values to the cache. Writes the logits (vocab_size floats) of the last token to
  // `last_logits`; if `all_logits` is not null it receives (n, vocab_size) logits of every token.
  // Throws ltri::Error if the tokens would exceed max_context or an id is out of range, and when
  // a streaming policy's store or index would outgrow the host or device memory left
  // (model/memory_growth_check.hpp): before the first chunk, or after a chunk once the growth
  // is measured; the session then holds the chunks done so far, and reset() starts it over.
  virtual void forward(std::span<const int32_t> tokens, float* last_logits,
                       float* all_logits = nullptr, const ProgressFn& progress = {}) = 0;
  virtual int64_t n_past() const = 0;
  virtual int64_t max_context() const = 0;
  virtual void reset() = 0;  // forget all tokens
  // Bytes held by the KV cache now (for reports): backend (accelerator) memory.
  virtual size_t kv_bytes() const = 0;
  // Bytes the streaming policies hold in host memory (store of evicted KV, its index).
  virtual size_t kv_host_bytes() const { return 0; }
};

class Model {
 public:
  virtual ~Model() = default;
  // Reads <dir>/config.json and its safetensors; throws ltri::Error naming file/field/tensor.
  static std::unique_ptr<Model> load(const std::string& dir, const ModelLoadOptions& options = {});
  virtual const ModelConfig& config() const = 0;
  virtual std::unique_ptr<Session> new_session(const SessionOptions& options = {}) const = 0;
  virtual size_t weight_bytes() const = 0;  // bytes of weights resident for compute
  // The backend running the model: its stats() (bytes uploaded/downloaded, device memory now and
  // at peak) and reset_peak() for benchmarks. Include ops/backend.hpp to use it.
  virtual Backend& backend() const = 0;
};

}  // namespace ltri
