// Decode attention on the CPU: the n = 1 route of CpuBackend::attention (same contract, see
// cpu_attention.cpp), for one query per head.
//
// Decode is bound by reading K and V (2 x visible x n_kv_heads x head_dim x 4 B per layer and
// token), so each key and value is read once. Work items are parts of the visible keys; an
// item rotates its pre-RoPE keys in blocks of kDecodeBlock into L1-resident scratch (no rotated
// copy of the past goes through memory: at 8K tokens that copy was 4 MB written and read back
// per layer and token), scores each block against every query head, and accumulates the values
// for every head. Each part leaves, per head, a partial softmax: its max m, sum
// l = sum e^(s - m) and unnormalised output o = sum e^(s - m) v; parts merge exactly
// (flash-decoding): with M = max m_p, out = sum o_p e^(m_p - M) / sum l_p e^(m_p - M).
// Splitting the keys, not the heads, keeps every thread busy whatever the number of KV heads.
// Measured ~0.6 ms per layer and token at 8K keys (demo shape, one Zen 4 core) vs 2.0-2.3 ms
// before.
//
// Checked against the double-precision reference in tests/unit/kernels/test_cpu_ops.cpp (the
// n = 1 cases, some split into several parts) and end to end by tests/e2e.
#include <cblas.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/attention_helpers.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/fast_exp.hpp"

