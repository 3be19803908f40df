// Attention on the CPU over a policy's visible segments: softmax(q k^T / sqrt(d)) v under one
// softmax across every segment, with GQA (n_heads / n_kv_heads query heads share a KV head).
//
// Keys are stored before RoPE. Each call
//   1. rotates the visible keys once into scratch, (visible, n_kv_heads, head_dim), at the
//      positions the plan gives them (values are read in place, never copied);
//   2. rotates the chunk's queries once per distinct query placement: the chunk's own positions
//      (query_first_position + i) and each fixed KvSegment::query_position;
//   3. splits the work into (query head, tile of kQueryTile queries) items run by OpenMP
//      threads, each with its own (tile x visible) score scratch (BLAS is single-threaded):
//      scores = q k^T one segment at a time with the queries of that segment's placement (a
//      causal segment only up to the tile's last query: nothing above the diagonal is
//      multiplied or exponentiated), a row softmax with fast_exp, then out = p v per segment.
// n = 1 (decode) takes its own route after step 2 (cpu_attention_decode.cpp).
//
// Work: 4 x head_dim flops per (query, head, visible key), in OpenBLAS GEMMs of (64 x keys x
// head_dim) and (64 x head_dim x keys): ~60 GFLOP/s per Zen 4 core measured, about 60% of its
// AVX-512 peak; the softmax, at ~0.3 ns per score, is most of the rest.
//
// Checked against a double-precision direct sum in tests/unit/kernels/test_cpu_ops.cpp and,
// end to end, against transformers' logits (tests/e2e).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "kernels/cpu/attention_helpers.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/fast_exp.hpp"

namespace ltri {

namespace {
constexpr int64_t kQueryTile = 64;

// -1: the chunk's own positions; >= 0: every query pinned to that position.
int64_t placement_of(const KvSegment& s) { return s.query_position >= 0 ? s.query_position : -1; }

}  // namespace

// One work item: query head h, queries [i0, i0 + rows). scores: (rows, visible) scratch of
// this thread; out rows of head h written (not accumulated).
void CpuBackend::attend_tile(int64_t h, int64_t i0, int64_t rows, const AttentionShape& a,
                             const AttentionPlan& plan, float* scores, float* out) const {
  const int64_t g = h / a.group;
  const int64_t hd = a.head_dim;
  const int64_t visible = a.visible;
  const float scale = 1.0f / std::sqrt(float(hd));

  // Score columns: segment after segment, [col, col + columns) each; a causal segment stops at
  // the tile's last query.
  int64_t col = 0;
  for (size_t si = 0; si < plan.segments.size(); ++si) {
    const KvSegment& seg = plan.segments[si];
    const int64_t columns = visible_to(seg, i0 + rows - 1);
    if (columns > 0) {
      const float* q_tile = queries_.data() + (segment_placement_[si] * a.n + i0) * a.q_row + h * hd;
      const float* k_seg = keys_.data() + col * a.kv_row + g * hd;  // (columns, head_dim), ld kv_row
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(columns), int(hd), scale,
                  q_tile, int(a.q_row), k_seg, int(a.kv_row), 0.0f, scores + col, int(visible));
    }
    col += seg.n;
  }

  // Softmax per row over the columns that query sees; columns a causal segment hides from it
  // (but the tile computed for later rows) become 0 so the p v products below ignore them.
  float* row_sum = scores + rows * visible;  // (rows), after the scores in this thread's scratch
  for (int64_t r = 0; r < rows; ++r) {
    float* row = scores + r * visible;
    const int64_t i = i0 + r;
    float mx = -std::numeric_limits<float>::infinity();
    col = 0;
    for (const KvSegment& seg : plan.segments) {
      mx = row_max(row + col, visible_to(seg, i), mx);
      col += seg.n;
    }
    float sum = 0.0f;
    col = 0;
    for (const KvSegment& seg : plan.segments) {
      const int64_t seen = visible_to(seg, i);
      sum += exp_shifted_sum(row + col, seen, mx);
      const int64_t computed = visible_to(seg, i0 + rows - 1);
      std::fill(row + col + seen, row + col + std::max(seen, computed), 0.0f);
      col += seg.n;
    }
    row_sum[r] = sum;
  }

  // out (rows, head_dim) = sum over segments p[:, segment columns] . v_segment, then / row sum.
  float* out_h = out + i0 * a.q_row + h * hd;
  bool first = true;
  col = 0;
  for (const KvSegment& seg : plan.segments) {
    const int64_t columns = visible_to(seg, i0 + rows - 1);
    if (columns > 0) {
      const float* v_seg = seg.v + g * hd;  // (columns, head_dim), ld kv_row
      const float beta = first ? 0.0f : 1.0f;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(hd), int(columns), 1.0f,
                  scores + col, int(visible), v_seg, int(a.kv_row), beta, out_h, int(a.q_row));
      first = false;
    }
    col += seg.n;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.0f / row_sum[r];
    float* o = out_h + r * a.q_row;
    for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
  }
}

