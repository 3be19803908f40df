#include "kv/retrieval.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>

#include "core/error.hpp"

namespace ltri {

namespace {

// The queries as the dot products see them: unchanged for an F32 index, rounded to bf16 (and
// back) for a BF16 one, in `rounded`. q: n values.
const float* scoring_queries(const ContextStore& store, const float* q, int64_t n, std::vector<float>& rounded) {
  if (store.index_dtype() == DType::F32) return q;
  rounded.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) rounded[size_t(i)] = bf16_to_f32(f32_to_bf16(q[i]));
  return rounded.data();
}

// Index vectors [v0, v0 + rows) of KV head g as f32 rows (rows within one contiguous run of the
// store): the store's own memory for an F32 index, widened into `widened` for a BF16 one.
const float* index_rows_f32(const ContextStore& store, int64_t g, int64_t v0, int64_t rows, float* widened) {
  if (store.index_dtype() == DType::F32) return store.index_vector(g, v0);
  const uint16_t* bits = static_cast<const uint16_t*>(store.index_data(g, v0));
  const int64_t n = rows * store.head_dim();
  for (int64_t i = 0; i < n; ++i) widened[i] = bf16_to_f32(bits[i]);
  return widened;
}

}  // namespace

void score_units(const ContextStore& store, const float* qbar, const std::vector<float>& head_weights,
                 std::vector<float>& scores, std::vector<float>& dots) {
  const std::vector<StoredUnit>& units = store.units();
  const int64_t n_units = int64_t(units.size());
  const int64_t n_vec = store.n_vectors();
  const int64_t hd = store.head_dim();
  const int64_t n_heads = int64_t(head_weights.size());
  const int64_t group = n_heads / store.n_kv_heads();
  scores.assign(size_t(n_units), 0.0f);
  if (n_vec == 0) return;
  dots.resize(size_t(n_vec));
  std::vector<float> rounded, widened(store.index_dtype() == DType::F32 ? 0 : size_t(store.index_block_vectors() * hd));
  qbar = scoring_queries(store, qbar, n_heads * hd, rounded);
  for (int64_t h = 0; h < n_heads; ++h) {
    const float w = head_weights[size_t(h)];
    if (w == 0.0f) continue;
    // dots (n_vec) = index_g (n_vec, head_dim) . qbar_h (head_dim), one product per contiguous
    // run of the index (runs start at multiples of 1024 rows; the same dots as one product over
    // a contiguous index, bit for bit: test_unit_scoring_op).
    for (int64_t v0 = 0; v0 < n_vec;) {
      const int64_t rows = store.contiguous_vectors(v0);
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(rows), int(hd), 1.0f,
                  index_rows_f32(store, h / group, v0, rows, widened.data()), int(hd), qbar + h * hd, 1, 0.0f,
                  dots.data() + v0, 1);
      v0 += rows;
    }
#pragma omp parallel for schedule(static) if (n_units > 4096)
    for (int64_t u = 0; u < n_units; ++u) {
      const StoredUnit& s = units[size_t(u)];
      float best = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < s.n_vectors; ++k) best = std::max(best, dots[size_t(s.first_vector + k)]);
      scores[size_t(u)] += w * best;
    }
  }
}