namespace ltri {

namespace {

constexpr int64_t kDecodeBlock = 64;  // keys rotated at a time

// k_rot (t1 - t0, kv_row) = keys t in [t0, t1), every KV head, rotated to first_position + t *
// stride. k: pre-RoPE keys, row t at k + t * kv_row. All heads of a key share its cos/sin row.
LTRI_VECTOR_CLONES void rotate_keys(const float* k, int64_t kv_row, int64_t head_dim, int64_t t0,
                                    int64_t t1, int64_t first_position, int64_t stride,
                                    const RopeTable& table, float* k_rot) {
  const int64_t half = head_dim / 2;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t p = first_position + t * stride;
    const float* cos = table.cos(p);
    const float* sin = table.sin(p);
    for (int64_t h0 = 0; h0 < kv_row; h0 += head_dim) {
      const float* kt = k + t * kv_row + h0;
      float* rt = k_rot + (t - t0) * kv_row + h0;
      for (int64_t i = 0; i < half; ++i) {
        const float a = kt[i], b = kt[i + half];
        rt[i] = a * cos[i] - b * sin[i];
        rt[i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
}

// o[j * head_dim + d] += sum over t in [t0, t1) of w[j * ld + (t - t0)] * v_t[d]; v: values of
// one KV head, row t at v + t * kv_row; o: (group, head_dim).
LTRI_VECTOR_CLONES void accumulate_values(const float* v, int64_t kv_row, int64_t head_dim,
                                          int64_t t0, int64_t t1, const float* w, int64_t ld,
                                          int64_t group, float* o) {
  // Four values per pass over o: o lives in L1, and its load-add-store per pass, not the
  // multiply-adds, is what bounds this loop.
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) {
    const float* v0 = v + t * kv_row;
    const float* v1 = v0 + kv_row;
    const float* v2 = v1 + kv_row;
    const float* v3 = v2 + kv_row;
    for (int64_t j = 0; j < group; ++j) {
      const float* wj = w + j * ld + (t - t0);
      const float w0 = wj[0], w1 = wj[1], w2 = wj[2], w3 = wj[3];
      float* oj = o + j * head_dim;
#pragma omp simd
      for (int64_t d = 0; d < head_dim; ++d) oj[d] += (w0 * v0[d] + w1 * v1[d]) + (w2 * v2[d] + w3 * v3[d]);
    }
  }
  for (; t < t1; ++t) {
    const float* vt = v + t * kv_row;
    for (int64_t j = 0; j < group; ++j) {
      const float wj = w[j * ld + (t - t0)];
      float* oj = o + j * head_dim;
#pragma omp simd
      for (int64_t d = 0; d < head_dim; ++d) oj[d] += wj * vt[d];
    }
  }
}

}  // namespace

void CpuBackend::attend_decode(const AttentionShape& a, const AttentionPlan& plan,
                               const RopeTable& table, float* out) {
  const int64_t hd = a.head_dim;
  const int64_t group = a.group;
  const float scale = 1.0f / std::sqrt(float(hd));
  // Keys the one query sees, segment after segment (a causal segment shows it its first key).
  int64_t seen = 0;
  for (const KvSegment& s : plan.segments) seen += visible_to(s, 0);

  // Parts of the keys: two per thread (dynamic scheduling evens out uneven progress), none
  // shorter than 256 keys.
  const int threads = omp_get_max_threads();
  const int64_t want_parts = threads == 1 ? 1 : 2 * threads;
  const int64_t parts = std::max<int64_t>(1, std::min(want_parts, seen / 256));
  const int64_t part_len = (seen + parts - 1) / parts;
  const int64_t n_heads = a.n_kv_heads * group;
  scores_stride_ = n_heads * part_len + kDecodeBlock * a.kv_row;  // (n_heads, part) scores, rotated keys
  ensure_size(scores_, size_t(threads * scores_stride_));
  const int64_t partial_stride = n_heads * (hd + 2);  // o (n_heads, head_dim), then (m, l) per head
  ensure_size(decode_partials_, size_t(parts * partial_stride));

#pragma omp parallel num_threads(threads) if (parts > 1)
  {
    float* scores = scores_.data() + omp_get_thread_num() * scores_stride_;
    float* k_rot = scores + n_heads * part_len;
#pragma omp for schedule(dynamic, 1)
    for (int64_t part = 0; part < parts; ++part) {
      const int64_t c0 = seen * part / parts;
      const int64_t c1 = seen * (part + 1) / parts;
      const int64_t len = c1 - c0;  // >= 1: parts <= seen
      // Scores of this part's columns [c0, c1), segment by segment, kDecodeBlock keys at a time:
      // rotated into k_rot (L1-sized), then per KV head g (group, block) = q_g . k_rot_g^T.
      int64_t col = 0;
      for (size_t si = 0; si < plan.segments.size(); ++si) {
        const KvSegment& s = plan.segments[si];
        const int64_t lo = std::max(c0, col), hi = std::min(c1, col + visible_to(s, 0));
        const float* q = queries_.data() + segment_placement_[si] * a.q_row;  // (n_heads, head_dim)
        for (int64_t b0 = lo; b0 < hi; b0 += kDecodeBlock) {
          const int64_t b1 = std::min(hi, b0 + kDecodeBlock);
          rotate_keys(s.k, a.kv_row, hd, b0 - col, b1 - col, s.first_position, s.position_stride, table,
                      k_rot);
          for (int64_t g = 0; g < a.n_kv_heads; ++g) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(group), int(b1 - b0), int(hd), scale,
                        q + g * group * hd, int(hd), k_rot + g * hd, int(a.kv_row), 0.0f,
                        scores + g * group * len + (b0 - c0), int(len));
          }
        }
        col += visible_to(s, 0);
      }
      float* partial = decode_partials_.data() + part * partial_stride;
      float* max_sum = partial + n_heads * hd;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* row = scores + h * len;
        max_sum[2 * h] = row_max(row, len, -std::numeric_limits<float>::infinity());
        max_sum[2 * h + 1] = exp_shifted_sum(row, len, max_sum[2 * h]);
      }
      std::fill(partial, partial + n_heads * hd, 0.0f);
      col = 0;
      for (const KvSegment& s : plan.segments) {
        const int64_t lo = std::max(c0, col), hi = std::min(c1, col + visible_to(s, 0));
        for (int64_t g = 0; g < a.n_kv_heads && lo < hi; ++g) {
          accumulate_values(s.v + g * hd, a.kv_row, hd, lo - col, hi - col, scores + g * group * len + (lo - c0),
                            len, group, partial + g * group * hd);
        }
        col += visible_to(s, 0);
      }
    }
  }

  // Merge the parts of each head: out_h = sum_p o_p e^(m_p - M) / sum_p l_p e^(m_p - M).
  for (int64_t h = 0; h < n_heads; ++h) {
    float* out_h = out + h * hd;
    float m_max = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < parts; ++p) {
      m_max = std::max(m_max, decode_partials_[size_t(p * partial_stride + n_heads * hd + 2 * h)]);
    }
    std::fill(out_h, out_h + hd, 0.0f);
    float total = 0.0f;
    for (int64_t p = 0; p < parts; ++p) {
      const float* partial = decode_partials_.data() + p * partial_stride;
      const float weight = std::exp(partial[n_heads * hd + 2 * h] - m_max);
      total += weight * partial[n_heads * hd + 2 * h + 1];
      for (int64_t d = 0; d < hd; ++d) out_h[d] += weight * partial[h * hd + d];
    }
    const float inv = 1.0f / total;
    for (int64_t d = 0; d < hd; ++d) out_h[d] *= inv;
  }
}

}  // namespace ltri
