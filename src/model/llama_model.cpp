#include "model/llama_model.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.hpp"
#include "io/model_config.hpp"
#include "kv/policy_factory.hpp"
#include "model/gpu_memory_estimate.hpp"
#include "model/memory_growth_check.hpp"
#include "ops/profile_scope.hpp"
#include "ops/host_threads.hpp"

namespace ltri {

namespace {

// One line before any weight is uploaded when the GPU cannot hold the model and the session
// the caller plans (without one: the weights and one default chunk's activations).
void check_model_fits(const ModelConfig& config, const ModelLoadOptions& options,
                      const Backend& backend) {
  const std::optional<size_t> free_bytes = backend.device_free_bytes();
  if (!free_bytes) return;
  const DType matrix_dtype = matrix_device_dtype(options.weights, auto_checkpoint_dtype(config, options.random_weights), backend);
  GpuMemoryEstimate need = estimate_gpu_memory(config, matrix_dtype, options.planned_session.value_or(SessionOptions{}));
  if (!options.planned_session) need.kv = 0;
  check_gpu_memory(need, *free_bytes, 0);
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& dir, const ModelLoadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": model directory not found");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(config_path, ec)) fail(dir, ": no config.json in the model directory");
  ModelConfig config = load_model_config(config_path);
  std::unique_ptr<Backend> backend;
  if (options.device == Device::Cuda) {
#ifdef LTRI_HAVE_CUDA
    set_host_threads(options.threads);  // the policies' host work: one pool, as on the CPU
    backend = make_cuda_backend(0);
#else
    fail("--device cuda: this build has no CUDA backend (rebuild with -DLTRI_CUDA=ON)");
#endif
  } else {
    backend = make_cpu_backend(options.threads);
  }
  if (options.device == Device::Cuda) check_model_fits(config, options, *backend);
  LlamaWeights weights = options.random_weights
                             ? random_llama_weights(config, options.random_seed, *backend, options.weights)
                             : load_llama_weights(dir, config, *backend, options.weights);
  // A model computing with bf16 weights is a bf16 model: its attention may round q, k, v to bf16
  // too (CUDA: tensor cores for prefill). f32 weights keep f32 attention and CPU/CUDA parity.
  backend->set_attention_precision(weights.embed.dtype);
  return std::make_unique<LlamaModel>(std::move(config), std::move(backend), std::move(weights), dir);
}

LlamaModel::LlamaModel(ModelConfig config, std::unique_ptr<Backend> backend, LlamaWeights weights,
                       std::string dir)
    : config_(std::move(config)),
      backend_(std::move(backend)),
      weights_(std::move(weights)),
      dir_(std::move(dir)) {}

std::unique_ptr<Session> LlamaModel::new_session(const SessionOptions& options) const {
  return std::make_unique<LlamaSession>(*this, options);
}

LlamaSession::LlamaSession(const LlamaModel& model, const SessionOptions& options)
    : model_(model), c_(model.config()), backend_(model.backend()), rope_(model.config()) {
  if (options.chunk < 1) fail("chunk size (-b) must be >= 1, got ", options.chunk);
  if (options.max_context < 0) fail("context size (-c) must be >= 0, got ", options.max_context);
  // Streaming policies keep a bounded window whatever the context: no cap unless -c gives one.
  const bool streaming = is_streaming_policy(options.attention.policy);
  const int64_t unlimited = std::numeric_limits<int64_t>::max() / 2;
  max_context_ = options.max_context > 0 ? options.max_context
                 : streaming            ? unlimited
                                        : c_.max_position_embeddings;
  chunk_ = std::min(options.chunk, max_context_);
  observer_ = options.observer;
  // A device with memory of its own: this session's KV and activations must fit in what the
  // weights and other sessions left free (one line now rather than out of memory mid-prompt).
  if (const std::optional<size_t> free_bytes = backend_.device_free_bytes()) {
    GpuMemoryEstimate need = estimate_gpu_memory(c_, DType::F32, options);
    need.weights = 0;
    check_gpu_memory(need, *free_bytes, 0);
  }
  policy_ = make_kv_policy(options.attention, {backend_, c_, max_context_, chunk_, model.dir()});
  const int64_t q_dim = c_.num_attention_heads * c_.head_dim;
  const int64_t kv_dim = c_.num_key_value_heads * c_.head_dim;
  ids_ = BackendBuffer(backend_, size_t(chunk_));
  x_ = BackendBuffer(backend_, size_t(chunk_ * c_.hidden_size));
  h_ = BackendBuffer(backend_, size_t(chunk_ * c_.hidden_size));
  qkv_ = BackendBuffer(backend_, size_t(chunk_ * (q_dim + 2 * kv_dim)));
  attn_ = BackendBuffer(backend_, size_t(chunk_ * q_dim));
  gate_up_ = BackendBuffer(backend_, size_t(chunk_ * 2 * c_.intermediate_size));
  // One row: a prompt needs the last token's logits only (all_logits, every row, is for tests
  // and grows it on demand). A chunk's rows would be 1 GiB at 2048 x 128256 floats.
  logits_ = BackendBuffer(backend_, size_t(c_.vocab_size));
  rope_.ensure(std::min<int64_t>(max_context_, 4096));
}