void CpuBackend::attention(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads,
                           int64_t head_dim, const AttentionPlan& plan, const RopeTable& table,
                           float* out) {
  AttentionShape a;
  a.n = n;
  a.n_kv_heads = n_kv_heads;
  a.head_dim = head_dim;
  a.kv_row = n_kv_heads * head_dim;
  a.q_row = n_heads * head_dim;
  a.group = n_heads / n_kv_heads;
  int64_t max_position = plan.query_first_position + n - 1;
  for (const KvSegment& s : plan.segments) {
    a.visible += s.n;
    if (s.n > 0) max_position = std::max(max_position, s.first_position + (s.n - 1) * s.position_stride);
    max_position = std::max(max_position, s.query_position);
  }
  if (a.visible == 0) fail("attention: no visible keys");
  if (max_position >= table.size()) fail("attention: position ", max_position, " beyond the RoPE table (", table.size(), ")");

  // Distinct query placements, and which one each segment uses.
  query_positions_.clear();
  segment_placement_.clear();
  for (const KvSegment& s : plan.segments) {
    auto it = std::find(query_positions_.begin(), query_positions_.end(), placement_of(s));
    if (it == query_positions_.end()) it = query_positions_.insert(it, placement_of(s));
    segment_placement_.push_back(it - query_positions_.begin());
  }

  // queries_ (placements, n, n_heads, head_dim): one rotated copy of the chunk per placement.
  ensure_size(queries_, size_t(int64_t(query_positions_.size()) * n * a.q_row));
  for (size_t m = 0; m < query_positions_.size(); ++m) {
    float* dst = queries_.data() + int64_t(m) * n * a.q_row;
    std::copy(q, q + n * a.q_row, dst);
    if (query_positions_[m] < 0) {
      rope(dst, n, n_heads, plan.query_first_position, table);
    } else {
      const int64_t p = query_positions_[m];
      for (int64_t i = 0; i < n; ++i) rope_rotate_row(dst + i * a.q_row, n_heads, head_dim, table.cos(p), table.sin(p));
    }
  }

  if (n == 1) {
    attend_decode(a, plan, table, out);
    return;
  }

  const int threads = omp_get_max_threads();
  const int64_t tile = std::min(n, kQueryTile);
  scores_stride_ = tile * a.visible + tile;  // (tile, visible) scores, then (tile) row sums
  ensure_size(keys_, size_t(a.visible * a.kv_row));
  ensure_size(scores_, size_t(threads * scores_stride_));

  // keys_ (visible, n_kv_heads, head_dim): every segment's keys rotated to their positions.
  segment_offsets_.clear();
  int64_t offset = 0;
  for (const KvSegment& s : plan.segments) {
    segment_offsets_.push_back(offset);
    offset += s.n;
  }
  const int64_t n_segments = int64_t(plan.segments.size());
#pragma omp parallel for schedule(static) if (a.visible > 64)
  for (int64_t row = 0; row < a.visible; ++row) {
    int64_t si = n_segments - 1;
    while (segment_offsets_[size_t(si)] > row) --si;
    const KvSegment& s = plan.segments[size_t(si)];
    const int64_t t = row - segment_offsets_[size_t(si)];
    const int64_t p = s.first_position + t * s.position_stride;
    float* k_dst = keys_.data() + row * a.kv_row;
    std::copy(s.k + t * a.kv_row, s.k + (t + 1) * a.kv_row, k_dst);
    rope_rotate_row(k_dst, n_kv_heads, head_dim, table.cos(p), table.sin(p));
  }

  // (head, query tile) items, the last tiles first: under a causal segment they see the most
  // keys, so dynamic scheduling ends with the cheap ones and the threads finish together.
  const int64_t n_tiles = (n + kQueryTile - 1) / kQueryTile;
  const int64_t n_items = n_heads * n_tiles;
#pragma omp parallel num_threads(threads) if (n_items > 1)
  {
    float* scores = scores_.data() + omp_get_thread_num() * scores_stride_;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < n_items; ++item) {
      const int64_t tile_index = n_tiles - 1 - item / n_heads;
      const int64_t h = item % n_heads;
      const int64_t i0 = tile_index * kQueryTile;
      attend_tile(h, i0, std::min(kQueryTile, n - i0), a, plan, scores, out);
    }
  }
}

}  // namespace ltri
