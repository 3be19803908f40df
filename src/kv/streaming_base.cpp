#include "kv/streaming_base.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "kv/host_rope.hpp"
#include "ops/backend.hpp"
#include "ops/profile_scope.hpp"

namespace ltri {

int64_t StreamingShape::positions_needed(int64_t n) const {
  const int64_t window_before = n_local + max_lag;
  // Before the first eviction every token is at its true position: init, window, chunk.
  const int64_t contiguous = n_init + window_before + n;
  if (placement == Placement::Ordered) return contiguous + retrieved_capacity;
  // Fixed: window and chunk from 0, init and retrieved seen from n_local.
  return std::max(contiguous, n_local + 1);
}

int64_t StreamingShape::deferred_band_steps() const {
  const int64_t steps = decode_band_batch;
  if (steps <= 1 || band_width <= 0 || n_local < band_width + steps || steps > max_chunk) return 1;
  return steps;
}

StreamingPolicyBase::StreamingPolicyBase(Backend& backend, const ModelConfig& config,
                                         const StreamingShape& shape)
    : shape_(shape),
      rope_(config),
      backend_(backend),
      window_(backend, shape.n_layers, shape.n_kv_heads * shape.head_dim, shape.n_init, shape.max_window()),
      band_(shape.n_heads, shape.n_kv_heads, shape.head_dim, std::max<int64_t>(shape.band_width, 1)) {
  const int64_t kv_row = shape.n_kv_heads * shape.head_dim;
  const int64_t n_layers = shape.n_layers;
  if (shape.keeps_store) {
    for (int64_t l = 0; l < n_layers; ++l) {
      stores_.emplace_back(shape.n_kv_heads, shape.head_dim, shape.n_init, &backend, shape.host_kv,  // slabs from alloc_host
                           ContextStore::kFirstSlabTokens, ContextStore::kMaxSlabTokens, 0, shape.index_dtype);
      index_mirrors_.emplace_back();
      retrieved_.emplace_back(backend, kv_row, shape.retrieved_capacity);
    }
  }
  if (shape.band_width > 0) {
    for (int64_t l = 0; l < n_layers; ++l) {
      votes_.emplace_back(shape.n_kv_heads, shape.max_window());
      if (shape.segmentation_map) seg_rows_.emplace_back(shape.band_width, shape.max_window());
      bands_.push_back(std::make_unique<PendingBand>(backend));
    }
    if (shape.deferred_band_steps() > 1) {
      const size_t q_floats = size_t(shape.deferred_band_steps() * shape.n_heads * shape.head_dim);
      for (int64_t l = 0; l < n_layers; ++l) deferred_q_.emplace_back(backend, q_floats);
      deferred_first_.assign(size_t(n_layers), 0);
      deferred_n_.assign(size_t(n_layers), 0);
    }
  }
  if (shape.keeps_store) {
    query_means_floats_ = shape.max_chunk * shape.n_heads * shape.head_dim;
    query_means_ = backend.alloc_host(size_t(query_means_floats_));
    jobs_ = std::make_unique<LayerJobs>(n_layers, shape.store_threads);
  }
  // Rotations: mean queries at n_local, band keys/queries at up to band_width + chunk.
  rope_.ensure(std::max(shape.n_local + 1, shape.band_width + shape.max_chunk));
  plan_.segments.reserve(4);
  early_plan_.segments.reserve(3);
  const char* host_choice = std::getenv("LTRI_HOST_CHOICE");
  device_choice_ = shape.keeps_store && backend.has_device_choice() && !(host_choice && std::strcmp(host_choice, "1") == 0);
}

void StreamingPolicyBase::download_unit_list(const BackendBuffer& list, int64_t capacity, std::vector<int64_t>& out) {
  const size_t floats = size_t(1 + capacity);  // int32 ids, as many as floats
  if (unit_list_floats_ < floats) {
    if (unit_list_) backend_.free_host(reinterpret_cast<float*>(unit_list_));
    unit_list_ = nullptr;
    unit_list_floats_ = 0;
    unit_list_ = reinterpret_cast<int32_t*>(backend_.alloc_host(floats));
    unit_list_floats_ = floats;
  }
  backend_.download(reinterpret_cast<float*>(unit_list_), list.data(), floats);
  const int64_t count = unit_list_[0];
  if (count < 0 || count > capacity) fail("KV policy: the backend's choice lists ", count, " units; room for ", capacity);
  out.assign(unit_list_ + 1, unit_list_ + 1 + count);
  std::sort(out.begin(), out.end());  // store order, as select_by_budget returns units
}

int64_t StreamingPolicyBase::shortest_unit(const ContextStore& store) {
  const UnitSummary& all = store.unit_summary();
  if (all.count == int64_t(store.units().size())) return all.shortest;
  int64_t shortest = std::numeric_limits<int64_t>::max();
  for (const StoredUnit& u : store.units()) shortest = std::min(shortest, u.length);
  return shortest;
}

StreamingPolicyBase::~StreamingPolicyBase() {
  jobs_.reset();
  if (query_means_) backend_.free_host(query_means_);
  if (unit_list_) backend_.free_host(reinterpret_cast<float*>(unit_list_));
}

void StreamingPolicyBase::begin_chunk(int64_t n) {
  if (n < 1 || n > shape_.max_chunk) {
    fail("KV policy: a chunk of ", n, " tokens; the policy was sized for chunks of 1..", shape_.max_chunk);
  }
  chunk_n_ = n;
  on_begin_chunk(n);
}

void StreamingPolicyBase::choose(int64_t, const float*, int64_t, std::vector<int64_t>& units) {
  units.clear();
}

int64_t StreamingPolicyBase::segmentation_head(int64_t) const { return BandCollector::kMeanOfHeads; }

const ContextStore& StreamingPolicyBase::store(int64_t layer) const {
  if (jobs_) jobs_->wait(layer);
  return stores_[size_t(layer)];
}

void StreamingPolicyBase::wait_for_stores() const {
  if (jobs_) jobs_->wait_all();
}

EvictedTokens::EvictedTokens(Backend& backend, int64_t capacity, int64_t kv_row)
    : backend_(backend), capacity_(capacity) {
  k = backend_.alloc_host(size_t(capacity * kv_row));
  try {
    v = backend_.alloc_host(size_t(capacity * kv_row));
  } catch (...) {  // no destructor runs for a constructor that throws
    backend_.free_host(k);
    throw;
  }
}

EvictedTokens::~EvictedTokens() {
  // A job dropped before it ran (the policy going away) never waited for its copy.
  if (copied) {
    try {
      copied->wait();
    } catch (...) {  // nobody is left to report to; the memory goes regardless
    }
  }
  backend_.free_host(k);
  backend_.free_host(v);
}

std::shared_ptr<EvictedTokens> StreamingPolicyBase::spare_tokens() {
  {
    std::lock_guard lock(spare_mutex_);
    if (!spare_.empty()) {
      std::shared_ptr<EvictedTokens> e = std::move(spare_.back());
      spare_.pop_back();
      return e;
    }
  }
  // Any eviction takes at most what the window holds beyond n_local.
  return std::make_shared<EvictedTokens>(backend_, shape_.max_lag + shape_.max_chunk, shape_.n_kv_heads * shape_.head_dim);
}

void StreamingPolicyBase::recycle(std::shared_ptr<EvictedTokens> evicted) {
  std::lock_guard lock(spare_mutex_);
  spare_.push_back(std::move(evicted));
}

void StreamingPolicyBase::evict_async(int64_t layer, int64_t count, EvictStep step) {
  std::shared_ptr<EvictedTokens> e = spare_tokens();
  if (count > e->capacity()) {
    fail("KV policy: ", count, " tokens to evict from layer ", layer, "; room for ", e->capacity());
  }
  e->first = window_.begin(layer);
  e->count = count;
  {
    ProfileScope phase(backend_, "policy/evict/download");
    window_.download_async(layer, e->first, count, e->k, e->v);
    e->copied = backend_.download_fence();
  }
  ContextStore* store = &stores_[size_t(layer)];
  jobs_->submit(layer, [this, layer, store, e = std::move(e), step = std::move(step)] {
    apply_band(layer);  // the step reads the band's rows
    e->copied->wait();
    e->copied.reset();
    const int64_t tokens_before = store->end_token(), vectors_before = store->n_vectors();
    const int64_t leaving = step(*e, *store);
    stored_tokens_ += store->end_token() - tokens_before;
    stored_vectors_ += store->n_vectors() - vectors_before;
    // The window's and band rows' bookkeeping of this layer: nobody else reads it before the
    // layer's next plan(), which waits for this job.
    drop_front(layer, leaving);
    recycle(e);
  });
}

void StreamingPolicyBase::score_stored_units(int64_t layer, const float* q, int64_t n_q, bool mean_query,
                                             const std::vector<float>& head_weights, std::vector<float>& scores) {
  ProfileScope phase(backend_, "policy/choose/score");
  backend_.score_units(stores_[size_t(layer)], index_mirrors_[size_t(layer)], q, n_q, mean_query, head_weights, scores);
}

const float* StreamingPolicyBase::query_means(const float* q, int64_t n, int64_t block,
                                              const std::vector<float>* heads) {
  ProfileScope phase(backend_, "policy/choose/query");
  const int64_t q_row = shape_.n_heads * shape_.head_dim;
  const int64_t n_blocks = row_block_count(n, q_row, block, "query_means");
  if (n_blocks * q_row > query_means_floats_) {
    fail("query_means: ", n, " queries; the policy was sized for chunks of ", shape_.max_chunk);
  }
  backend_.row_block_means(q, n, q_row, block, query_means_);
  rotate_query_means(query_means_, n_blocks, heads);
  return query_means_;
}

void StreamingPolicyBase::rotate_query_means(float* means, int64_t n_blocks, const std::vector<float>* heads) const {
  const int64_t q_row = shape_.n_heads * shape_.head_dim;
  // Rotation is linear, so rotating a mean equals the mean of the rotated queries.
  for (int64_t b = 0; b < n_blocks; ++b) {
    float* mean = means + b * q_row;
    if (heads == nullptr) {
      rope_rotate_host(mean, shape_.n_heads, shape_.head_dim, shape_.n_local, rope_);
      continue;
    }
    for (int64_t h = 0; h < shape_.n_heads; ++h) {
      if ((*heads)[size_t(h)] != 0.0f) rope_rotate_host(mean + h * shape_.head_dim, 1, shape_.head_dim, shape_.n_local, rope_);
    }
  }
}

const float* StreamingPolicyBase::query_means_device(const float* q, int64_t n, int64_t block) {
  ProfileScope phase(backend_, "policy/choose/query");
  const int64_t q_row = shape_.n_heads * shape_.head_dim;
  const int64_t n_blocks = row_block_count(n, q_row, block, "query_means");
  if (n_blocks * q_row > query_means_floats_) {
    fail("query_means: ", n, " queries; the policy was sized for chunks of ", shape_.max_chunk);
  }
  query_means_dev_.reserve(backend_, size_t(n_blocks * q_row));
  backend_.row_block_means_device(q, n, q_row, block, query_means_dev_.data());
  return query_means_dev_.data();
}

void StreamingPolicyBase::drop_front(int64_t layer, int64_t count) {
  window_.drop_front(layer, count);
  if (!votes_.empty()) votes_[size_t(layer)].drop_until(window_.begin(layer));
  if (!seg_rows_.empty()) seg_rows_[size_t(layer)].drop_until(window_.begin(layer));
}

void StreamingPolicyBase::prepare(int64_t layer, const float* q, const float* k, const float* v, int64_t n) {
  const size_t l = size_t(layer);
  run_pending_evict();

  if (jobs_ && jobs_->threads() > 0) {
    ProfileScope phase(backend_, "policy/store_wait");  // the layer's store job, from its last plan
    jobs_->wait(layer);
  }
  apply_band(layer);  // the last chunk's band, if no eviction job filed it

  {
    ProfileScope phase(backend_, "policy/append");
    window_.append(layer, k, v, n);
  }

  if (!votes_.empty()) {
    ProfileScope phase(backend_, "policy/band");
    votes_[l].push(n);
    if (!seg_rows_.empty()) seg_rows_[l].push(n);
    const int64_t steps = shape_.deferred_band_steps();
    if (n == 1 && steps > 1) {
      // A decode step: its query waits, the band runs once for `steps` of them.
      const int64_t q_row = shape_.n_heads * shape_.head_dim;
      if (deferred_n_[l] == 0) deferred_first_[l] = n_past_;
      backend_.copy(deferred_q_[l].data() + deferred_n_[l] * q_row, q, size_t(q_row));
      if (++deferred_n_[l] == steps) flush_decode_band(layer);
    } else {
      if (!deferred_n_.empty() && deferred_n_[l] > 0) {  // decode steps before this chunk
        flush_decode_band(layer);
        apply_band(layer);
      }
      queue_band(layer, q, n, n_past_);
    }
  }
}

const AttentionPlan* StreamingPolicyBase::plan_early(int64_t layer, const float* q, const float* k, const float* v,
                                                     int64_t n) {
  prepare(layer, q, k, v, n);
  prepared_layer_ = layer;
  early_given_ = false;
  // Only a plan with retrieval has a later part; and only fixed placement keeps the window's
  // positions independent of how many tokens the choice brings.
  if (stores_.empty() || stores_[size_t(layer)].units().empty() || shape_.placement != Placement::Fixed) return nullptr;
  if (window_.begin(layer) == window_.init_count(layer)) return nullptr;  // nothing has left the window
  build_plan(layer, n, true, true, early_plan_);
  early_given_ = true;
  return &early_plan_;
}

const AttentionPlan& StreamingPolicyBase::plan(int64_t layer, const float* q, const float* k,
                                               const float* v, int64_t n) {
  const size_t l = size_t(layer);
  if (prepared_layer_ != layer) {
    prepare(layer, q, k, v, n);
    early_given_ = false;
  }
  prepared_layer_ = -1;
  const bool mark_early = early_given_;
  early_given_ = false;

  // Retrieval after the band is queued: on an accelerator the band then runs while the host
  // chooses the units (which needs neither the window nor the band).
  if (!stores_.empty()) {
    if (stores_[l].units().empty()) {
      retrieved_[l].clear();
    } else {
      {
        ProfileScope phase(backend_, "policy/choose");
        choose(layer, q, n, chosen_);
      }
      ProfileScope phase(backend_, "policy/load");
      retrieved_[l].load(stores_[l], chosen_);
    }
  }

  build_plan(layer, n, false, mark_early, plan_);
  // Step 5 waits for the next plan() or end_chunk(): by then the caller has queued this layer's
  // attention and MLP on the backend, so the host decides what leaves the window while the
  // accelerator computes, instead of before the attention is even queued.
  pending_evict_ = layer;
  return plan_;
}

void StreamingPolicyBase::apply_band(int64_t layer) {
  if (bands_.empty()) return;
  bands_[size_t(layer)]->apply(votes_[size_t(layer)], seg_rows_.empty() ? nullptr : &seg_rows_[size_t(layer)]);
}

void StreamingPolicyBase::run_pending_evict() {
  if (pending_evict_ < 0) return;
  const int64_t layer = pending_evict_;
  pending_evict_ = -1;
  evict_for_next_chunk(layer);
}

void StreamingPolicyBase::evict_for_next_chunk(int64_t layer) {
  // Neither moves window memory: the plan's pointers stay valid.
  window_.settle_init(layer);
  if (!votes_.empty()) votes_[size_t(layer)].drop_until(window_.begin(layer));
  if (!seg_rows_.empty()) seg_rows_[size_t(layer)].drop_until(window_.begin(layer));
  ProfileScope phase(backend_, "policy/evict");
  evict(layer);
}

void StreamingPolicyBase::queue_band(int64_t layer, const float* q, int64_t n, int64_t first_query) {
  const size_t l = size_t(layer);
  TokenRows* seg = seg_rows_.empty() ? nullptr : &seg_rows_[l];
  // Local columns only: no sinks, nothing evicted, at most band_width back from the queries.
  const int64_t first_key = std::max({window_.begin(layer), shape_.n_init, first_query - (shape_.band_width - 1)});
  if (first_key >= first_query + n) return;
  // The backend computes the band where q and the keys are; only votes and seg rows come back.
  // Where the backend can, only queued here: its results are filed into the rows by the
  // eviction's job or the layer's next plan(), the first to read them (apply_band).
  const float* keys = window_.k(layer, first_key);
  if (!band_.start(backend_, q, n, first_query, keys, first_key, rope_, segmentation_head(layer), seg != nullptr,
                   *bands_[l])) {
    band_.compute(backend_, q, n, first_query, keys, first_key, rope_, segmentation_head(layer), seg, votes_[l]);
  }
}

void StreamingPolicyBase::flush_decode_band(int64_t layer) {
  int64_t& waiting = deferred_n_[size_t(layer)];
  if (waiting == 0) return;
  apply_band(layer);  // the band queued before takes no second place in the layer's PendingBand
  // Every key these queries vote for is still in the window (deferred_band_steps), so the band
  // is the one each step would have computed; its votes are summed per key before they are
  // added to the rows, not step by step.
  queue_band(layer, deferred_q_[size_t(layer)].data(), waiting, deferred_first_[size_t(layer)]);
  waiting = 0;
}

void StreamingPolicyBase::build_plan(int64_t layer, int64_t n, bool early_part, bool mark_early,
                                     AttentionPlan& plan) {
  const int64_t n_init = window_.init_count(layer);
  const RetrievedKv* r = stores_.empty() || early_part ? nullptr : &retrieved_[size_t(layer)];
  const int64_t n_retrieved = r ? r->n_tokens() : 0;
  const int64_t w_begin = window_.begin(layer);
  const int64_t w = n_past_ - w_begin;  // window tokens before the chunk
  // Nothing has left the window yet: init and window are the stream's first tokens.
  const bool contiguous = w_begin == n_init && n_retrieved == 0;
  const bool fixed = shape_.placement == Placement::Fixed && !contiguous;
  if ((early_part || mark_early) && !fixed) fail("KV policy: an early plan part without fixed placement");

  plan.segments.clear();
  auto add = [&](const float* k, const float* v, int64_t count, int64_t first, int64_t stride, bool causal,
                 int64_t query_position, bool early) {
    if (count > 0) plan.segments.push_back({k, v, count, first, stride, causal, query_position, early});
  };
  if (fixed) {
    add(window_.init_k(layer), window_.init_v(layer), n_init, 0, 0, false, shape_.n_local, mark_early);
    if (r) add(r->k(), r->v(), n_retrieved, 0, 0, false, shape_.n_local, false);
    add(window_.k(layer, w_begin), window_.v(layer, w_begin), w, 0, 1, false, -1, mark_early);
    add(window_.k(layer, n_past_), window_.v(layer, n_past_), n, w, 1, true, -1, mark_early);
    plan.query_first_position = w;
  } else {
    add(window_.init_k(layer), window_.init_v(layer), n_init, 0, 1, false, -1, false);
    if (r) add(r->k(), r->v(), n_retrieved, n_init, 1, false, -1, false);
    add(window_.k(layer, w_begin), window_.v(layer, w_begin), w, n_init + n_retrieved, 1, false, -1, false);
    add(window_.k(layer, n_past_), window_.v(layer, n_past_), n, n_init + n_retrieved + w, 1, true, -1, false);
    plan.query_first_position = n_init + n_retrieved + w;
  }
}

void StreamingPolicyBase::end_chunk(int64_t n) {
  run_pending_evict();  // the last layer's step 5, with n_past() still before the chunk
  n_past_ += n;
  on_end_chunk(n);
}

size_t StreamingPolicyBase::kv_bytes() const {
  size_t bytes = window_.bytes();
  for (const RetrievedKv& r : retrieved_) bytes += r.bytes();
  for (const UnitIndexMirror& m : index_mirrors_) bytes += m.bytes();
  for (const BackendBuffer& q : deferred_q_) bytes += q.size() * sizeof(float);
  bytes += query_means_dev_.size() * sizeof(float);
  return bytes;
}

size_t StreamingPolicyBase::host_bytes() const {
  wait_for_stores();
  size_t bytes = 0;
  for (const ContextStore& s : stores_) bytes += s.bytes();
  for (const TokenRows& t : votes_) bytes += t.bytes();
  for (const TokenRows& t : seg_rows_) bytes += t.bytes();
  return bytes;
}

double StreamingPolicyBase::index_vectors_per_token(bool& measured) const {
  const int64_t stored_tokens = stored_tokens_.load(), stored_vectors = stored_vectors_.load();
  measured = stored_tokens >= shape_.n_layers * kGrowthSampleTokens;
  return measured ? double(stored_vectors) / double(stored_tokens) : index_vectors_per_token_floor();
}

KvPolicy::MemoryGrowth StreamingPolicyBase::device_growth(int64_t tokens) const {
  MemoryGrowth growth;
  if (stores_.empty() || tokens <= 0) return growth;
  const double layers = double(shape_.n_layers);
  const int64_t stored_vectors = stored_vectors_.load();
  const double per_token = index_vectors_per_token(growth.measured);
  // A mirrored vector: the rows of the KV heads its layer scores with, and at most one unit
  // (an int32 boundary and an int32 token range, UnitIndexMirror; plus what the policy keeps
  // per unit, device_bytes_per_unit). Stored vectors are counted over all layers, so they take
  // the mean (the layers store about as many); the widest layer bounds the old buffer below. (A
  // trace's per-head scores, LTRI_TRACE_HEADS, widen the mirrors to every head: not counted.)
  double vector_bytes = 0.0, widest = 0.0;
  const double unit_bytes = 12.0 + device_bytes_per_unit();
  for (int64_t l = 0; l < shape_.n_layers; ++l) {
    const double bytes = double(scored_kv_heads(l) * shape_.head_dim * int64_t(dtype_size(shape_.index_dtype))) + unit_bytes;
    vector_bytes += bytes;
    widest = std::max(widest, bytes);
  }
  vector_bytes /= layers;
  growth.bytes_per_token = per_token * vector_bytes * layers;
  const double vectors_then = double(stored_vectors) + per_token * double(tokens) * layers;
  // At most kGrowth times the vectors (UnitIndexMirror's growth), and while a layer's mirror
  // grows its old buffer lives until the copy is done: one layer's share more, the widest's.
  const double needed = vectors_then * UnitIndexMirror::kGrowth * (vector_bytes + widest / layers);
  double held = 0.0;
  for (const UnitIndexMirror& m : index_mirrors_) held += double(m.bytes());
  growth.bytes = needed > held ? size_t(needed - held) : 0;
  growth.what = index_name();
  return growth;
}

KvPolicy::MemoryGrowth StreamingPolicyBase::host_growth(int64_t tokens) const {
  MemoryGrowth growth;
  if (stores_.empty() || tokens <= 0) return growth;
  const double layers = double(shape_.n_layers);
  const double per_token = index_vectors_per_token(growth.measured);
  // The formats are fixed at construction: reading them races with no store job.
  const ContextStore& s = stores_.front();
  const double kv_bytes = 2.0 * double(s.stored_row_bytes());  // K and V rows, int8 scales included
  const double vector_bytes = double(shape_.n_kv_heads * shape_.head_dim * int64_t(dtype_size(shape_.index_dtype)));
  growth.bytes_per_token = (kv_bytes + per_token * (vector_bytes + double(sizeof(StoredUnit)))) * layers;
  const double slabs = kv_bytes * double(ContextStore::kMaxSlabTokens) * layers;
  growth.bytes = size_t(growth.bytes_per_token * double(tokens) + slabs);
  growth.what = "store";
  return growth;
}

int64_t StreamingPolicyBase::bytes_uploaded() const {
  int64_t bytes = 0;
  for (const RetrievedKv& r : retrieved_) bytes += r.bytes_uploaded();
  return bytes;
}

void StreamingPolicyBase::reset() {
  // The jobs still running store what the next chunk would have needed: nothing will now.
  if (jobs_) jobs_->discard_all();
  pending_evict_ = -1;  // the stream it belonged to is gone
  prepared_layer_ = -1;
  early_given_ = false;
  n_past_ = 0;
  chunk_n_ = 0;
  window_.reset();
  stored_tokens_ = 0;  // the jobs are done (discard_all)
  stored_vectors_ = 0;
  for (ContextStore& s : stores_) s.reset(shape_.n_init);
  for (UnitIndexMirror& m : index_mirrors_) m.clear();
  for (RetrievedKv& r : retrieved_) r.clear();
  for (auto& b : bands_) b->discard();
  std::fill(deferred_n_.begin(), deferred_n_.end(), 0);  // their tokens are gone
  for (TokenRows& t : votes_) t.reset(0);
  for (TokenRows& t : seg_rows_) t.reset(0);
  on_reset();
}

}  // namespace ltri