void score_units_per_query(const ContextStore& store, const float* q, int64_t n,
                           const std::vector<float>& head_weights, std::vector<float>& scores,
                           std::vector<float>& dots, std::vector<float>& best) {
  constexpr int64_t kVectorTile = 1024;  // bounds the (n, tile) score scratch per thread
  // The tiles are those of one contiguous matrix whatever the store's block size (sgemm's results
  // depend on how the columns are tiled, so cutting tiles at odd block boundaries would change
  // scores in the last bits).
  static_assert(ContextStore::kIndexBlockMultiple % kVectorTile == 0, "index blocks would split scoring tiles");
  const std::vector<StoredUnit>& units = store.units();
  const int64_t n_units = int64_t(units.size());
  const int64_t n_vec = store.n_vectors();
  const int64_t hd = store.head_dim();
  const int64_t n_heads = int64_t(head_weights.size());
  const int64_t q_row = n_heads * hd;
  const int64_t group = n_heads / store.n_kv_heads();
  scores.assign(size_t(n_units), 0.0f);
  if (n_vec == 0) return;
  best.resize(size_t(n_vec));
  const int64_t n_tiles = (n_vec + kVectorTile - 1) / kVectorTile;
  // Tiles of index vectors are independent: each thread scores its own tiles into its own
  // slice of `dots` (the scratch holds one (n, tile) block per thread).
  const int64_t n_threads = std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), n_tiles));
  dots.resize(size_t(n_threads * n * std::min(n_vec, kVectorTile)));
  // A BF16 index: each thread widens its tile into its own slice of `widened`.
  const bool bf16 = store.index_dtype() == DType::BF16;
  std::vector<float> rounded, widened(bf16 ? size_t(n_threads * kVectorTile * hd) : 0);
  q = scoring_queries(store, q, n * q_row, rounded);
  for (int64_t h = 0; h < n_heads; ++h) {
    const float w = head_weights[size_t(h)];
    if (w == 0.0f) continue;
#pragma omp parallel for schedule(dynamic) num_threads(int(n_threads)) if (n_threads > 1)
    for (int64_t tile = 0; tile < n_tiles; ++tile) {
      const int64_t v0 = tile * kVectorTile;
      const int64_t cols = std::min(kVectorTile, n_vec - v0);
      float* d = dots.data() + size_t(omp_get_thread_num()) * size_t(n * std::min(n_vec, kVectorTile));
      // d (n, cols) = q_h (n, head_dim) . index_g[v0 .. v0 + cols)^T: one contiguous run, as
      // the store's index blocks hold a multiple of the tile
      const float* vectors = index_rows_f32(store, h / group, v0, cols,
                                            bf16 ? widened.data() + size_t(omp_get_thread_num()) * kVectorTile * hd : nullptr);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(cols), int(hd), 1.0f, q + h * hd,
                  int(q_row), vectors, int(hd), 0.0f, d, int(cols));
      float* tile_best = best.data() + v0;
      std::fill(tile_best, tile_best + cols, -std::numeric_limits<float>::infinity());
      for (int64_t i = 0; i < n; ++i) {
        const float* row = d + i * cols;
        for (int64_t c = 0; c < cols; ++c) tile_best[c] = std::max(tile_best[c], row[c]);
      }
    }
#pragma omp parallel for schedule(static) if (n_units > 4096)
    for (int64_t u = 0; u < n_units; ++u) {
      const StoredUnit& s = units[size_t(u)];
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < s.n_vectors; ++k) m = std::max(m, best[size_t(s.first_vector + k)]);
      scores[size_t(u)] += w * m;
    }
  }
}

namespace {

// The order units are picked in: rank descending, then tie descending (if given), then the
// earlier unit first.
struct PickOrder {
  const std::vector<float>& rank;
  const std::vector<float>* tie;
  bool before(int64_t a, int64_t b) const {
    if (rank[size_t(a)] != rank[size_t(b)]) return rank[size_t(a)] > rank[size_t(b)];
    if (tie && (*tie)[size_t(a)] != (*tie)[size_t(b)]) return (*tie)[size_t(a)] > (*tie)[size_t(b)];
    return a < b;
  }
};

// Takes units from `next()` (candidates in pick order; -1 when none is left) while the budget
// has room for the shortest candidate; each unit that still fits is picked.
// taken: the tokens picked before (continuing a walk); returns the tokens picked in all.
template <class Next>
int64_t take_in_order(const std::vector<StoredUnit>& units, int64_t budget, int64_t shortest, Next next,
                      std::vector<int64_t>& picked, bool& exhausted, int64_t taken = 0) {
  exhausted = false;
  while (taken != budget && budget - taken >= shortest) {
    const int64_t u = next();
    if (u < 0) {
      exhausted = true;
      break;
    }
    const int64_t len = units[size_t(u)].length;
    if (taken + len > budget) continue;  // too long now; a shorter unit further down may fit
    picked.push_back(u);
    taken += len;
  }
  return taken;
}

// A value about `want` of the n values get(0 .. n-1) are at or above, estimated from an evenly
// strided sample with a margin (the caller checks what it gets): -inf if want >= n.
template <class Get>
float threshold_for(int64_t n, int64_t want, Get get, std::vector<float>& sample) {
  if (want >= n) return -std::numeric_limits<float>::infinity();
  const int64_t samples = std::min<int64_t>(n, 1024);
  sample.resize(size_t(samples));
  for (int64_t i = 0; i < samples; ++i) sample[size_t(i)] = get(i * n / samples);
  const int64_t k = std::min(samples - 1, 2 * want * samples / n + 8);
  std::nth_element(sample.begin(), sample.begin() + k, sample.end(), std::greater<float>());
  return sample[size_t(k)];
}

}  // namespace

