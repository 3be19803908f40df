#include "kv/policy_factory.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>
#include <string_view>

#include "core/error.hpp"
#include "core/log.hpp"
#include "kv/full_policy.hpp"
#include "kv/infllm_policy.hpp"
#include "kv/layer_jobs.hpp"
#include "kv/ltri_policy.hpp"
#include "kv/policy_files.hpp"
#include "kv/streaming_policy.hpp"
#include "ops/backend.hpp"

namespace ltri {

namespace {

// Warnings about the model directory are printed once per process, not once per session
// (eval runs hundreds of sessions on one model).
void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> printed;
  std::lock_guard<std::mutex> lock(mutex);
  if (printed.insert(message).second) log_warn(message);
}

Placement parse_placement(const std::string& p) {
  if (p == "fixed") return Placement::Fixed;
  if (p == "ordered") return Placement::Ordered;
  fail("--attn-placement ", p, ": expected fixed or ordered");
}

DType parse_host_kv(const std::string& dtype) {
  if (dtype == "f32") return DType::F32;
  if (dtype == "bf16") return DType::BF16;
  if (dtype == "int8") return DType::I8;
  fail("--attn-host-kv ", dtype, ": expected f32, bf16 or int8");
}

DType parse_index_dtype(const std::string& dtype, DType host_kv) {
  if (dtype == "f32") return DType::F32;
  if (dtype == "bf16") return DType::BF16;
  if (dtype == "auto") return host_kv == DType::F32 ? DType::F32 : DType::BF16;
  fail("--attn-index-dtype ", dtype, ": expected auto, f32 or bf16");
}

// Worker threads for the store step (StreamingShape::store_threads).
int parse_async_store(const std::string& mode, const Backend& backend) {
  if (mode == "off") return 0;
  if (mode == "on") return LayerJobs::default_threads();
  // auto: on with a device backend (CUDA), where the host is otherwise idle while the GPU works
  // (H200, 8B shape, ltri 32K prefill: 12.4-15.6 s with the workers against 15.5-19.9 s without,
  // docs/performance.md, sixth run); off on the CPU, whose OpenMP threads already use every core.
  if (mode == "auto") return std::string_view(backend.name()) == "cuda" ? LayerJobs::default_threads() : 0;
  fail("--attn-async-store ", mode, ": expected auto, on or off");
}

void check_at_least(const char* flag, int64_t value, int64_t least) {
  if (value < least) fail(flag, " must be >= ", least, ", got ", value);
}

void check_unit_interval(const char* flag, double value) {
  if (!(value >= 0.0 && value <= 1.0)) fail(flag, " must be in [0, 1], got ", value);
}

// The window's shape common to the streaming policies; the caller sets lag, store, band.
StreamingShape common_shape(const AttentionOptions& o, const PolicyShape& p) {
  check_at_least("--attn-init", o.n_init, 0);
  check_at_least("--attn-local", o.n_local, 1);
  check_at_least("--attn-budget", o.budget, 0);
  check_at_least("chunk size (-b)", p.max_chunk, 1);
  const ModelConfig& c = p.config;
  StreamingShape s;
  s.n_layers = c.num_hidden_layers;
  s.n_heads = c.num_attention_heads;
  s.n_kv_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.n_init = o.n_init;
  s.n_local = o.n_local;
  s.max_chunk = p.max_chunk;
  s.placement = parse_placement(o.placement);
  s.host_kv = parse_host_kv(o.host_kv);
  s.index_dtype = parse_index_dtype(o.index_dtype, s.host_kv);
  s.store_threads = parse_async_store(o.async_store, p.backend);
  check_at_least("--attn-decode-band-batch", o.decode_band_batch, 1);
  s.decode_band_batch = o.decode_band_batch;
  return s;
}

// The model was trained on positions below max_position_embeddings; a plan must stay inside.
void check_positions(const AttentionOptions& o, const PolicyShape& p, const StreamingShape& s) {
  const int64_t needed = s.positions_needed(s.max_chunk);
  const int64_t supported = p.config.max_position_embeddings;
  if (needed <= supported) return;
  std::string parts = cat("init ", s.n_init, " + ");
  if (s.placement == Placement::Ordered && s.retrieved_capacity > 0) {
    parts += cat("retrieved ", s.retrieved_capacity, " + ");
  }
  parts += cat("window ", s.n_local);
  if (s.max_lag > 0) parts += cat(" + eviction lag ", s.max_lag);
  parts += cat(" + chunk ", s.max_chunk);
  fail("--attn-local ", o.n_local, ": the policy needs ", needed, " positions (", parts,
       ") but the model supports ", supported, " (max_position_embeddings); lower --attn-local",
       s.placement == Placement::Ordered ? ", --attn-budget" : "", " or -b");
}

std::unique_ptr<KvPolicy> make_streaming(const AttentionOptions& o, const PolicyShape& p) {
  StreamingShape s = common_shape(o, p);
  check_positions(o, p, s);
  return std::make_unique<StreamingPolicy>(p.backend, p.config, s);
}

std::unique_ptr<KvPolicy> make_infllm(const AttentionOptions& o, const PolicyShape& p) {
  StreamingShape s = common_shape(o, p);
  check_at_least("--attn-block", o.block_size, 1);
  check_at_least("--attn-block-repr", o.block_repr, 1);
  if (o.block_repr > o.block_size) {
    fail("--attn-block-repr ", o.block_repr, " exceeds the block size ", o.block_size, " (--attn-block)");
  }
  s.max_lag = o.block_size - 1;  // a partial block waits in the window
  s.keeps_store = true;
  s.retrieved_capacity = o.budget;
  s.band_width = o.block_size;  // votes come from the queries of the next block_size tokens
  check_positions(o, p, s);
  return std::make_unique<InfllmPolicy>(p.backend, p.config, s, InfllmParams{o.block_size, o.block_repr, o.budget});
}

// A per-model file: the flag's value if given (it must exist), else <model dir>/<name> if that
// exists; "" when there is none (the caller warns and falls back).
std::string model_file(const std::string& flag_value, const char* flag, const std::string& model_dir,
                       const char* name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!flag_value.empty()) {
    if (!fs::is_regular_file(flag_value, ec)) fail(flag, " ", flag_value, ": no such file");
    return flag_value;
  }
  if (model_dir.empty()) return "";
  const std::string path = (fs::path(model_dir) / name).string();
  return fs::is_regular_file(path, ec) ? path : "";
}