void LlamaSession::forward(std::span<const int32_t> tokens, float* last_logits, float* all_logits,
                           const ProgressFn& progress) {
  const int64_t n = int64_t(tokens.size());
  if (n == 0) fail("empty input: nothing to run through the model");
  if (n_past() + n > max_context_) {
    fail("prompt of ", n_past() + n, " tokens exceeds the context limit of ", max_context_, " (-c)");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= c_.vocab_size) {
      fail("token id ", tokens[size_t(i)], " at position ", i, " is outside the vocabulary [0, ",
           c_.vocab_size, ")");
    }
  }
  // A policy may ask for the prompt's last tokens (its question) in a chunk of their own.
  const int64_t tail = n > 1 ? std::min(policy_->prompt_tail_chunk(), chunk_) : 0;
  const int64_t head = tail >= 2 && n > tail + 1 ? n - tail : n;  // tokens before that chunk
  // The streaming policies' store grows in host memory and their index in device memory with
  // every stored token: checked before the first chunk (the index at its floor) and after each
  // (at its measured density, once the layers have stored a few thousand tokens: a second into
  // an 8B prefill), so a prompt that cannot fit stops with one line early rather than at an
  // allocation (or the kernel's OOM killer) much later.
  // Not for one-token steps (decode), where the growth is a token's.
  const bool check_growth = n > 1;
  if (check_growth) check_memory_growth(n, n);
  for (int64_t done = 0; done < n;) {
    // A prompt never ends in a lone one-token chunk (n = chunk * k + 1): the streaming policies
    // take a one-token step after a longer chunk for the first decode step (ltri then starts
    // decoding with its persistent sets), so the chunk before it gives up a token and the last
    // has two.
    const int64_t end = done < head ? head : n;
    const int64_t m = chunk_ >= 3 && end - done == chunk_ + 1 ? chunk_ - 1 : std::min(chunk_, end - done);
    const bool last = done + m == n;
    // Logits are computed only where asked: every row for all_logits, else the last row.
    float* out = all_logits ? all_logits + done * c_.vocab_size : (last ? last_logits : nullptr);
    const int64_t first_row = all_logits ? 0 : (last ? m - 1 : m);
    forward_chunk(tokens.data() + done, m, first_row, out);
    if (all_logits && last && last_logits) {
      std::memcpy(last_logits, all_logits + (n - 1) * c_.vocab_size, size_t(c_.vocab_size) * 4);
    }
    done += m;
    if (check_growth && done < n) check_memory_growth(n - done, n);
    if (progress) progress(done, n);
  }
  if (n > 1) {  // ltri's persistent sets: in the prompt's time, not the first decode step's
    ProfileScope phase(backend_, "policy/end_prompt");
    policy_->end_prompt();
  }
}

void LlamaSession::check_memory_growth(int64_t tokens_left, int64_t n) const {
  const KvPolicy::MemoryGrowth device = policy_->device_growth(tokens_left);
  if (device.bytes > 0) {
    if (const std::optional<size_t> free_bytes = backend_.device_free_bytes()) {
      check_gpu_growth(device, policy_->name(), tokens_left, n, *free_bytes, 0);
    }
  }
  const KvPolicy::MemoryGrowth host = policy_->host_growth(tokens_left);
  if (host.bytes > 0) {
    if (const size_t available = backend_.host_available_bytes(); available > 0) {
      check_host_growth(host, policy_->name(), tokens_left, n, available);
    }
  }
}

