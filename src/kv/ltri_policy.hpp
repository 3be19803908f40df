#pragma once
// `ltri` (LTRI_SPEC.md): init + local window + retrieved spans. Tokens leaving the window are
// cut into spans at the edges of the triangles of the layer's attention map (span_discovery),
// each span keeps index vectors (its most-voted keys; how many: static or dynamic), spans are
// scored with the layer's retrieval head (or the mean of heads), layers vote together on
// which spans to load, and the spans found for the question (the last prefill chunk) stay
// resident through decoding.
//
// Prefill vs decode: the policy sees only chunk sizes. A chunk of one token that follows a
// chunk of several is the first decode step; the last multi-token chunk is the question's.
#include <cstdint>
#include <vector>

#include "kv/span_discovery.hpp"
#include "kv/streaming_base.hpp"

namespace ltri {

struct LtriLayerSetup {
  double theta = 0.6;        // triangle threshold (per layer, from the calibration file)
  int64_t score_head = -1;   // query head that scores spans; -1 = the mean of heads
  // (n_heads) query heads whose mean scores spans (--attn-score-heads retrieval-heads: the
  // layer's retrieval heads); empty = as score_head says.
  std::vector<uint8_t> score_head_set;
  int64_t seg_head = -1;     // query head whose attention is segmented; -1 = the mean of heads
  float vote_weight = 1.0f;  // the layer's best retrieval score: weight of its votes
};

struct LtriParams {
  int64_t budget = 2048;      // tokens of retrieved spans per chunk
  int64_t span_min = 4;
  int64_t span_max = 256;
  double phi = 0.3;
  bool per_query_max = false;  // score spans by their best query, not the mean query
  int64_t query_block = 1;     // per_query_max: queries averaged in blocks of this many first
  // The spans pinned for decode are scored with the queries of the prompt's last
  // question_tokens tokens only (whole query blocks with per_query_max), where the question
  // sits; 0 = with every query of the last chunk, as in prefill.
  int64_t question_tokens = 0;
  // The prompt's last question_tokens tokens are prefilled as a chunk of their own: the first
  // answer token is then computed with spans retrieved for the question, not for the prose
  // that shares its chunk (KvPolicy::prompt_tail_chunk).
  bool question_chunk = false;
  bool dynamic_index = true;  // false: index_static vectors per span
  int64_t index_static = 4;
  double lambda = 1.0;        // dynamic: retained fraction r_v = min(1, lambda * r_a)
  int64_t index_max = 32;
  bool voting = true;
  bool persist = true;
  bool decode_retrieval = true;  // with persist: decode steps also retrieve (else pinned spans only)
  // Decode with persistence: persistent spans plus per-step additions, at most this many
  // tokens (>= budget; the shape's retrieved_capacity).
  int64_t decode_capacity = 4096;
  std::vector<LtriLayerSetup> layers;  // (n_layers)
};

class LtriPolicy : public StreamingPolicyBase {
 public:
  // shape: max_lag span_max - 1, keeps_store, retrieved_capacity decode_capacity, band_width
  // span_max, segmentation_map.
  LtriPolicy(Backend& backend, const ModelConfig& config, const StreamingShape& shape,
             const LtriParams& params);
  const char* name() const override { return "ltri"; }
  int64_t prompt_tail_chunk() const override {
    // A one-token chunk would be taken for a decode step (on_begin_chunk): at least two.
    return params_.question_chunk && params_.question_tokens >= 2 ? params_.question_tokens : 0;
  }

  // The persistent sets, from the prompt's last chunk (the question), built as soon as every
  // span of the prompt is stored, rather than in the first decode step.
  void end_prompt() override;

  const LtriParams& params() const { return params_; }
  // How many times the persistent sets were built (once a prompt), for tests.
  int64_t persistent_builds() const { return persistent_builds_; }
  // Units pinned for decoding (store order); empty before the prompt ended (end_prompt) or the
  // first decode step.
  const std::vector<int64_t>& persistent_units(int64_t layer) const { return layers_[size_t(layer)].persistent; }
  size_t kv_bytes() const override;