void check_ltri_options(const AttentionOptions& o) {
  check_at_least("--attn-span-min", o.span_min, 1);
  check_at_least("--attn-span-max", o.span_max, 1);
  if (o.span_min > o.span_max) {
    fail("--attn-span-min ", o.span_min, " is larger than --attn-span-max ", o.span_max);
  }
  if (o.span_max > o.n_local) {
    fail("--attn-span-max ", o.span_max, " exceeds --attn-local ", o.n_local,
         " (spans are cut from the local window's attention band)");
  }
  check_unit_interval("--attn-theta", o.theta);
  check_unit_interval("--attn-phi", o.phi);
  if (!(o.lambda > 0.0 && std::isfinite(o.lambda))) fail("--attn-lambda must be > 0, got ", o.lambda);
  if (o.index != "static" && o.index != "dynamic") fail("--attn-index ", o.index, ": expected static or dynamic");
  check_at_least("--attn-index-static", o.index_static, 1);
  check_at_least("--attn-index-max", o.index_max, 1);
  if (o.score_heads != "retrieval" && o.score_heads != "retrieval-heads" && o.score_heads != "mean") {
    fail("--attn-score-heads ", o.score_heads, ": expected retrieval, retrieval-heads or mean");
  }
  if (o.seg_heads != "retrieval" && o.seg_heads != "mean") {
    fail("--attn-seg-heads ", o.seg_heads, ": expected retrieval or mean");
  }
  check_at_least("--attn-span-cache", o.span_cache_tokens, 0);
  check_at_least("--attn-query-block", o.query_block, 1);
  check_at_least("--attn-question-tokens", o.question_tokens, 0);
  if (o.retrieval_query != "mean" && o.retrieval_query != "max") {
    fail("--attn-query ", o.retrieval_query, ": expected mean or max");
  }
}

