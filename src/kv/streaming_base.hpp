#pragma once
// What the streaming policies (streaming, infllm, ltri) share (LTRI_SPEC.md, "Prefill"):
// init tokens and a local window in backend memory (StreamingWindow), a host store of evicted
// KV grouped in units (ContextStore), retrieval of units into backend memory (RetrievedKv),
// the attention band that yields votes and the segmentation map (BandCollector), and the plan
// that puts them under one softmax at positions that stay bounded however long the stream is.
//
// Per layer and chunk, plan() does, in order:
//   1. waits for the layer's store job (step 5 of its previous chunk, below);
//   2. the chunk's K,V join the window; the band of the chunk's rows is queued (or computed);
//   3. retrieval: choose() picks units of the store for the chunk's queries (averaged where
//      they are, query_means()), and their KV is copied to backend memory. After step 2, so an
//      accelerator computes the band while the host chooses (neither reads the other's data);
//   4. the plan: [init | retrieved | window | chunk (causal)];
//   5. for the next chunk: tokens below n_init move from the window to the init buffer (sinks,
//      kept forever), and evict() moves tokens beyond n_local (+ its lag) out of the window.
//      On the calling thread evict() only says how many tokens may leave (the candidates) and
//      starts copying them to the host (Backend::download_async: on an accelerator the copy
//      runs beside its work); the rest is the layer's job (layer_jobs.hpp, --attn-async-store),
//      on a worker thread while the other layers compute, or at once without workers: it
//      waits for the copy, decides how many candidates leave (ltri: span discovery on the
//      band's rows), stores them (index vectors, ContextStore::add_unit), and drops them from
//      the window. The layer's next plan() waits for the job, so it sees the window settled.
//      Step 5 itself runs at the start of the next plan() call (the next layer's) or in
//      end_chunk(), not inside this plan(): the caller has queued the layer's attention and
//      MLP by then, so the host starts the eviction while the accelerator computes.
// A caller that attends in two passes (Backend::attention_early) calls plan_early() first: it
// does steps 1-2 and, once the plan has retrieval, returns [init | window | chunk], whose
// positions do not depend on the choice under fixed placement; plan() then does steps 3-5 and
// marks those segments early, so the accelerator attends the window while the host chooses.
// Evicting after the chunk rather than before the next one changes nothing any chunk sees:
// evict() reads only the window, the votes and the segmentation rows, which are final once the
// chunk's band is in, and leaving the window moves no memory, so the plan being returned stays
// valid. Between chunks the window holds exactly what the next chunk will attend to, and the
// store every token that left it.
// Positions: while nothing has left the window, every token sits at its true position (so a
// window that covers the input reproduces full attention). After that, with placement
// "ordered", init, retrieved units (in original order) and window are laid out contiguously:
// init at 0.., retrieved after, window and chunk after them at true relative distances. With
// "fixed" (InfLLM), window and chunk keep true relative distances from 0, and every query sees
// init and retrieved keys at the one distance n_local (keys at 0, stride 0, query_position).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "io/model_config.hpp"
#include "kv/attention_band.hpp"
#include "kv/context_store.hpp"
#include "kv/kv_policy.hpp"
#include "kv/layer_jobs.hpp"
#include "kv/retrieval.hpp"
#include "kv/retrieved_kv.hpp"
#include "kv/streaming_window.hpp"
#include "kv/unit_index_mirror.hpp"
#include "ops/backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {

class Backend;
class BackendFence;

enum class Placement { Fixed, Ordered };

struct StreamingShape {
  int64_t n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t n_init = 0;
  int64_t n_local = 0;
  // Tokens the window may hold beyond n_local before a chunk: evictions happen in units
  // (blocks, closed spans), so up to a unit's worth waits in the window.
  int64_t max_lag = 0;
  int64_t max_chunk = 0;
  bool keeps_store = false;         // evicted tokens go to the host store (infllm, ltri)
  DType host_kv = DType::F32;       // how the store holds K/V: F32, BF16 or I8
  DType index_dtype = DType::F32;   // how the store holds index vectors: F32 or BF16
  int64_t retrieved_capacity = 0;  // most retrieved tokens visible at once
  int64_t band_width = 0;          // 0 = no band (no votes, no segmentation map)
  bool segmentation_map = false;   // keep the band's segmentation rows (ltri)
  Placement placement = Placement::Fixed;
  // Worker threads for the store step of evictions (keeps_store); 0: on the calling thread.
  int store_threads = 0;
  // Decode steps whose band is computed in one go (see deferred_band_steps()).
  int64_t decode_band_batch = 1;
  // Steps the band of decode may wait for: decode_band_batch where that cannot change what an
  // eviction reads (every key a waiting query votes for stays in the window until the band has
  // run: n_local >= band_width + batch) and the band's rotations cover it (batch <= max_chunk);
  // else 1.
  int64_t deferred_band_steps() const;

