// Attention on the CPU over a policy's visible segments: softmax(q k^T / sqrt(d)) v under one
// softmax across every segment, with GQA (n_heads / n_kv_heads query heads share a KV head).
//
// Keys are stored before RoPE; each call rotates the visible keys to the positions the plan
// gives them, gathers them with the values into contiguous scratch, then per query head runs
// GEMMs (scores = q k^T per segment, out = p v) over query tiles, so no more than
// (tile x visible) scores exist at a time. Queries are rotated once per distinct query
// placement: the chunk's own positions (query_first_position + i) and each fixed
// KvSegment::query_position; a segment's score columns use the queries of its placement.
// Checked against a double-precision direct sum in tests/unit/kernels/test_cpu_ops.cpp and,
// end to end, against transformers' logits.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace ltri {

namespace {
constexpr int64_t kQueryTile = 256;

// -1: the chunk's own positions; >= 0: every query pinned to that position.
int64_t placement_of(const KvSegment& s) { return s.query_position >= 0 ? s.query_position : -1; }

template <class T>
void ensure_size(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(std::max(n, v.size() * 2));
}
}  // namespace

void CpuBackend::attention(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads,
                           int64_t head_dim, const AttentionPlan& plan, const RopeTable& table,
                           float* out) {
  const int64_t kv_row = n_kv_heads * head_dim;
  const int64_t q_row = n_heads * head_dim;
  const int64_t group = n_heads / n_kv_heads;
  int64_t visible = 0;
  int64_t max_position = plan.query_first_position + n - 1;
  for (const KvSegment& s : plan.segments) {
    visible += s.n;
    if (s.n > 0) max_position = std::max(max_position, s.first_position + (s.n - 1) * s.position_stride);
  }
  if (visible == 0) fail("attention: no visible keys");
  if (max_position >= table.size()) fail("attention: position ", max_position, " beyond the RoPE table (", table.size(), ")");

  ensure_size(keys_, size_t(visible * kv_row));
  ensure_size(values_, size_t(visible * kv_row));
  // Distinct query placements: -1 (query i at query_first_position + i) or one fixed position.
  query_positions_.clear();
  for (const KvSegment& s : plan.segments) {
    if (s.query_position >= table.size()) fail("attention: query position ", s.query_position, " beyond the RoPE table (", table.size(), ")");
    if (std::find(query_positions_.begin(), query_positions_.end(), placement_of(s)) == query_positions_.end()) {
      query_positions_.push_back(placement_of(s));
    }
  }
  ensure_size(queries_, size_t(int64_t(query_positions_.size()) * n * q_row));
  ensure_size(scores_, size_t(std::min(n, kQueryTile) * visible));

  // Gather and rotate keys (and gather values) into contiguous (visible, kv_heads, head_dim).
  int64_t offset = 0;
  for (const KvSegment& s : plan.segments) {
#pragma omp parallel for schedule(static) if (s.n > 16)
    for (int64_t t = 0; t < s.n; ++t) {
      const int64_t p = s.first_position + t * s.position_stride;
      float* k_dst = keys_.data() + (offset + t) * kv_row;
      std::copy(s.k + t * kv_row, s.k + (t + 1) * kv_row, k_dst);
      rope_rotate_row(k_dst, n_kv_heads, head_dim, table.cos(p), table.sin(p));
      std::copy(s.v + t * kv_row, s.v + (t + 1) * kv_row, values_.data() + (offset + t) * kv_row);
    }
    offset += s.n;
  }
  // queries_ (placements, n, n_heads, head_dim): one rotated copy of the chunk per placement.
  for (size_t m = 0; m < query_positions_.size(); ++m) {
    float* dst = queries_.data() + int64_t(m) * n * q_row;
    std::copy(q, q + n * q_row, dst);
    if (query_positions_[m] < 0) {
      rope(dst, n, n_heads, plan.query_first_position, table);
    } else {
      const int64_t p = query_positions_[m];
      for (int64_t i = 0; i < n; ++i) rope_rotate_row(dst + i * q_row, n_heads, head_dim, table.cos(p), table.sin(p));
    }
  }

  const float scale = 1.0f / std::sqrt(float(head_dim));
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t g = h / group;
    for (int64_t i0 = 0; i0 < n; i0 += kQueryTile) {
      const int64_t rows = std::min(kQueryTile, n - i0);
      float* s = scores_.data();
      // scores (rows, visible) = scale * q_h (rows, head_dim) . k_g^T, one segment's columns
      // at a time with the queries of that segment's placement.
      int64_t col = 0;
      for (const KvSegment& seg : plan.segments) {
        if (seg.n == 0) continue;
        const int64_t m = std::find(query_positions_.begin(), query_positions_.end(), placement_of(seg)) - query_positions_.begin();
        const float* q_tile = queries_.data() + (m * n + i0) * q_row + h * head_dim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(seg.n), int(head_dim),
                    scale, q_tile, int(q_row), keys_.data() + col * kv_row + g * head_dim, int(kv_row),
                    0.0f, s + col, int(visible));
        col += seg.n;
      }
      // Causal mask inside causal segments, then a stable softmax per row.
#pragma omp parallel for schedule(static) if (rows > 4)
      for (int64_t r = 0; r < rows; ++r) {
        float* row = s + r * visible;
        const int64_t i = i0 + r;
        int64_t col = 0;
        for (const KvSegment& seg : plan.segments) {
          if (seg.causal) {
            for (int64_t t = i + 1; t < seg.n; ++t) row[col + t] = -std::numeric_limits<float>::infinity();
          }
          col += seg.n;
        }
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t c = 0; c < visible; ++c) mx = std::max(mx, row[c]);
        double sum = 0.0;
        for (int64_t c = 0; c < visible; ++c) {
          const float e = std::exp(row[c] - mx);
          row[c] = e;
          sum += e;
        }
        const float inv = float(1.0 / sum);
        for (int64_t c = 0; c < visible; ++c) row[c] *= inv;
      }
      // out_h (rows, head_dim) = p (rows, visible) . v_g (visible, head_dim)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(head_dim), int(visible),
                  1.0f, s, int(visible), values_.data() + g * head_dim, int(kv_row), 0.0f,
                  out + i0 * q_row + h * head_dim, int(q_row));
    }
  }
}

}  // namespace ltri