// Per-layer theta, scoring head and vote weight from the model's heads and calibration files.
std::vector<LtriLayerSetup> ltri_layers(const AttentionOptions& o, const PolicyShape& p) {
  const ModelConfig& c = p.config;
  const int64_t n_layers = c.num_hidden_layers;
  std::vector<LtriLayerSetup> layers(static_cast<size_t>(n_layers));
  for (LtriLayerSetup& L : layers) L.theta = o.theta;

  const std::string heads_path = model_file(o.heads_file, "--attn-heads-file", p.model_dir, "ltri_heads.json");
  if (!heads_path.empty()) {
    const RetrievalHeads heads = load_retrieval_heads(heads_path, n_layers, c.num_attention_heads);
    for (int64_t l = 0; l < n_layers; ++l) {
      LtriLayerSetup& L = layers[size_t(l)];
      L.vote_weight = heads.best_score(l);
      // A layer without a retrieval head (best score under the threshold) scores with the mean.
      if (heads.best_score(l) >= heads.threshold) {
        if (o.score_heads == "retrieval") L.score_head = heads.best_head(l);
        if (o.score_heads == "retrieval-heads") {  // every head at or above the threshold
          L.score_head_set.assign(size_t(c.num_attention_heads), 0);
          for (int64_t h = 0; h < c.num_attention_heads; ++h) {
            L.score_head_set[size_t(h)] = heads.scores[size_t(l)][size_t(h)] >= heads.threshold;
          }
        }
        if (o.seg_heads == "retrieval") L.seg_head = heads.best_head(l);
      }
    }
  } else if (!p.model_dir.empty()) {
    warn_once(cat(p.model_dir, ": no ltri_heads.json (run `ltri heads`); ltri weighs every layer's votes equally",
                  o.score_heads != "mean" || o.seg_heads == "retrieval" ? " and uses the mean of heads" : ""));
  }

  const std::string cal_path = model_file(o.calibration_file, "--attn-calibration", p.model_dir, "ltri_calibration.json");
  const bool theta_given = o.theta != AttentionOptions{}.theta;  // a --attn-theta other than the default wins
  if (!cal_path.empty() && !theta_given) {
    const SpanCalibration cal = load_span_calibration(cal_path, n_layers);
    for (int64_t l = 0; l < n_layers; ++l) layers[size_t(l)].theta = cal.theta[size_t(l)];
    if ((cal.span_min > 0 && cal.span_min != o.span_min) || (cal.span_max > 0 && cal.span_max != o.span_max) ||
        (cal.phi >= 0.0 && std::abs(cal.phi - o.phi) > 1e-9)) {
      warn_once(cat(cal_path, ": theta was calibrated with span_min ", cal.span_min, ", span_max ", cal.span_max,
                    ", phi ", cal.phi, "; running with ", o.span_min, ", ", o.span_max, ", ", o.phi));
    }
    if (!cal.segmentation_heads.empty() && cal.segmentation_heads != o.seg_heads) {
      warn_once(cat(cal_path, ": theta was calibrated on the ", cal.segmentation_heads,
                    " segmentation map; running with --attn-seg-heads ", o.seg_heads));
    }
  } else if (cal_path.empty() && !theta_given && !p.model_dir.empty()) {
    warn_once(cat(p.model_dir, ": no ltri_calibration.json (run `ltri calibrate`); ltri uses --attn-theta ", o.theta,
                  " in every layer"));
  }
  return layers;
}

std::unique_ptr<KvPolicy> make_ltri(const AttentionOptions& o, const PolicyShape& p) {
  StreamingShape s = common_shape(o, p);
  check_ltri_options(o);
  LtriParams lp;
  lp.budget = o.budget;
  lp.span_min = o.span_min;
  lp.span_max = o.span_max;
  lp.phi = o.phi;
  lp.per_query_max = o.retrieval_query == "max";
  lp.query_block = o.query_block;
  lp.question_tokens = o.question_tokens;
  lp.question_chunk = o.question_chunk;
  lp.dynamic_index = o.index == "dynamic";
  lp.index_static = o.index_static;
  lp.lambda = o.lambda;
  lp.index_max = o.index_max;
  lp.voting = o.voting;
  lp.persist = o.persist;
  lp.decode_retrieval = o.decode_retrieval;
  // Decode keeps the question's spans and adds per-step ones, up to the span cache bound
  // (at least the budget, at most twice it).
  lp.decode_capacity = decode_capacity(o);
  s.max_lag = o.span_max - 1;  // the open span at the window edge waits
  s.keeps_store = true;
  s.retrieved_capacity = lp.decode_capacity;
  s.band_width = o.span_max;
  s.segmentation_map = true;
  check_positions(o, p, s);
  lp.layers = ltri_layers(o, p);
  return std::make_unique<LtriPolicy>(p.backend, p.config, s, lp);
}

}  // namespace

int64_t decode_capacity(const AttentionOptions& o) {
  if (!o.persist || !o.decode_retrieval) return o.budget;
  return std::max(o.budget, std::min(o.span_cache_tokens, 2 * o.budget));
}

bool is_streaming_policy(const std::string& policy) {
  return policy == "streaming" || policy == "infllm" || policy == "ltri";
}

std::unique_ptr<KvPolicy> make_kv_policy(const AttentionOptions& o, const PolicyShape& p) {
  const ModelConfig& c = p.config;
  if (o.policy == "full") {
    return std::make_unique<FullPolicy>(p.backend, c.num_hidden_layers, c.num_key_value_heads, c.head_dim,
                                        p.max_context);
  }
  if (o.policy == "streaming") return make_streaming(o, p);
  if (o.policy == "infllm") return make_infllm(o, p);
  if (o.policy == "ltri") return make_ltri(o, p);
  fail("--attn ", o.policy, ": unknown KV policy (expected full, streaming, infllm or ltri)");
}

}  // namespace ltri
