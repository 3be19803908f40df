#include "analysis/attention_probe.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {

AttentionProbe::AttentionProbe(int64_t n_layers, int64_t n_heads, int64_t n_kv_heads,
                               int64_t head_dim, ProbeSettings settings)
    : n_layers_(n_layers),
      n_heads_(n_heads),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      settings_(std::move(settings)) {
  if (n_layers < 1 || n_heads < 1 || n_kv_heads < 1 || head_dim < 2 || n_heads % n_kv_heads != 0) {
    fail("attention probe: bad shape (", n_layers, " layers, ", n_heads, " heads, ", n_kv_heads,
         " kv heads, head_dim ", head_dim, ")");
  }
  const ProbeSettings& s = settings_;
  if (s.row_begin < 0 || s.row_end <= s.row_begin) {
    fail("attention probe: empty row window [", s.row_begin, ", ", s.row_end, ")");
  }
  if (!s.map_heads.empty()) {
    if (int64_t(s.map_heads.size()) != n_layers) {
      fail("attention probe: map_heads has ", s.map_heads.size(), " entries for ", n_layers, " layers");
    }
    if (s.row_end == std::numeric_limits<int64_t>::max()) fail("attention probe: a map needs a finite row window");
    if (s.col_begin < 0 || s.col_end <= s.col_begin) {
      fail("attention probe: empty column window [", s.col_begin, ", ", s.col_end, ")");
    }
    for (int h : s.map_heads) {
      if (h < kNoMap || h >= n_heads) fail("attention probe: map head ", h, " out of range [0, ", n_heads, ")");
    }
    map_rows_ = s.row_end - s.row_begin;
    map_cols_ = s.col_end - s.col_begin;
  }
  clear();
}

void AttentionProbe::clear() {
  rows_seen_.assign(size_t(n_layers_), 0);
  top1_.clear();
  maps_.assign(size_t(n_layers_), {});
  row_max_.assign(size_t(n_layers_), {});
  for (size_t l = 0; l < settings_.map_heads.size(); ++l) {
    if (settings_.map_heads[l] == kNoMap) continue;
    maps_[l].assign(size_t(map_rows_ * map_cols_), 0.0f);
    row_max_[l].assign(size_t(map_rows_), 0.0f);
  }
}

int64_t AttentionProbe::top1(int64_t row, int64_t layer, int64_t head) const {
  if (layer < 0 || layer >= n_layers_ || head < 0 || head >= n_heads_) return -1;
  const int64_t r = row - settings_.row_begin;
  if (r < 0 || (r + 1) * n_layers_ * n_heads_ > int64_t(top1_.size())) return -1;
  return top1_[size_t((r * n_layers_ + layer) * n_heads_ + head)];
}

