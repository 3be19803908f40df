#include "ops/attention_band_host.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "kv/host_rope.hpp"
#include "ops/rope_table.hpp"

namespace ltri {

namespace {
constexpr int64_t kQueryTile = 64;
}

void check_attention_band_args(const AttentionBandArgs& a, const char* op) {
  if (a.n < 0) fail(op, ": n ", a.n, " is negative");
  if (a.n_heads <= 0 || a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0) {
    fail(op, ": n_heads ", a.n_heads, " is not a positive multiple of n_kv_heads ", a.n_kv_heads);
  }
  if (a.head_dim <= 0 || a.head_dim % 2 != 0) fail(op, ": head_dim ", a.head_dim, " is not a positive even number");
  if (a.width < 1) fail(op, ": width ", a.width, " must be at least 1");
  if (a.seg_head != kBandMeanOfHeads && (a.seg_head < 0 || a.seg_head >= a.n_heads)) {
    fail(op, ": seg_head ", a.seg_head, " is neither a head in [0, ", a.n_heads, ") nor the mean of heads");
  }
  if (a.first_key < 0 || a.first_query < 0) {
    fail(op, ": negative first_key ", a.first_key, " or first_query ", a.first_query);
  }
}

void AttentionBandHost::compute(const AttentionBandArgs& a, const RopeTable& rope, float* votes, float* seg) {
  check_attention_band_args(a, "attention_band");
  const int64_t n_heads = a.n_heads, n_kv_heads = a.n_kv_heads, head_dim = a.head_dim;
  const int64_t n = a.n, first_query = a.first_query, first_key = a.first_key;
  const int64_t q_row = n_heads * head_dim;
  const int64_t kv_row = n_kv_heads * head_dim;
  const int64_t group = n_heads / n_kv_heads;
  const int64_t w = a.width;
  const int64_t n_keys = a.n_keys();
  if (seg) std::fill(seg, seg + n * w, 0.0f);
  if (n_keys <= 0) return;  // only sinks so far: nothing local to attend to
  if (n_keys > rope.size()) fail("attention_band: ", n_keys, " key positions beyond the RoPE table (", rope.size(), ")");
  const float scale = 1.0f / std::sqrt(float(head_dim));

  // Scratch grows to its largest size once and is reused.
  const int n_threads = std::max(1, std::min(omp_get_max_threads(), int(n_heads)));
  const size_t tile_scores = size_t(kQueryTile * (kQueryTile + w));
  if (q_rot_.size() < size_t(n * q_row)) q_rot_.resize(size_t(n * q_row));
  if (k_rot_.size() < size_t(n_keys * kv_row)) k_rot_.resize(size_t(n_keys * kv_row));
  if (scores_.size() < size_t(n_threads) * tile_scores) scores_.resize(size_t(n_threads) * tile_scores);
  if (probs_.size() < size_t(n_heads * n * w)) probs_.resize(size_t(n_heads * n * w));
  if (inv_sum_.size() < size_t(n_heads * n)) inv_sum_.resize(size_t(n_heads * n));

  std::copy(a.keys, a.keys + n_keys * kv_row, k_rot_.begin());
  std::copy(a.q, a.q + n * q_row, q_rot_.begin());
  for (int64_t t = 0; t < n_keys; ++t) rope_rotate_host(k_rot_.data() + t * kv_row, n_kv_heads, head_dim, t, rope);
  // Rows of sink tokens (before first_key) have no local columns and are never used.
  for (int64_t i = std::max<int64_t>(0, first_key - first_query); i < n; ++i) {
    rope_rotate_host(q_rot_.data() + i * q_row, n_heads, head_dim, first_query + i - first_key, rope);
  }

  // Heads are independent: each thread fills whole heads of probs_ / inv_sum_.
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1)
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t g = h / group;
    float* s = scores_.data() + size_t(omp_get_thread_num()) * tile_scores;
    float* probs = probs_.data() + h * n * w;
    float* inv_sum = inv_sum_.data() + h * n;
    std::fill(probs, probs + n * w, 0.0f);
    std::fill(inv_sum, inv_sum + n, 0.0f);
    for (int64_t i0 = 0; i0 < n; i0 += kQueryTile) {
      const int64_t rows = std::min(kQueryTile, n - i0);
      const int64_t t_first = first_query + i0, t_last = t_first + rows - 1;
      if (t_last < first_key) continue;  // sink rows: no local columns
      const int64_t k_first = std::max(first_key, t_first - w + 1);
      const int64_t cols = t_last - k_first + 1;
      // s (rows, cols) = scale * q_h (rows, head_dim) . k_g (cols, head_dim)^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(cols), int(head_dim), scale,
                  q_rot_.data() + i0 * q_row + h * head_dim, int(q_row),
                  k_rot_.data() + (k_first - first_key) * kv_row + g * head_dim, int(kv_row), 0.0f, s,
                  int(cols));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t_first + r;
        const int64_t d_last = std::min(w - 1, t - first_key);
        if (d_last < 0) continue;
        const float* srow = s + r * cols;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t d = 0; d <= d_last; ++d) mx = std::max(mx, srow[t - d - k_first]);
        float* prow = probs + (i0 + r) * w;
        double sum = 0.0;
        for (int64_t d = 0; d <= d_last; ++d) {
          prow[d] = std::exp(srow[t - d - k_first] - mx);  // A_ij / max_j A_ij
          sum += prow[d];
        }
        inv_sum[i0 + r] = float(1.0 / sum);
      }
    }
  }

  // Votes, gathered per key: key j is seen by query rows t = j .. j + width - 1 at distance
  // t - j, with the softmax weight probs * inv_sum. Each key's row is written by one thread.
#pragma omp parallel for schedule(static) if (n_keys > 256)
  for (int64_t j = first_key; j < first_query + n; ++j) {
    const int64_t t_lo = std::max(j, first_query);
    const int64_t t_hi = std::min(j + w - 1, first_query + n - 1);
    float* vrow = votes + (j - first_key) * n_kv_heads;
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* probs = probs_.data() + h * n * w;
      const float* inv_sum = inv_sum_.data() + h * n;
      double acc = 0.0;
      for (int64_t t = t_lo; t <= t_hi; ++t) {
        const int64_t i = t - first_query;
        acc += double(probs[i * w + (t - j)]) * inv_sum[i];
      }
      vrow[h / group] += float(acc);
    }
  }

  if (!seg) return;
  // The segmentation map: rows scaled to max 1 (A_ij / max_j A_ij), one head's or the mean.
  const float seg_weight = a.seg_head == kBandMeanOfHeads ? 1.0f / float(n_heads) : 1.0f;
#pragma omp parallel for schedule(static) if (n > 64)
  for (int64_t i = 0; i < n; ++i) {
    float* grow = seg + i * w;
    for (int64_t h = 0; h < n_heads; ++h) {
      if (a.seg_head != kBandMeanOfHeads && a.seg_head != h) continue;
      const float* prow = probs_.data() + (h * n + i) * w;
      for (int64_t d = 0; d < w; ++d) grow[d] += seg_weight * prow[d];
    }
  }
  if (a.seg_head != kBandMeanOfHeads) return;
  for (int64_t i = 0; i < n; ++i) {  // a mean of rows with max 1 has max <= 1: scale it back to 1
    float* grow = seg + i * w;
    const float mx = *std::max_element(grow, grow + w);
    if (mx > 0.0f) for (int64_t d = 0; d < w; ++d) grow[d] /= mx;
  }
}

}  // namespace ltri