int64_t select_by_budget(const std::vector<StoredUnit>& units, const std::vector<float>& rank,
                         const std::vector<float>* tie, const std::vector<uint8_t>* skip,
                         int64_t budget, std::vector<int64_t>& picked, std::vector<int64_t>& order,
                         const UnitSummary* all) {
  picked.clear();
  order.clear();
  const int64_t n_units = int64_t(std::min(units.size(), rank.size()));
  const auto candidate = [&](int64_t u) { return !skip || u >= int64_t(skip->size()) || !(*skip)[size_t(u)]; };
  int64_t shortest = std::numeric_limits<int64_t>::max();  // among the candidates
  int64_t n_candidates = 0, candidate_tokens = 0;
  if (all && !skip && all->count == n_units && n_units == int64_t(units.size())) {
    shortest = all->shortest;  // every unit is a candidate
    n_candidates = all->count;
    candidate_tokens = all->tokens;
  } else {
    for (int64_t u = 0; u < n_units; ++u) {
      if (candidate(u)) {
        ++n_candidates;
        shortest = std::min(shortest, units[size_t(u)].length);
        candidate_tokens += units[size_t(u)].length;
      }
    }
  }
  const PickOrder pick_order{rank, tie};
  bool exhausted = false;
  // While the units popped fit, the budget is full after about budget / (mean length) of them;
  // twice that, and more for skipped (too long) units, is asked of the prefix. (Not budget /
  // shortest: one unit of a token, as the last of a chunk can be, made that the whole store.)
  const int64_t mean_length = n_candidates == 0 ? 1 : std::max<int64_t>(1, candidate_tokens / n_candidates);
  const int64_t want = n_candidates == 0 ? 0 : 2 * (budget / mean_length) + 64;

  if (n_candidates > 8 * want + 1024) {
    // Many candidates (a layer's units at 128K+ tokens): rather than ordering all of them, take
    // a prefix of the pick order a few times longer than the walk needs, order it and walk it.
    // It is a prefix by construction (every unit ranking above its last one is in it), so the
    // walk is the full one's while it is inside the prefix; past it, see below. Prefix: the units ranking above a
    // threshold t, then, among those ranking exactly t (with voting, most units rank 0), the
    // ones whose tie is above t2, then, among those tying exactly t2, the earliest.
    std::vector<float> sample;
    const float t = threshold_for(n_units, want, [&](int64_t u) { return rank[size_t(u)]; }, sample);
    // One pass: the candidates ranking above t, and those ranking exactly t while few enough.
    std::vector<int64_t>& prefix = order;
    std::vector<int64_t> level;
    const int64_t level_cap = 4 * want + 256;
    int64_t n_level = 0;
    for (int64_t u = 0; u < n_units; ++u) {
      const float r = rank[size_t(u)];
      if (r < t || !candidate(u)) continue;
      if (r > t) {
        prefix.push_back(u);
      } else if (n_level++ < level_cap) {
        level.push_back(u);
      }
    }
    const int64_t still = std::max<int64_t>(0, want - int64_t(prefix.size())) + 64;  // wanted from the level
    if (n_level <= level_cap) {
      prefix.insert(prefix.end(), level.begin(), level.end());
    } else {
      // Too many tie at t (with voting, most units rank 0): of them, those whose tie is above
      // t2, then the earliest of those tying exactly t2 (without a tie, every one "ties" at 0).
      float t2 = 0.0f;
      if (tie) {
        sample.clear();  // the level's ties, sampled along the units
        const int64_t stride = std::max<int64_t>(1, n_units / 4096);
        for (int64_t u = 0; u < n_units; u += stride) {
          if (rank[size_t(u)] == t && candidate(u)) sample.push_back((*tie)[size_t(u)]);
        }
        const int64_t k = std::min(int64_t(sample.size()) - 1, 2 * still * int64_t(sample.size()) / n_level + 8);
        t2 = -std::numeric_limits<float>::infinity();
        if (k >= 0) {
          std::nth_element(sample.begin(), sample.begin() + k, sample.end(), std::greater<float>());
          t2 = sample[size_t(k)];
        }
      }
      int64_t at_t2 = 0;
      for (int64_t u = 0; u < n_units; ++u) {
        if (rank[size_t(u)] != t || !candidate(u)) continue;
        const float x = tie ? (*tie)[size_t(u)] : 0.0f;
        if (x > t2 || (x == t2 && at_t2++ < 2 * still)) prefix.push_back(u);
      }
    }
    // The prefix is put in order a page at a time (nth_element, then a sort of the page): the
    // walk usually ends within its first few hundred units, and sorting all of it was about
    // half of a select at 128K.
    const auto before = [&](int64_t a, int64_t b) { return pick_order.before(a, b); };
    const size_t page = size_t(std::max<int64_t>(64, budget / mean_length + 32));
    size_t next = 0, ordered = 0;  // prefix[0, ordered) is in pick order, ahead of the rest
    const auto next_in_prefix = [&]() -> int64_t {
      if (next == ordered) {
        if (ordered == prefix.size()) return -1;
        const size_t end = std::min(prefix.size(), ordered + page);
        if (end < prefix.size()) std::nth_element(prefix.begin() + ptrdiff_t(ordered), prefix.begin() + ptrdiff_t(end), prefix.end(), before);
        std::sort(prefix.begin() + ptrdiff_t(ordered), prefix.begin() + ptrdiff_t(end), before);
        ordered = end;
      }
      return prefix[next++];
    };
    int64_t taken = take_in_order(units, budget, shortest, next_in_prefix, picked, exhausted);
    if (exhausted && int64_t(prefix.size()) < n_candidates) {
      // The walk goes on past the prefix. Only units no longer than what is left of the budget
      // can still be taken (it only shrinks): those of the other candidates, in pick order. A
      // one-token unit (the last of a chunk) kept a walk going over every unit to fill the last
      // few tokens of the budget.
      const int64_t left = budget - taken;
      std::sort(prefix.begin(), prefix.end());  // by unit, to look members up
      std::vector<int64_t> rest;
      for (int64_t u = 0; u < n_units; ++u) {
        if (units[size_t(u)].length <= left && candidate(u) && !std::binary_search(prefix.begin(), prefix.end(), u)) {
          rest.push_back(u);
        }
      }
      std::sort(rest.begin(), rest.end(), [&](int64_t a, int64_t b) { return pick_order.before(a, b); });
      next = 0;
      taken = take_in_order(units, budget, shortest, [&] { return next < rest.size() ? rest[next++] : int64_t(-1); },
                            picked, exhausted, taken);
    }
    std::sort(picked.begin(), picked.end());
    return taken;
  }

  // A heap, not a sort: only the units popped until the budget is full (or nothing left is
  // short enough) get ordered. Its top is the unit ranking first.
  for (int64_t u = 0; u < n_units; ++u) {
    if (candidate(u)) order.push_back(u);
  }
  const auto ranks_after = [&](int64_t a, int64_t b) { return pick_order.before(b, a); };
  std::make_heap(order.begin(), order.end(), ranks_after);
  auto end = order.end();
  const int64_t taken = take_in_order(units, budget, shortest,
                                      [&] {
                                        if (end == order.begin()) return int64_t(-1);
                                        std::pop_heap(order.begin(), end, ranks_after);
                                        --end;
                                        return *end;
                                      },
                                      picked, exhausted);
  std::sort(picked.begin(), picked.end());
  return taken;
}

}  // namespace ltri