 protected:
  void evict(int64_t layer) override;
  void choose(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units) override;
  int64_t segmentation_head(int64_t layer) const override;
  // At least one vector per span, spans at most span_max long. How many more depends on the
  // attention (dynamic index): measured once tokens are stored.
  double index_vectors_per_token_floor() const override { return 1.0 / double(params_.span_max); }
  const char* index_name() const override { return "span index"; }
  // A layer's scores of its units in backend memory, when it chooses there.
  double device_bytes_per_unit() const override { return device_choice() ? double(sizeof(float)) : 0.0; }
  int64_t scored_kv_heads(int64_t layer) const override;
  void on_begin_chunk(int64_t n) override;
  void on_end_chunk(int64_t n) override;
  void on_reset() override;

 private:
  struct Layer {
    std::vector<float> head_weights;  // (n_heads): one-hot on score_head, or uniform
    std::vector<float> scores;        // (units) own scores for the current chunk
    std::vector<int64_t> top;         // the layer's own top units (its votes)
    // Saved from the last multi-token chunk, for the persistent set.
    std::vector<float> saved_scores;
    std::vector<int64_t> saved_top;
    // (question_blocks, n_heads * head_dim) the last chunk's rotated query means over its
    // last question_tokens tokens: they rescore the units for the persistent set.
    std::vector<float> question_means;
    int64_t question_blocks = 0;
    // choose_on_device keeps those means in backend memory instead, before RoPE:
    // build_persistent_sets brings them down and rotates them, once, after the prompt.
    BackendBuffer question_dev;
    bool question_on_device = false;
    std::vector<int64_t> persistent;  // pinned units, store order
    std::vector<uint8_t> is_persistent;
    int64_t persistent_tokens = 0;
    // The choice in backend memory (choose_on_device): the scores of the units (n_units floats)
    // and the layer's own top units (a unit list, Backend::has_device_choice). What the last
    // prefill chunk left there is its saved scores and top: `saved_units` units, fetched by
    // build_persistent_sets only if it needs them.
    BackendBuffer scores_dev, top_dev;
    int64_t saved_units = 0;
    bool saved_on_device = false;
  };

  // Adds `weight` to the token votes of `units` of `layer` (cross-layer voting).
  void cast_votes(int64_t layer, const std::vector<int64_t>& units, float weight);
  // Mean token vote of every unit of the store (first n_units).
  void unit_votes(int64_t layer, int64_t n_units, std::vector<float>& out) const;
  void clear_votes();
  // Keeps the query means of the chunk's last question_tokens tokens (means: the chunk's
  // query means as scored, (n_means, q_row)).
  void save_question_means(Layer& L, const float* q, int64_t n, const float* means, int64_t n_means);
  // The same for choose_on_device: means (n_means, q_row) are query_means_device's, in backend
  // memory, and are copied there (no wait).
  void save_question_means_device(Layer& L, const float* q, int64_t n, const float* means, int64_t n_means);
  void build_persistent_sets();
  // choose() of a prefill chunk in backend memory: the scores, both selections and the votes
  // stay there, and only the chosen unit list comes down.
  void choose_on_device(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units);
  // The layer's saved scores and top from backend memory into saved_scores / saved_top.
  void fetch_saved_choice(Layer& L);
  // token_votes_dev_ holds at least n votes (growing keeps the votes cast so far).
  void reserve_device_votes(int64_t n);

  LtriParams params_;
  std::vector<Layer> layers_;
  bool decoding_ = false;
  int64_t previous_chunk_ = 0;
  bool persistent_built_ = false;  // by end_prompt, for the decode steps after the last chunk
  int64_t persistent_builds_ = 0;
  // Cross-layer votes per stored token (index: token id - n_init), with the ranges voted for
  // since the last clear, [from, end) in that index, sorted and disjoint: clearing and summing
  // the votes per unit cost what voting did.
  std::vector<float> token_votes_;
  std::vector<std::pair<int64_t, int64_t>> voted_;
  std::vector<std::pair<int64_t, int64_t>> cast_, merged_;  // scratch of cast_votes()
  // Scratch, reused.
  std::vector<float> rank_;
  std::vector<int64_t> order_, chosen_;
  // The choice in backend memory: the token votes of the chunk (token_votes_dev_, the first
  // device_votes_ of its floats in use: token ids from n_init), the ranks with votes, and the
  // chosen unit list.
  BackendBuffer token_votes_dev_, rank_dev_, chosen_dev_;
  int64_t device_votes_ = 0;
};

}  // namespace ltri