  // Most tokens the window holds right after a chunk is appended.
  int64_t max_window() const { return n_local + max_lag + max_chunk; }
  // One past the largest position a plan for a chunk of n tokens uses.
  int64_t positions_needed(int64_t n) const;
};

// What evict() hands to its job: the candidate tokens' K/V on the host, and scratch for the
// step. Reused from a pool (one per job in flight), so a warm stream allocates nothing.
class EvictedTokens {
 public:
  // Room for `capacity` tokens of kv_row floats each, in host memory from backend.alloc_host.
  EvictedTokens(Backend& backend, int64_t capacity, int64_t kv_row);
  // Waits for the copy into k/v (if one is in flight) before freeing them.
  ~EvictedTokens();
  EvictedTokens(const EvictedTokens&) = delete;
  EvictedTokens& operator=(const EvictedTokens&) = delete;

  int64_t first = 0;             // token id of the first candidate
  int64_t count = 0;             // candidates
  float* k = nullptr;            // (count, n_kv_heads, head_dim), host, once `copied` has passed
  float* v = nullptr;
  std::shared_ptr<BackendFence> copied;  // the download of k/v
  std::vector<float> vectors;    // scratch: a unit's index vectors
  std::vector<int64_t> tokens;   // scratch
  std::vector<float> rows, ones; // scratch: band rows for span discovery
  int64_t capacity() const { return capacity_; }

 private:
  Backend& backend_;
  int64_t capacity_;
};

class StreamingPolicyBase : public KvPolicy {
 public:
  StreamingPolicyBase(Backend& backend, const ModelConfig& config, const StreamingShape& shape);
  // Joins the store workers (a running job finishes, queued ones are dropped) before anything
  // they use goes away.
  ~StreamingPolicyBase() override;

  void begin_chunk(int64_t n) override;
  const AttentionPlan& plan(int64_t layer, const float* q, const float* k, const float* v,
                            int64_t n) override;
  // Steps 1-2, then [init | window | chunk] when the plan will have retrieved units placed
  // "fixed" (their positions, and so the others', do not depend on the choice); plan() then
  // does steps 3-4 and marks those segments early.
  const AttentionPlan* plan_early(int64_t layer, const float* q, const float* k, const float* v,
                                  int64_t n) override;
  void end_chunk(int64_t n) override;
  int64_t n_past() const override { return n_past_; }
  int64_t positions_needed(int64_t n) const override { return shape_.positions_needed(n); }
  size_t kv_bytes() const override;
  size_t host_bytes() const override;  // waits for every store job
  // The index mirror's growth for `tokens` more stored tokens per layer: vectors per stored
  // token as measured so far (once every layer has stored kGrowthSampleTokens on average; until
  // then the policy's floor, index_vectors_per_token_floor), times the bytes of a mirrored
  // vector, with the mirror's growth slack (UnitIndexMirror::kGrowth), less what the mirrors hold.
  // Does not wait for the store jobs: it reads counters they publish when done.
  MemoryGrowth device_growth(int64_t tokens) const override;
  // The store's growth for `tokens` more stored tokens per layer: their K/V rows in the store's
  // format (int8 scales included), their index vectors (density as for device_growth) and unit
  // entries, and one slab per layer (the store allocates whole slabs). Does not wait either.
  MemoryGrowth host_growth(int64_t tokens) const override;
  static constexpr int64_t kGrowthSampleTokens = 2048;
  void reset() override;                // waits for every store job (forgetting their errors)

  // For tests and reports.
  const StreamingShape& shape() const { return shape_; }
  // A layer's window is settled once its eviction job is done: plan() and evict() see it so;
  // elsewhere wait with store(layer) first.
  const StreamingWindow& window() const { return window_; }
  // Waits for the layer's store job first (rethrowing its error).
  const ContextStore& store(int64_t layer) const;
  int store_threads() const { return jobs_ ? jobs_->threads() : 0; }  // 0: the store step runs inline
  const RetrievedKv& retrieved(int64_t layer) const { return retrieved_[size_t(layer)]; }
  int64_t bytes_uploaded() const;  // host -> backend copies of retrieved KV, cumulative
  // Whether choose() may pick units in backend memory (Backend::has_device_choice), unless
  // LTRI_HOST_CHOICE=1 asks for the host's choice: the same units from the same scores.
  bool device_choice() const { return device_choice_; }