void LlamaSession::forward_chunk(const int32_t* ids, int64_t n, int64_t first_row, float* logits) {
  const LlamaWeights& w = model_.weights();
  const int64_t hidden = c_.hidden_size, ffn = c_.intermediate_size;
  const int64_t n_heads = c_.num_attention_heads, n_kv = c_.num_key_value_heads, hd = c_.head_dim;
  const float eps = float(c_.rms_norm_eps);
  Backend& b = backend_;

  PhaseProfile::set_mode(n == 1 ? "decode" : "prefill");
  ProfileScope whole(b, "forward");
  {
    ProfileScope phase(b, "policy/begin_chunk");
    policy_->begin_chunk(n);
  }
  rope_.ensure(policy_->positions_needed(n));
  // Token ids travel as raw 32-bit words in a float buffer so the op table needs no int type.
  static_assert(sizeof(int32_t) == sizeof(float));
  b.upload(ids_.data(), reinterpret_cast<const float*>(ids), size_t(n));
  b.embed_weight(w.embed.ref(), reinterpret_cast<const int32_t*>(ids_.data()), n, hidden, x_.data());

  // Each layer's norms are taken by the op that consumes them (norm_matmul_weights, norm_mlp):
  // its residual add first (h, the previous block's output; none before the first layer), so a
  // device backend can write the normed rows straight in the GEMMs' input precision.
  float* q = qkv_.data();
  float* k = q + n * n_heads * hd;
  float* v = k + n * n_kv * hd;
  for (int64_t l = 0; l < c_.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    // Attention block. One token with fused weights: one GEMV writes [q | k | v] (contiguous for n = 1).
    {
      ProfileScope phase(b, "qkv");
      const Backend::ResidualNorm norm{x_.data(), l > 0 ? h_.data() : nullptr, L.attn_norm.data(), eps, h_.data()};
      if (n == 1 && L.qkv.numel > 0) {
        const Backend::Projection fused[] = {{L.qkv.ref(), (n_heads + 2 * n_kv) * hd, q}};
        b.norm_matmul_weights(norm, n, hidden, fused);
      } else {
        const Backend::Projection qkv[] = {{L.wq.ref(), n_heads * hd, q}, {L.wk.ref(), n_kv * hd, k},
                                           {L.wv.ref(), n_kv * hd, v}};
        b.norm_matmul_weights(norm, n, hidden, qkv);
      }
      if (c_.attention_bias) {
        b.add_bias(q, L.bq.data(), n, n_heads * hd);
        b.add_bias(k, L.bk.data(), n, n_kv * hd);
        b.add_bias(v, L.bv.data(), n, n_kv * hd);
      }
    }
    const AttentionPlan* plan = nullptr;
    if (b.has_attention_early(n)) {
      // The window's part first, so a device attends it while the policy chooses what to retrieve.
      const AttentionPlan* early = nullptr;
      {
        ProfileScope phase(b, "policy/early");
        early = policy_->plan_early(l, q, k, v, n);
      }
      if (early) {
        ProfileScope phase(b, "attention/early");
        b.attention_early(q, n, n_heads, n_kv, hd, *early, rope_);
      }
    }
    {
      ProfileScope phase(b, "policy");
      plan = &policy_->plan(l, q, k, v, n);
    }
    if (observer_) observer_->on_attention(l, q, n, n_heads, *plan, rope_);
    {
      ProfileScope phase(b, "attention");
      b.attention(q, n, n_heads, n_kv, hd, *plan, rope_, attn_.data());
    }
    ProfileScope phase(b, "o+mlp");
    b.matmul_weight(attn_.data(), L.wo.ref(), n, n_heads * hd, hidden, h_.data());
    // MLP block: down(silu(gate(h)) * up(h)), h = rmsnorm(x + attention's output).
    const Backend::ResidualNorm norm{x_.data(), h_.data(), L.mlp_norm.data(), eps, h_.data()};
    const Backend::MlpWeights mlp{L.w_gate.ref(), L.w_up.ref(), L.gate_up.ref(), L.w_down.ref()};
    b.norm_mlp(norm, n, hidden, mlp, ffn, gate_up_.data(), h_.data());
  }
  // The last MLP's output; the final norm is taken on the logit rows only.
  if (c_.num_hidden_layers > 0) b.add(x_.data(), h_.data(), n * hidden);
  {
    ProfileScope phase(b, "policy/end_chunk");
    policy_->end_chunk(n);
  }

  if (logits && first_row < n) {
    ProfileScope phase(b, "logits");
    const int64_t rows = n - first_row;
    if (logits_.size() < size_t(rows * c_.vocab_size)) logits_ = BackendBuffer(backend_, size_t(rows * c_.vocab_size));
    b.rmsnorm(x_.data() + first_row * hidden, w.final_norm.data(), rows, hidden, eps, h_.data());
    b.matmul_weight(h_.data(), w.output_matrix(), rows, hidden, c_.vocab_size, logits_.data());
    b.download(logits, logits_.data(), size_t(rows * c_.vocab_size));
  }
}

}  // namespace ltri
