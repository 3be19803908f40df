#include "kv/ltri_policy.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/phase_profile.hpp"
#include "core/timer.hpp"
#include "kv/ltri_trace.hpp"
#include "ops/profile_scope.hpp"

namespace ltri {

LtriPolicy::LtriPolicy(Backend& backend, const ModelConfig& config, const StreamingShape& shape,
                       const LtriParams& params)
    : StreamingPolicyBase(backend, config, shape), params_(params), layers_(size_t(shape.n_layers)) {
  if (int64_t(params_.layers.size()) != shape.n_layers) {
    fail("ltri policy: ", params_.layers.size(), " layer setups for ", shape.n_layers, " layers");
  }
  for (int64_t l = 0; l < shape.n_layers; ++l) {
    Layer& L = layers_[size_t(l)];
    const LtriLayerSetup& setup = params_.layers[size_t(l)];
    const int64_t head = setup.score_head;
    L.head_weights.assign(size_t(shape.n_heads), head < 0 ? 1.0f / float(shape.n_heads) : 0.0f);
    if (head >= 0) L.head_weights[size_t(head)] = 1.0f;
    if (!setup.score_head_set.empty()) {
      const int64_t n_set = std::count(setup.score_head_set.begin(), setup.score_head_set.end(), uint8_t(1));
      if (int64_t(setup.score_head_set.size()) != shape.n_heads || n_set == 0) {
        fail("ltri policy: layer ", l, "'s scoring heads name ", n_set, " of ", setup.score_head_set.size(),
             " heads for a model with ", shape.n_heads);
      }
      for (int64_t h = 0; h < shape.n_heads; ++h) {
        L.head_weights[size_t(h)] = setup.score_head_set[size_t(h)] ? 1.0f / float(n_set) : 0.0f;
      }
    }
  }
}

size_t LtriPolicy::kv_bytes() const {
  size_t bytes = StreamingPolicyBase::kv_bytes();
  for (const Layer& L : layers_) bytes += (L.scores_dev.size() + L.top_dev.size() + L.question_dev.size()) * sizeof(float);
  for (const BackendBuffer* b : {&token_votes_dev_, &rank_dev_, &chosen_dev_}) bytes += b->size() * sizeof(float);
  return bytes;
}

int64_t LtriPolicy::scored_kv_heads(int64_t layer) const {
  // The KV heads of the heads with a weight (one per layer with --attn-score-heads retrieval);
  // the per-head scores of a trace (LTRI_TRACE) read every head and are not counted.
  const std::vector<float>& w = layers_[size_t(layer)].head_weights;
  const int64_t group = shape_.n_heads / shape_.n_kv_heads;
  int64_t n = 0;
  for (int64_t g = 0; g < shape_.n_kv_heads; ++g) {
    n += std::any_of(w.begin() + g * group, w.begin() + (g + 1) * group, [](float x) { return x != 0.0f; });
  }
  return n;
}

int64_t LtriPolicy::segmentation_head(int64_t layer) const {
  const int64_t head = params_.layers[size_t(layer)].seg_head;
  return head < 0 ? BandCollector::kMeanOfHeads : head;
}

// --- eviction: spans ---

namespace {

// What the store step of an ltri eviction reads besides its tokens and band rows, copied from
// the policy: the step may run on a worker thread after the policy moved on (EvictStep).
struct SpanIndexSetup {
  bool dynamic = true;
  int64_t index_static = 4, index_max = 32, span_max = 256;
  double lambda = 1.0;
  int64_t n_init = 0, n_kv_heads = 0, head_dim = 0;
  int64_t layer = 0;  // for LTRI_TRACE_TOKENS
};

// How many index vectors the span of tokens [x_tok, x_tok + length) keeps (LTRI_SPEC.md,
// "Index vectors of a span"); rows: the layer's segmentation rows.
int64_t index_count(const SpanIndexSetup& s, const TokenRows& rows, int64_t x_tok, int64_t length) {
  if (!s.dynamic) return std::min(s.index_static, length);
  // r_a = (triangle mass / area) / (neighbour mass / area), neighbours = the span's rows left
  // of the triangle + the later rows' cells in the span's columns (row + column, [choice]).
  const int64_t w = s.span_max;
  const int64_t y_tok = x_tok + length - 1;
  double tri = 0.0, nb = 0.0;
  int64_t nb_area = 0;
  for (int64_t i = x_tok; i <= y_tok; ++i) {
    const float* row = rows.row(i);
    for (int64_t d = 0; d <= i - x_tok; ++d) tri += row[d];
    for (int64_t d = i - x_tok + 1; d < w && i - d >= s.n_init; ++d) {  // sinks are no columns
      nb += row[d];
      ++nb_area;
    }
  }
  const int64_t last_row = std::min(rows.end() - 1, y_tok + w - 1);
  for (int64_t i = y_tok + 1; i <= last_row; ++i) {
    const float* row = rows.row(i);
    for (int64_t j = std::max(x_tok, i - w + 1); j <= y_tok; ++j) {
      nb += row[i - j];
      ++nb_area;
    }
  }
  const double tri_area = double(length) * double(length + 1) / 2.0;
  double retained = 1.0;  // neighbours that never looked at the span: their votes say nothing
  if (nb > 0.0 && nb_area > 0) {
    const double ratio = (tri / tri_area) / (nb / double(nb_area));
    retained = std::min(1.0, s.lambda * ratio);
  }
  const int64_t count = int64_t(std::ceil(retained * double(length)));
  return std::clamp<int64_t>(count, 1, std::min(s.index_max, length));
}

// Adds `spans` (closed, consecutive, from e.first on) to the store, each with its index
// vectors: the store step of an eviction, possibly on a worker thread, so it is timed with
// PhaseProfile::add, not ProfileScope (which would synchronise the backend from here).
void store_spans(const SpanIndexSetup& s, const std::vector<Span>& spans, const TokenRows& seg_rows,
                 const TokenRows& votes, EvictedTokens& e, ContextStore& store) {
  const bool profile = PhaseProfile::enabled();
  const Timer step_timer;
  const int64_t hd = s.head_dim, kv_row = s.n_kv_heads * hd;
  const int64_t first = e.first;
  LtriTrace trace;
  const bool tracing = LtriTrace::from_env(trace);
  for (const Span& span : spans) {
    Timer timer;
    const int64_t count = index_count(s, seg_rows, first + span.start, span.length);
    if (profile) PhaseProfile::add("policy/evict/store/index_count", timer.elapsed_ms());
    timer.reset();
    if (e.vectors.size() < size_t(s.n_kv_heads * count * hd)) e.vectors.resize(size_t(s.n_kv_heads * count * hd));
    for (int64_t g = 0; g < s.n_kv_heads; ++g) {
      // The span's keys of this KV head that received the most attention (ties: earlier).
      e.tokens.resize(size_t(span.length));
      std::iota(e.tokens.begin(), e.tokens.end(), first + span.start);
      std::partial_sort(e.tokens.begin(), e.tokens.begin() + count, e.tokens.end(), [&](int64_t a, int64_t b) {
        const float va = votes.row(a)[g], vb = votes.row(b)[g];
        return va != vb ? va > vb : a < b;
      });
      std::sort(e.tokens.begin(), e.tokens.begin() + count);  // index in token order
      if (tracing) trace_index_tokens(trace, s.layer, first + span.start, span.length, g, e.tokens.data(), count);
      for (int64_t r = 0; r < count; ++r) {
        const float* key = e.k + (e.tokens[size_t(r)] - first) * kv_row + g * hd;
        std::copy(key, key + hd, e.vectors.data() + (g * count + r) * hd);
      }
    }
    if (profile) PhaseProfile::add("policy/evict/store/vectors", timer.elapsed_ms());
    if (tracing) trace_stored_span(trace, s.layer, first + span.start, span.length, count);
    timer.reset();
    store.add_unit(e.k + span.start * kv_row, e.v + span.start * kv_row, span.length,
                   e.vectors.data(), count);
    if (profile) PhaseProfile::add("policy/evict/store/add_unit", timer.elapsed_ms());
  }
  if (profile) PhaseProfile::add("policy/evict/store", step_timer.elapsed_ms());
}

// The job of an ltri eviction (StreamingPolicyBase::EvictStep): the spans of the candidates
// e.first .. + e.count (the tokens beyond n_local), found on the layer's segmentation rows; those
// that end before the cut close and are stored, the one across it stays open in the window.
// Returns the tokens of the closed spans.
int64_t evict_spans(const SpanParams& sp, const SpanIndexSetup& setup, const TokenRows& rows, const TokenRows& votes,
                    EvictedTokens& e, ContextStore& store) {
  const Timer timer;
  const int64_t overflow = e.count;
  const int64_t w = sp.span_max;
  const int64_t first = e.first;
  // The stretch reaches span_max past the cut, so spans near the cut see what follows them
  // (rows exist for every window token).
  const int64_t stretch_end = std::min(rows.end(), first + overflow + w);
  const int64_t m = stretch_end - first;
  e.rows.resize(size_t(m * w));
  e.ones.assign(size_t(m), 1.0f);  // row maxima: rows are already scaled to max 1
  for (int64_t i = 0; i < m; ++i) std::copy(rows.row(first + i), rows.row(first + i) + w, e.rows.data() + i * w);
  std::vector<Span> spans = find_spans({e.rows.data(), e.ones.data(), m, w}, sp);
  if (PhaseProfile::enabled()) PhaseProfile::add("policy/evict/find_spans", timer.elapsed_ms());

  int64_t closed = 0;
  size_t n_closed = 0;
  while (n_closed < spans.size() && spans[n_closed].start + spans[n_closed].length <= overflow) {
    closed += spans[n_closed].length;
    ++n_closed;
  }
  spans.resize(n_closed);
  if (closed > 0) store_spans(setup, spans, rows, votes, e, store);
  return closed;
}

}  // namespace

void LtriPolicy::evict(int64_t layer) {
  const int64_t overflow = window().size(layer) - shape_.n_local;
  // Wait until a whole span's worth has overflowed: then at least one span closes (the first
  // span is at most span_max long), and decode segments once per span, not once per token.
  if (overflow < params_.span_max) return;
  SpanParams sp;
  sp.theta = float(params_.layers[size_t(layer)].theta);
  sp.phi = float(params_.phi);
  sp.span_min = params_.span_min;
  sp.span_max = params_.span_max;
  SpanIndexSetup setup;
  setup.dynamic = params_.dynamic_index;
  setup.index_static = params_.index_static;
  setup.index_max = params_.index_max;
  setup.span_max = params_.span_max;
  setup.lambda = params_.lambda;
  setup.n_init = shape_.n_init;
  setup.n_kv_heads = shape_.n_kv_heads;
  setup.head_dim = shape_.head_dim;
  setup.layer = layer;
  // The band rows stay as they are until the layer's next plan(), which waits for this job.
  const TokenRows* seg_rows = &segmentation_rows(layer);
  const TokenRows* token_votes = &votes(layer);
  // Every overflowing token is a candidate; the spans found decide how many leave.
  evict_async(layer, overflow, [sp, setup, seg_rows, token_votes](EvictedTokens& e, ContextStore& store) {
    return evict_spans(sp, setup, *seg_rows, *token_votes, e, store);
  });
}

// --- retrieval: scores, votes, persistence ---

void LtriPolicy::cast_votes(int64_t layer, const std::vector<int64_t>& units, float weight) {
  if (weight == 0.0f) return;
  const ContextStore& s = store(layer);
  const int64_t needed = s.end_token() - shape_.n_init;
  if (int64_t(token_votes_.size()) < needed) token_votes_.resize(size_t(needed), 0.0f);
  cast_.clear();
  for (int64_t u : units) {
    const StoredUnit& unit = s.units()[size_t(u)];
    const int64_t from = unit.first_token - shape_.n_init;
    for (int64_t t = from; t < from + unit.length; ++t) token_votes_[size_t(t)] += weight;
    cast_.push_back({from, from + unit.length});
  }
  // Keep voted_ sorted and disjoint: one merge of this layer's ranges (in store order, as
  // select_by_budget returns units) with the ranges voted before.
  if (!std::is_sorted(cast_.begin(), cast_.end())) std::sort(cast_.begin(), cast_.end());
  merged_.clear();
  std::merge(voted_.begin(), voted_.end(), cast_.begin(), cast_.end(), std::back_inserter(merged_));
  voted_.clear();
  for (const auto& [from, end] : merged_) {
    if (!voted_.empty() && from <= voted_.back().second) {
      voted_.back().second = std::max(voted_.back().second, end);
    } else {
      voted_.push_back({from, end});
    }
  }
}

void LtriPolicy::unit_votes(int64_t layer, int64_t n_units, std::vector<float>& out) const {
  const std::vector<StoredUnit>& units = store(layer).units();
  out.assign(size_t(n_units), 0.0f);
  const int64_t stored = int64_t(token_votes_.size());
  const auto unit_vote = [&](const StoredUnit& unit) {
    const int64_t from = unit.first_token - shape_.n_init;
    double sum = 0.0;
    for (int64_t t = from; t < std::min(stored, from + unit.length); ++t) sum += token_votes_[size_t(t)];
    return float(sum / double(unit.length));
  };
  // Votes are nonzero only on the token ranges voted for since the last clear (voted_), so
  // only the units overlapping one can get a vote: the others stay 0, as their sum of zeros
  // would be. Walking every unit cost a pass over every stored token per layer and chunk,
  // quadratic in the prompt, and a binary search per voted unit of every earlier layer was a
  // large part of a select at 128K. voted_ is sorted and disjoint, so one sweep over the
  // ranges and the units (both in token order) visits each overlapping unit once.
  const auto units_end = units.begin() + n_units;
  auto it = units.begin();
  for (const auto& [from, end] : voted_) {
    const int64_t first = from + shape_.n_init, last = end + shape_.n_init;  // token ids [first, last)
    // The first unit ending after `first`. `it` is the first unit starting at or after the
    // previous range's end (below `first`), so of the units before it only `it - 1` can reach
    // `first` (summed again if it overlapped the previous range too, to the same value). A
    // walk, not a binary search per range: ranges and units are both in token order, so the
    // walks of one call cover the layer's units once.
    if (it != units.begin()) --it;
    while (it != units_end && it->first_token + it->length <= first) ++it;
    for (; it != units_end && it->first_token < last; ++it) {
      if (it->first_token + it->length > first) out[size_t(it - units.begin())] = unit_vote(*it);
    }
  }
}

void LtriPolicy::clear_votes() {
  for (const auto& [from, end] : voted_) {
    std::fill(token_votes_.begin() + from, token_votes_.begin() + end, 0.0f);
  }
  voted_.clear();
}

void LtriPolicy::choose(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units) {
  Layer& L = layers_[size_t(layer)];
  const ContextStore& s = store(layer);
  const float weight = params_.layers[size_t(layer)].vote_weight;
  const bool pinned = decoding_ && params_.persist;
  if (pinned && !params_.decode_retrieval) {  // the question's spans only: nothing to score
    units = L.persistent;
    return;
  }
  // Decode adds at most `budget` tokens to the pinned spans, within the decode capacity.
  const int64_t budget = pinned ? std::clamp<int64_t>(params_.decode_capacity - L.persistent_tokens, 0, params_.budget)
                                : params_.budget;
  const std::vector<uint8_t>* skip = pinned ? &L.is_persistent : nullptr;
  if (LtriTrace t; device_choice() && !pinned && !LtriTrace::from_env(t)) {
    choose_on_device(layer, q, n, units);
    return;
  }

  if (params_.per_query_max) {
    // Each unit scored by its best query among the means of blocks of query_block queries,
    // blocks counted back from the chunk's end (the question's last tokens form one block).
    const int64_t block = std::max<int64_t>(1, params_.query_block);
    const float* means = query_means(q, n, block, &L.head_weights);
    const int64_t n_means = (n + block - 1) / block;
    score_stored_units(layer, means, n_means, false, L.head_weights, L.scores);
    if (!decoding_) save_question_means(L, q, n, means, n_means);
  } else {
    score_stored_units(layer, query_means(q, n, n, &L.head_weights), 1, true, L.head_weights, L.scores);
    if (!decoding_) save_question_means(L, q, n, nullptr, 0);
  }
  ProfileScope phase(backend(), "policy/choose/select");
  select_by_budget(s.units(), L.scores, nullptr, skip, budget, L.top, order_, &s.unit_summary());
  if (params_.voting) {
    // This layer's own top units, plus the votes of the layers already computed for this
    // chunk, weighted by their retrieval scores; own scores break ties.
    unit_votes(layer, int64_t(s.units().size()), rank_);
    for (int64_t u : L.top) rank_[size_t(u)] += weight;
    select_by_budget(s.units(), rank_, &L.scores, skip, budget, chosen_, order_, &s.unit_summary());
    cast_votes(layer, L.top, weight);
  } else {
    chosen_ = L.top;
  }
  if (pinned) {
    units.clear();
    std::merge(L.persistent.begin(), L.persistent.end(), chosen_.begin(), chosen_.end(), std::back_inserter(units));
  } else {
    units = chosen_;
  }
  if (LtriTrace trace; LtriTrace::from_env(trace)) {
    // Each head's own scores for the question's chunk, if asked: which heads find the needle.
    std::vector<std::vector<float>> head_scores(size_t(trace.wants_heads(n_past(), n) ? shape_.n_heads : 0));
    const int64_t block = params_.per_query_max ? std::max<int64_t>(1, params_.query_block) : n;
    for (int64_t h = 0; h < int64_t(head_scores.size()); ++h) {
      std::vector<float> one_hot(size_t(shape_.n_heads), 0.0f);
      one_hot[size_t(h)] = 1.0f;
      score_stored_units(layer, query_means(q, n, block), (n + block - 1) / block, !params_.per_query_max, one_hot,
                         head_scores[size_t(h)]);
    }
    trace_choice(trace, decoding_, n_past(), n, layer, s.units(), L.scores, L.top, units, head_scores);
  }
  if (!decoding_) {  // may be the question's chunk: keep what the persistent set needs
    L.saved_scores = L.scores;
    L.saved_top = L.top;
    L.saved_on_device = false;
  }
}

void LtriPolicy::reserve_device_votes(int64_t n) {
  if (int64_t(token_votes_dev_.size()) < n) {
    // Zeroed (alloc), with the votes cast so far in this chunk copied over.
    BackendBuffer grown(backend(), size_t(std::max<int64_t>(n, int64_t(token_votes_dev_.size()) * 5 / 4)));
    if (device_votes_ > 0) backend().copy(grown.data(), token_votes_dev_.data(), size_t(device_votes_));
    token_votes_dev_ = std::move(grown);
  }
  device_votes_ = std::max(device_votes_, n);
}

void LtriPolicy::choose_on_device(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units) {
  Layer& L = layers_[size_t(layer)];
  const ContextStore& s = store(layer);
  UnitIndexMirror& mirror = index_mirror(layer);
  const int64_t n_units = int64_t(s.units().size());
  const int64_t budget = params_.budget;
  const float weight = params_.layers[size_t(layer)].vote_weight;
  L.scores_dev.reserve(backend(), size_t(n_units));
  L.top_dev.reserve(backend(), size_t(1 + budget));
  // The same query means and scores as the host's choice (choose()), left in backend memory:
  // the means are rotated where they are, so nothing here waits for the chunk's projections.
  const int64_t block = params_.per_query_max ? std::max<int64_t>(1, params_.query_block) : n;
  const float* means = query_means_device(q, n, block);
  const int64_t n_means = (n + block - 1) / block;
  {
    ProfileScope phase(backend(), "policy/choose/score");
    backend().score_units_device(s, mirror, means, n_means, shape_.n_local, rope_, L.head_weights,
                                 L.scores_dev.data());
  }
  if (!decoding_) save_question_means_device(L, q, n, means, n_means);
  ProfileScope phase(backend(), "policy/choose/select");
  const int64_t shortest = shortest_unit(s);
  auto* top = reinterpret_cast<int32_t*>(L.top_dev.data());
  backend().select_by_budget_device(mirror, L.scores_dev.data(), nullptr, false, budget, shortest, top);
  const BackendBuffer* chosen = &L.top_dev;
  if (params_.voting) {
    // As choose(): this layer's own top units plus the votes of the layers already computed
    // for this chunk; own scores break ties; then this layer's top units vote.
    rank_dev_.reserve(backend(), size_t(n_units));
    chosen_dev_.reserve(backend(), size_t(1 + budget));
    reserve_device_votes(s.end_token() - shape_.n_init);
    backend().unit_votes_device(mirror, token_votes_dev_.data(), device_votes_, shape_.n_init, top, budget, weight,
                                rank_dev_.data());
    // Ties go by the scores just ranked above: the backend may reuse that order.
    backend().select_by_budget_device(mirror, rank_dev_.data(), L.scores_dev.data(), true, budget, shortest,
                                      reinterpret_cast<int32_t*>(chosen_dev_.data()));
    if (weight != 0.0f) {
      backend().cast_votes_device(mirror, top, budget, weight, token_votes_dev_.data(), shape_.n_init);
    }
    chosen = &chosen_dev_;
  }
  download_unit_list(*chosen, budget, units);
  if (!decoding_) {  // may be the question's chunk: its scores and top stay where they are
    L.saved_units = n_units;
    L.saved_on_device = true;
  }
}

void LtriPolicy::fetch_saved_choice(Layer& L) {
  if (!L.saved_on_device) return;
  L.saved_on_device = false;
  L.saved_scores.resize(size_t(L.saved_units));
  if (L.saved_units > 0) backend().download(L.saved_scores.data(), L.scores_dev.data(), size_t(L.saved_units));
  download_unit_list(L.top_dev, params_.budget, L.saved_top);
}

void LtriPolicy::save_question_means(Layer& L, const float* q, int64_t n, const float* means, int64_t n_means) {
  L.question_blocks = 0;
  if (params_.question_tokens <= 0 || !params_.persist) return;
  const int64_t q_row = shape_.n_heads * shape_.head_dim;
  if (means == nullptr) {  // the mean query: one mean over the chunk's tail
    const int64_t tail = std::min(n, params_.question_tokens);
    means = query_means(q + (n - tail) * q_row, tail, tail, &L.head_weights);
    n_means = 1;
  } else {  // the first means: blocks are counted back from the chunk's end, mean 0 is the last
    const int64_t block = std::max<int64_t>(1, params_.query_block);
    n_means = std::min(n_means, (params_.question_tokens + block - 1) / block);
  }
  L.question_means.assign(means, means + n_means * q_row);
  L.question_blocks = n_means;
}

void LtriPolicy::save_question_means_device(Layer& L, const float* q, int64_t n, const float* means,
                                            int64_t n_means) {
  L.question_blocks = 0;
  L.question_on_device = false;
  if (params_.question_tokens <= 0 || !params_.persist) return;
  const int64_t q_row = shape_.n_heads * shape_.head_dim;
  if (!params_.per_query_max) {  // the mean query: one mean over the chunk's tail
    const int64_t tail = std::min(n, params_.question_tokens);
    means = query_means_device(q + (n - tail) * q_row, tail, tail);
    n_means = 1;
  } else {  // the first means: blocks are counted back from the chunk's end, mean 0 is the last
    const int64_t block = std::max<int64_t>(1, params_.query_block);
    n_means = std::min(n_means, (params_.question_tokens + block - 1) / block);
  }
  // A copy queued after the means: they are overwritten by the next layer's.
  L.question_dev.reserve(backend(), size_t(n_means * q_row));
  backend().copy(L.question_dev.data(), means, size_t(n_means * q_row));
  L.question_blocks = n_means;
  L.question_on_device = true;
}

void LtriPolicy::build_persistent_sets() {
  ProfileScope phase(backend(), "policy/persist");
  ++persistent_builds_;
  wait_for_stores();  // every layer's units are read, not only the planned one's
  // Rank the units for the question itself: the prompt's last tokens, not the whole chunk,
  // whose other queries favour spans like the prose around the question.
  for (int64_t l = 0; l < shape_.n_layers; ++l) {
    Layer& L = layers_[size_t(l)];
    if (L.question_blocks == 0) {
      fetch_saved_choice(L);  // the last chunk's own scores and top, if it chose in backend memory
      continue;
    }
    L.saved_on_device = false;
    if (L.question_on_device) {  // down once, rotated as query_means() rotates
      const int64_t q_row = shape_.n_heads * shape_.head_dim;
      L.question_means.resize(size_t(L.question_blocks * q_row));
      backend().download(L.question_means.data(), L.question_dev.data(), L.question_means.size());
      rotate_query_means(L.question_means.data(), L.question_blocks, &L.head_weights);
      L.question_on_device = false;
    }
    score_stored_units(l, L.question_means.data(), L.question_blocks, false, L.head_weights, L.saved_scores);
    select_by_budget(store(l).units(), L.saved_scores, nullptr, nullptr, params_.budget, L.saved_top, order_,
                     &store(l).unit_summary());
  }
  // After the question's chunk all layers vote (LTRI_SPEC.md, "Collaborative voting").
  clear_votes();
  if (params_.voting) {
    for (int64_t l = 0; l < shape_.n_layers; ++l) {
      cast_votes(l, layers_[size_t(l)].saved_top, params_.layers[size_t(l)].vote_weight);
    }
  }
  LtriTrace trace;
  const bool tracing = LtriTrace::from_env(trace);
  for (int64_t l = 0; l < shape_.n_layers; ++l) {
    Layer& L = layers_[size_t(l)];
    const int64_t n_units = int64_t(L.saved_scores.size());
    if (params_.voting) {
      unit_votes(l, n_units, rank_);
      L.persistent_tokens = select_by_budget(store(l).units(), rank_, &L.saved_scores, nullptr,
                                             params_.budget, L.persistent, order_, &store(l).unit_summary());
    } else {
      L.persistent = L.saved_top;
      L.persistent_tokens = 0;
      for (int64_t u : L.persistent) L.persistent_tokens += store(l).units()[size_t(u)].length;
    }
    L.is_persistent.assign(size_t(n_units), 0);
    for (int64_t u : L.persistent) L.is_persistent[size_t(u)] = 1;
    if (tracing) {
      trace_persistent(trace, l, store(l).units(), params_.voting ? &rank_ : nullptr, L.saved_scores, L.is_persistent,
                       L.persistent_tokens);
    }
  }
  clear_votes();
}

void LtriPolicy::end_prompt() {
  if (!params_.persist || decoding_ || previous_chunk_ <= 1) return;
  build_persistent_sets();
  persistent_built_ = true;
}

void LtriPolicy::on_begin_chunk(int64_t n) {
  clear_votes();
  if (device_votes_ > 0) {
    backend().fill_zero(token_votes_dev_.data(), size_t(device_votes_));
    device_votes_ = 0;
  }
  if (n == 1 && previous_chunk_ > 1) {
    decoding_ = true;
    if (params_.persist && !persistent_built_) build_persistent_sets();
  } else if (n > 1) {
    decoding_ = false;
    persistent_built_ = false;
    for (Layer& L : layers_) {
      L.persistent.clear();
      L.is_persistent.clear();
      L.persistent_tokens = 0;
      L.saved_scores.clear();
      L.saved_top.clear();
      L.saved_on_device = false;
      L.question_blocks = 0;
      L.question_on_device = false;
    }
  }
}

void LtriPolicy::on_end_chunk(int64_t n) { previous_chunk_ = n; }

void LtriPolicy::on_reset() {
  decoding_ = false;
  previous_chunk_ = 0;
  persistent_built_ = false;
  token_votes_.assign(token_votes_.size(), 0.0f);
  voted_.clear();
  if (device_votes_ > 0) backend().fill_zero(token_votes_dev_.data(), size_t(device_votes_));
  device_votes_ = 0;
  for (Layer& L : layers_) {
    L.scores.clear();
    L.top.clear();
    L.saved_scores.clear();
    L.saved_top.clear();
    L.persistent.clear();
    L.is_persistent.clear();
    L.persistent_tokens = 0;
    L.question_blocks = 0;
    L.question_on_device = false;
    L.saved_on_device = false;
  }
}

}  // namespace ltri