 protected:
  // Step 5: moves tokens out of the layer's window, which holds tokens
  // [window().begin(layer), window().end(layer)) after the chunk, for the next chunk. n_past()
  // still counts the tokens before the chunk.
  virtual void evict(int64_t layer) = 0;
  // Step 2: the store units the chunk of n queries sees, in store order. q (n, n_heads,
  // head_dim): the chunk's queries before RoPE, in backend memory (query_means() averages them).
  virtual void choose(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units);
  // Which segmentation map the band keeps for the layer: a query head, or kMeanOfHeads.
  virtual int64_t segmentation_head(int64_t layer) const;
  // The fewest index vectors a stored token can bring (before any is stored, device_growth
  // counts this many), and what the index is called in messages.
  virtual double index_vectors_per_token_floor() const { return 0.0; }
  // Index vectors per stored token: measured once every layer has stored kGrowthSampleTokens on
  // average (measured = true), else the floor.
  double index_vectors_per_token(bool& measured) const;
  virtual const char* index_name() const { return "index"; }
  // How many KV heads' index vectors the layer's scoring reads: what a backend that scores in
  // its own memory mirrors (UnitIndexMirror). Every one, unless a policy scores with some heads.
  virtual int64_t scored_kv_heads(int64_t /*layer*/) const { return shape_.n_kv_heads; }
  virtual void on_begin_chunk(int64_t /*n*/) {}
  virtual void on_end_chunk(int64_t /*n*/) {}
  virtual void on_reset() {}

  // The job of an eviction: `candidates` holds the K/V of window tokens [first, first +
  // count) on the host; the step stores the ones that leave, which must be the first ones, and
  // returns how many leave (0..count). It runs on a worker thread, so it may use only its
  // arguments, what it captured by value, and the layer's votes() / segmentation_rows() rows
  // (read-only: the policy does not touch them again before the layer's next plan(), which
  // waits for the job). Never the backend (ProfileScope included: time with PhaseProfile::add).
  using EvictStep = std::function<int64_t(EvictedTokens& candidates, ContextStore& store)>;

  // For evict(): starts the copy of window tokens [window().begin(layer), + count) to the host
  // and queues the layer's job: once they are there, `step` runs and the tokens it names leave
  // the window (with their band rows). Without workers all of it happens before this returns.
  void evict_async(int64_t layer, int64_t count, EvictStep step);
  // The first `count` window tokens leave the window (and their band rows).
  void drop_front(int64_t layer, int64_t count);
  // For steps that read stores outside the layer's plan(): every layer's store job done.
  void wait_for_stores() const;
  // The layer's index in backend memory (Backend::score_units syncs it; the choice ops of a
  // backend with has_device_choice read it).
  UnitIndexMirror& index_mirror(int64_t layer) { return index_mirrors_[size_t(layer)]; }
  // Backend bytes a policy keeps per stored unit beyond the mirror (the scores of a choice in
  // backend memory): counted by device_growth, per index vector (a unit has at least one).
  virtual double device_bytes_per_unit() const { return 0.0; }
  // A unit list of backend memory (Backend::has_device_choice) with room for `capacity` ids, as
  // unit ids in store order on the host: its one download waits for the backend.
  void download_unit_list(const BackendBuffer& list, int64_t capacity, std::vector<int64_t>& out);
  // The store's shortest unit (select_by_budget's walk stops when less than it is left).
  static int64_t shortest_unit(const ContextStore& store);
  const TokenRows& votes(int64_t layer) const { return votes_[size_t(layer)]; }
  const TokenRows& segmentation_rows(int64_t layer) const { return seg_rows_[size_t(layer)]; }
  int64_t chunk_tokens() const { return chunk_n_; }
  Backend& backend() { return backend_; }  // for ProfileScope in the policies' steps
  // For choose(): scores of the layer's stored units for n_q host queries (n_q, n_heads,
  // head_dim) rotated to n_local; Backend::score_units, which keeps the layer's index mirror.
  void score_stored_units(int64_t layer, const float* q, int64_t n_q, bool mean_query,
                          const std::vector<float>& head_weights, std::vector<float>& scores);
  // For choose(): the means of the chunk's queries q (n, n_heads, head_dim, backend memory) in
  // blocks of `block` rows counted back from the chunk's end (block >= n: the chunk's mean
  // query), each rotated to n_local: scored against un-rotated keys, every unit is seen from
  // the distance at which attention places retrieved tokens. The backend averages where q is
  // (Backend::row_block_means) and only the means come back: (ceil(n / block), n_heads,
  // head_dim) host rows, valid until the next call. With `heads` (n_heads weights), only the
  // heads of nonzero weight are rotated (the others are left as averaged: a caller that scores
  // with those weights never reads them).
  const float* query_means(const float* q, int64_t n, int64_t block, const std::vector<float>* heads = nullptr);
  // query_means for a choice in backend memory (Backend::has_device_choice): the same means,
  // NOT rotated (Backend::score_units_device rotates the rows it scores), left in backend
  // memory, so no round trip to the host waits for the chunk's projections. Valid until the
  // next call.
  const float* query_means_device(const float* q, int64_t n, int64_t block);
  // What query_means does to the means after averaging: rotates the heads of nonzero weight
  // (every head without `heads`) of n_blocks host rows (n_blocks, n_heads, head_dim) to n_local.
  void rotate_query_means(float* means, int64_t n_blocks, const std::vector<float>* heads) const;