void AttentionProbe::on_attention(int64_t layer, const float* q, int64_t n, int64_t n_heads,
                                  const AttentionPlan& plan, const RopeTable& rope) {
  if (layer < 0 || layer >= n_layers_) fail("attention probe: layer ", layer, " out of range");
  if (n_heads != n_heads_) fail("attention probe: ", n_heads, " query heads, expected ", n_heads_);
  const ProbeSettings& s = settings_;
  const int64_t first_row = rows_seen_[size_t(layer)];
  rows_seen_[size_t(layer)] += n;
  const int map_head = s.map_heads.empty() ? kNoMap : s.map_heads[size_t(layer)];
  if (!s.keep_top1 && map_head == kNoMap) return;
  // Chunk rows [i_begin, i_end) fall inside the window.
  const int64_t i_begin = std::max<int64_t>(0, s.row_begin - first_row);
  const int64_t i_end = std::min<int64_t>(n, s.row_end - first_row);
  if (i_begin >= i_end) return;

  const int64_t hd = head_dim_;
  const int64_t kv_row = n_kv_heads_ * hd;
  const int64_t q_row = n_heads_ * hd;
  const int64_t group = n_heads_ / n_kv_heads_;
  int64_t visible = 0;
  for (const KvSegment& seg : plan.segments) visible += seg.n;
  if (visible == 0) fail("attention probe: the plan has no visible keys");

  // Keys rotated to their plan positions with the op's own rotation, so the probe sees the
  // same f32 keys the attention op multiplies.
  if (keys_.size() < size_t(visible * kv_row)) keys_.resize(size_t(visible * kv_row));
  int64_t offset = 0;
  for (const KvSegment& seg : plan.segments) {
    for (int64_t t = 0; t < seg.n; ++t) {
      const int64_t p = seg.first_position + t * seg.position_stride;
      if (p < 0 || p >= rope.size()) fail("attention probe: key position ", p, " beyond the RoPE table (", rope.size(), ")");
      float* dst = keys_.data() + (offset + t) * kv_row;
      std::copy(seg.k + t * kv_row, seg.k + (t + 1) * kv_row, dst);
      rope_rotate_row(dst, n_kv_heads_, hd, rope.cos(p), rope.sin(p));
    }
    offset += seg.n;
  }

  // Query positions are checked here: nothing may throw inside the parallel region.
  for (const KvSegment& seg : plan.segments) {
    const int64_t lo = seg.query_position >= 0 ? seg.query_position : plan.query_first_position + i_begin;
    const int64_t hi = seg.query_position >= 0 ? seg.query_position : plan.query_first_position + i_end - 1;
    if (lo < 0 || hi >= rope.size()) fail("attention probe: query position ", hi, " beyond the RoPE table (", rope.size(), ")");
  }

  if (s.keep_top1) {
    const size_t need = size_t((first_row + i_end - s.row_begin) * n_layers_ * n_heads_);
    if (top1_.size() < need) top1_.resize(need, -1);
  }
  float* map = map_head == kNoMap ? nullptr : maps_[size_t(layer)].data();
  float* row_max = map_head == kNoMap ? nullptr : row_max_[size_t(layer)].data();
  const double scale = 1.0 / std::sqrt(double(hd));

#pragma omp parallel
  {
    std::vector<float> q_rot(static_cast<size_t>(q_row));            // (n_heads, head_dim)
    std::vector<double> probs(static_cast<size_t>(n_heads_ * visible));  // (n_heads, visible)
    std::vector<char> seen(static_cast<size_t>(visible));            // causal mask of this row
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = i_begin; i < i_end; ++i) {
      // Scores per segment: the query is rotated to its true position, or to the segment's
      // fixed query_position.
      int64_t col = 0;
      for (const KvSegment& seg : plan.segments) {
        const int64_t qp = seg.query_position >= 0 ? seg.query_position : plan.query_first_position + i;
        std::copy(q + i * q_row, q + (i + 1) * q_row, q_rot.begin());
        rope_rotate_row(q_rot.data(), n_heads_, hd, rope.cos(qp), rope.sin(qp));
        for (int64_t t = 0; t < seg.n; ++t) {
          const bool ok = !seg.causal || t <= i;
          seen[size_t(col + t)] = ok;
          if (!ok) continue;
          const float* k = keys_.data() + (col + t) * kv_row;
          for (int64_t h = 0; h < n_heads_; ++h) {
            const float* qh = q_rot.data() + h * hd;
            const float* kh = k + (h / group) * hd;
            double dot = 0.0;
            for (int64_t d = 0; d < hd; ++d) dot += double(qh[d]) * double(kh[d]);
            probs[size_t(h * visible + col + t)] = dot * scale;
          }
        }
        col += seg.n;
      }
      // Stable softmax per head over the visible columns; masked columns get 0.
      for (int64_t h = 0; h < n_heads_; ++h) {
        double* p = probs.data() + h * visible;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t c = 0; c < visible; ++c) {
          if (seen[size_t(c)]) mx = std::max(mx, p[c]);
        }
        double sum = 0.0;
        for (int64_t c = 0; c < visible; ++c) {
          p[c] = seen[size_t(c)] ? std::exp(p[c] - mx) : 0.0;
          sum += p[c];
        }
        const double inv = 1.0 / sum;
        int64_t best = -1;
        for (int64_t c = 0; c < visible; ++c) {
          p[c] *= inv;
          if (seen[size_t(c)] && (best < 0 || p[c] > p[best])) best = c;
        }
        if (s.keep_top1) top1_[size_t(((first_row + i - s.row_begin) * n_layers_ + layer) * n_heads_ + h)] = best;
      }
      if (map) {
        const int64_t r = first_row + i - s.row_begin;
        // Columns that set the row's scale: every non-sink column, or the non-sink columns of
        // the band ending at the diagonal (column first_row + i under full attention).
        const int64_t scale_lo = s.scale_band > 0
                                     ? std::max<int64_t>(std::max<int64_t>(0, s.row_max_from), first_row + i - s.scale_band + 1)
                                     : std::max<int64_t>(0, s.row_max_from);
        const int64_t scale_hi = s.scale_band > 0 ? std::min<int64_t>(visible, first_row + i + 1) : visible;
        if (s.scale_band > 0) {  // each head's row scaled to max 1 over the band first
          for (int64_t h = 0; h < n_heads_; ++h) {
            double* p = probs.data() + h * visible;
            double mx = 0.0;
            for (int64_t c = scale_lo; c < scale_hi; ++c) mx = std::max(mx, p[c]);
            if (mx == 0.0) {
              for (int64_t c = 0; c < visible; ++c) mx = std::max(mx, p[c]);
            }
            for (int64_t c = 0; c < visible; ++c) p[c] /= mx;
          }
        }
        // The map's row: one head, or the mean of all heads.
        auto cell = [&](int64_t c) {
          if (map_head >= 0) return probs[size_t(map_head * visible + c)];
          double m = 0.0;
          for (int64_t h = 0; h < n_heads_; ++h) m += probs[size_t(h * visible + c)];
          return m / double(n_heads_);
        };
        double mx = 0.0;
        for (int64_t c = scale_lo; c < scale_hi; ++c) mx = std::max(mx, cell(c));
        if (mx == 0.0) {  // a row that sees only sinks is scaled by its own maximum
          for (int64_t c = 0; c < visible; ++c) mx = std::max(mx, cell(c));
        }
        row_max[r] = float(mx);
        const int64_t c_end = std::min(s.col_end, visible);
        for (int64_t c = s.col_begin; c < c_end; ++c) map[r * map_cols_ + (c - s.col_begin)] = float(cell(c));
      }
    }
  }
}

}  // namespace ltri
