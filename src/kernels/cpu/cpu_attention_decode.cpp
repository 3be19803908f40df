// Decode attention on the CPU: the n = 1 route of CpuBackend::attention (same contract, see
// cpu_attention.cpp), for one query per head.
//
// Decode is bound by reading K and V, so each key and value is read once: work items are
// (KV head, part of the visible keys); an item rotates its pre-RoPE keys in registers (no
// rotated copy of the past is written and read back, which at 8K tokens cost 4 MB of traffic
// per layer and token) and scores them against all `group` query heads sharing that KV head,
// then accumulates their values for the same heads. Each item leaves, per head, a partial
// softmax: its max m, sum l = sum e^(s - m) and unnormalised output o = sum e^(s - m) v. Parts
// merge exactly (flash-decoding): with M = max m_p, out = sum o_p e^(m_p - M) / sum l_p e^(m_p - M).
// Splitting keys as well as KV heads keeps every thread busy with few KV heads (GQA, MQA).
//
// Checked against the double-precision reference in tests/unit/kernels/test_cpu_ops.cpp (the
// n = 1 cases) and end to end by the HF parity test's greedy continuations.
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

// k_rot (t1 - t0, head_dim) = keys t in [t0, t1) rotated to first_position + t * stride. k:
// pre-RoPE keys of one KV head, row t at k + t * kv_row.
LTRI_VECTOR_CLONES void rotate_keys(const float* k, int64_t kv_row, int64_t head_dim, int64_t t0,
                                    int64_t t1, int64_t first_position, int64_t stride,
                                    const RopeTable& table, float* k_rot) {
  const int64_t half = head_dim / 2;
  for (int64_t t = t0; t < t1; ++t) {
    const float* kt = k + t * kv_row;
    float* rt = k_rot + (t - t0) * head_dim;
    const int64_t p = first_position + t * stride;
    const float* cos = table.cos(p);
    const float* sin = table.sin(p);
    for (int64_t i = 0; i < half; ++i) {
      const float a = kt[i], b = kt[i + half];
      rt[i] = a * cos[i] - b * sin[i];
      rt[i + half] = b * cos[i] + a * sin[i];
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

  // Enough parts for every thread to have two items, none shorter than 256 keys.
  const int threads = omp_get_max_threads();
  const int64_t want_parts = (2 * threads + a.n_kv_heads - 1) / a.n_kv_heads;
  const int64_t parts = std::max<int64_t>(1, std::min(want_parts, seen / 256));
  const int64_t n_items = a.n_kv_heads * parts;
  const int64_t part_len = (seen + parts - 1) / parts;
  scores_stride_ = group * part_len + kDecodeBlock * hd;  // (group, part) scores, rotated keys
  ensure_size(scores_, size_t(threads * scores_stride_));
  const int64_t partial_stride = group * (hd + 2);  // per head: o (head_dim), m, l
  ensure_size(decode_partials_, size_t(n_items * partial_stride));

#pragma omp parallel num_threads(threads) if (n_items > 1)
  {
    float* scores = scores_.data() + omp_get_thread_num() * scores_stride_;
    float* k_rot = scores + group * part_len;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < n_items; ++item) {
      const int64_t g = item / parts;
      const int64_t c0 = seen * (item % parts) / parts;
      const int64_t c1 = seen * (item % parts + 1) / parts;
      const int64_t len = c1 - c0;  // >= 1: parts <= seen
      // Scores of this item's columns [c0, c1), segment by segment, kDecodeBlock keys at a
      // time: rotated into k_rot (L1-sized), then (group, block) = q_group . k_rot^T.
      int64_t col = 0;
      for (size_t si = 0; si < plan.segments.size(); ++si) {
        const KvSegment& s = plan.segments[si];
        const int64_t lo = std::max(c0, col), hi = std::min(c1, col + visible_to(s, 0));
        const float* q = queries_.data() + segment_placement_[si] * a.q_row + g * group * hd;
        for (int64_t b0 = lo; b0 < hi; b0 += kDecodeBlock) {
          const int64_t b1 = std::min(hi, b0 + kDecodeBlock);
          rotate_keys(s.k + g * hd, a.kv_row, hd, b0 - col, b1 - col, s.first_position, s.position_stride,
                      table, k_rot);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(group), int(b1 - b0), int(hd), scale, q,
                      int(hd), k_rot, int(hd), 0.0f, scores + (b0 - c0), int(len));
        }
        col += visible_to(s, 0);
      }
      float* partial = decode_partials_.data() + item * partial_stride;
      for (int64_t j = 0; j < group; ++j) {
        float* row = scores + j * len;
        const float m = row_max(row, len, -std::numeric_limits<float>::infinity());
        partial[group * hd + 2 * j] = m;
        partial[group * hd + 2 * j + 1] = exp_shifted_sum(row, len, m);
      }
      std::fill(partial, partial + group * hd, 0.0f);
      col = 0;
      for (const KvSegment& s : plan.segments) {
        const int64_t lo = std::max(c0, col), hi = std::min(c1, col + visible_to(s, 0));
        if (lo < hi) {
          accumulate_values(s.v + g * hd, a.kv_row, hd, lo - col, hi - col, scores + (lo - c0), len,
                            group, partial);
        }
        col += visible_to(s, 0);
      }
    }
  }

  // Merge the parts of each head: out_h = sum_p o_p e^(m_p - M) / sum_p l_p e^(m_p - M).
  for (int64_t g = 0; g < a.n_kv_heads; ++g) {
    for (int64_t j = 0; j < group; ++j) {
      float* out_h = out + (g * group + j) * hd;
      float m_max = -std::numeric_limits<float>::infinity();
      for (int64_t p = 0; p < parts; ++p) {
        m_max = std::max(m_max, decode_partials_[size_t((g * parts + p) * partial_stride + group * hd + 2 * j)]);
      }
      std::fill(out_h, out_h + hd, 0.0f);
      float total = 0.0f;
      for (int64_t p = 0; p < parts; ++p) {
        const float* partial = decode_partials_.data() + (g * parts + p) * partial_stride;
        const float weight = std::exp(partial[group * hd + 2 * j] - m_max);
        total += weight * partial[group * hd + 2 * j + 1];
        for (int64_t d = 0; d < hd; ++d) out_h[d] += weight * partial[j * hd + d];
      }
      const float inv = 1.0f / total;
      for (int64_t d = 0; d < hd; ++d) out_h[d] *= inv;
    }
  }
}

}  // namespace ltri