  StreamingShape shape_;
  RopeTable rope_;  // the policy's own table: host-side rotations (mean query) and the band op

 private:
  // Steps 1-2 of plan() (the store job waited for, the chunk in the window, its band queued).
  void prepare(int64_t layer, const float* q, const float* k, const float* v, int64_t n);
  // Step 4 into `plan`: the whole plan, or (early_part) only the segments plan_early gives. With
  // mark_early the whole plan's init, window and chunk segments are marked early.
  void build_plan(int64_t layer, int64_t n, bool early_part, bool mark_early, AttentionPlan& plan);
  void evict_for_next_chunk(int64_t layer);  // step 5
  void run_pending_evict();                   // step 5 of the layer whose plan() came last, if any
  // Files the layer's queued band into votes_ / seg_rows_ (waiting for it), if one is pending:
  // in the layer's eviction job, or in its next plan() (any thread that owns the layer).
  void apply_band(int64_t layer);
  // Queues (or computes) the band of queries q (n, n_heads, head_dim), backend memory, of tokens
  // [first_query, first_query + n) over the window's local keys.
  void queue_band(int64_t layer, const float* q, int64_t n, int64_t first_query);
  // The band of the layer's waiting decode steps, if any (they wait in deferred_q_).
  void flush_decode_band(int64_t layer);
  std::shared_ptr<EvictedTokens> spare_tokens();          // from the pool, or new
  void recycle(std::shared_ptr<EvictedTokens> evicted);  // back to the pool (any thread)

  Backend& backend_;
  StreamingWindow window_;
  std::vector<ContextStore> stores_;      // per layer, host
  std::vector<UnitIndexMirror> index_mirrors_;  // per layer: the store's index in backend memory, if the backend scores there
  std::vector<RetrievedKv> retrieved_;    // per layer, backend
  std::vector<TokenRows> votes_;          // per layer: (window tokens, n_kv_heads)
  std::vector<TokenRows> seg_rows_;       // per layer: (window tokens, band_width)
  BandCollector band_;
  std::vector<std::unique_ptr<PendingBand>> bands_;  // per layer (with a band): the band queued asynchronously
  // Decode steps whose band waits (StreamingShape::deferred_band_steps() > 1), per layer:
  std::vector<BackendBuffer> deferred_q_;  // (steps, n_heads, head_dim), backend: their queries
  std::vector<int64_t> deferred_first_;    // token of the first waiting query
  std::vector<int64_t> deferred_n_;        // how many wait
  int64_t n_past_ = 0;
  int64_t chunk_n_ = 0;
  // Tokens and index vectors stored, summed over the layers, added by each store job when it is
  // done (read by device_growth without waiting for the jobs).
  std::atomic<int64_t> stored_tokens_{0};
  std::atomic<int64_t> stored_vectors_{0};
  int64_t pending_evict_ = -1;  // the layer whose step 5 waits for the next plan() or end_chunk(); -1: none
  // Host scratch, sized once.
  // (max_chunk, n_heads, head_dim): at most one mean per query. From alloc_host: a device
  // backend downloads the means into page-locked memory, several times faster than into pageable.
  float* query_means_ = nullptr;
  BackendBuffer query_means_dev_;  // query_means_device's means
  int64_t query_means_floats_ = 0;
  std::vector<int64_t> chosen_;
  bool device_choice_ = false;
  // download_unit_list's host copy, from alloc_host as the means: the list comes down once per
  // layer and chunk on the choice's critical path, and a copy into pageable memory took
  // ~0.12 ms of GPU time for 8 KB (LTRI_PROFILE=gpu, H200).
  int32_t* unit_list_ = nullptr;
  size_t unit_list_floats_ = 0;
  AttentionPlan plan_;
  AttentionPlan early_plan_;     // plan_early's
  int64_t prepared_layer_ = -1;  // the layer whose steps 1-2 plan_early did for the coming plan()
  bool early_given_ = false;     // plan_early returned early_plan_ for that layer
  std::mutex spare_mutex_;
  std::vector<std::shared_ptr<EvictedTokens>> spare_;  // EvictedTokens no job holds
  // The store jobs (keeps_store only). Declared last: destroyed first, while what jobs use lives.
  std::unique_ptr<LayerJobs> jobs_;
};

}  // namespace ltri
