// Attention for one query token (decode, n == 1) on the GPU: the contract of launch_attention
// (cuda_attention.cu, CpuBackend::attention): out = softmax(q k^T / sqrt(d)) v under one
// softmax across every segment of the plan, pre-RoPE keys rotated at load time to the positions
// the plan gives them, the query to query_first_position or to a segment's fixed
// query_position, GQA.
//
// Why a kernel of its own: a decode step has only `group` query rows per KV head, and the
// general kernel, built around a block of rows sharing key tiles in shared memory, spent ~60 us
// a layer over the ~6K keys of the 8B ltri decode (init + retrieved + window), about 5x the time
// to read them once. Here nothing goes through shared memory until the end:
// - one block of 4 warps per (KV head g, part of the keys); the parts are the flash-decoding
//   splits, combined by launch_attention_merge (cuda_attention_merge.cu);
// - a warp takes kSteps keys at a time; its 32 lanes split the head dimension so that lane l
//   holds the rotation pairs (d, d + D/2) for d in [l P, l P + P), P = D / 64: keys, values, cos
//   and sin are read as whole coalesced rows and a key's RoPE stays inside one lane;
// - every query head of g's group (G at most) is scored against those keys from registers: each
//   lane's partial dot products are summed over the warp with shuffles;
// - online softmax per head in log2 units (scores pre-multiplied by log2 e, exp2), one rescale
//   per step of keys; the block's 4 warps are combined in shared memory at the end.
// Checked against CpuBackend::attention in tests/kernels/test_cuda_attention.cpp (decode cases).
#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxGroup = 8;  // query heads per KV head this kernel takes

// Keys a warp takes per step: fewer with more heads, so that the scores (kSteps x G) and the
// loaded rows stay in registers. On the H200, 8B ltri decode at 16K (6.3K visible keys, G = 4):
// 4 keys a step 46.9 us per attention op against 54.6 us with 8 (LTRI_PROFILE=gpu; 2 keys 45.0).
template <int G>
__host__ __device__ constexpr int steps_of() {
  return G <= 4 ? 4 : 2;
}

// Keys any query may see in a segment: a causal one holds the query's own token and what
// follows it, of which only the first is visible to a single query (n == 1).
__device__ __host__ inline int64_t visible_in(const AttentionSegment& s) { return s.causal ? (s.n < 1 ? s.n : 1) : s.n; }

template <int D, int G>
__global__ void __launch_bounds__(kThreads) attention_decode_kernel(AttentionArgs a, int splits, float* partial_o,
                                                                    float* partial_ml) {
  constexpr int half = D / 2;
  constexpr int P = D / 64;  // rotation pairs per lane
  constexpr int K = steps_of<G>();
  const int group = int(a.n_heads / a.n_kv_heads);  // <= G
  const int64_t g = blockIdx.x;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int d0 = lane * P;
  const int64_t kv_row = a.n_kv_heads * D;
  const float scale = rsqrtf(float(D)) * 1.4426950408889634f;  // 1/sqrt(d), in log2 units

  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += visible_in(a.segments[s]);
  const int64_t part = (visible + splits - 1) / splits;
  const int64_t c0 = int64_t(blockIdx.y) * part;
  const int64_t c1 = c0 + part < visible ? c0 + part : visible;

  float m[G], l[G], o[G][2 * P];
  float qa[G][P], qb[G][P];  // the group's queries rotated to the current placement, scaled
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int e = 0; e < 2 * P; ++e) o[h][e] = 0.0f;
  }

  int64_t rotated_for = -1;  // the placement qa/qb hold (positions are >= 0)
  int64_t offset = 0;        // first column of the segment among the visible keys
  for (int si = 0; si < a.n_segments; ++si) {
    const AttentionSegment& seg = a.segments[si];
    const int64_t seg_len = visible_in(seg);
    const int64_t lo = c0 > offset ? c0 : offset;
    const int64_t hi = c1 < offset + seg_len ? c1 : offset + seg_len;
    if (lo < hi) {
      const int64_t placement = seg.query_position >= 0 ? seg.query_position : a.query_first_position;
      if (placement != rotated_for) {
        rotated_for = placement;
#pragma unroll
        for (int h = 0; h < G; ++h) {
          const float* qh = a.q + (g * group + (h < group ? h : 0)) * D;
#pragma unroll
          for (int p = 0; p < P; ++p) {
            const float c = a.cos[placement * half + d0 + p], s = a.sin[placement * half + d0 + p];
            const float x0 = qh[d0 + p], x1 = qh[d0 + p + half];
            qa[h][p] = h < group ? (x0 * c - x1 * s) * scale : 0.0f;
            qb[h][p] = h < group ? (x1 * c + x0 * s) * scale : 0.0f;
          }
        }
      }
      for (int64_t t0 = lo + int64_t(warp) * K; t0 < hi; t0 += int64_t(kWarps) * K) {
        // kSteps keys and values, the keys rotated to their positions; keys past hi read as 0.
        float ka[K][P], kb[K][P], va[K][P], vb[K][P];
#pragma unroll
        for (int u = 0; u < K; ++u) {
          const bool in = t0 + u < hi;
          const int64_t t = in ? t0 + u - offset : t0 - offset;  // key index in the segment
          const int64_t pos = seg.first_position + t * seg.position_stride;
          const float* kr = seg.k + t * kv_row + g * D;
          const float* vr = seg.v + t * kv_row + g * D;
#pragma unroll
          for (int p = 0; p < P; ++p) {
            const float c = a.cos[pos * half + d0 + p], s = a.sin[pos * half + d0 + p];
            const float k0 = kr[d0 + p], k1 = kr[d0 + p + half];
            ka[u][p] = in ? k0 * c - k1 * s : 0.0f;
            kb[u][p] = in ? k1 * c + k0 * s : 0.0f;
            va[u][p] = in ? vr[d0 + p] : 0.0f;
            vb[u][p] = in ? vr[d0 + p + half] : 0.0f;
          }
        }
        // Scores (log2 units): this lane's part of each dot product, then summed over the warp.
        float s[K][G];
#pragma unroll
        for (int u = 0; u < K; ++u) {
#pragma unroll
          for (int h = 0; h < G; ++h) {
            float acc = 0.0f;
#pragma unroll
            for (int p = 0; p < P; ++p) acc += qa[h][p] * ka[u][p] + qb[h][p] * kb[u][p];
            s[u][h] = acc;
          }
        }
#pragma unroll
        for (int width = 16; width > 0; width >>= 1) {
#pragma unroll
          for (int u = 0; u < K; ++u) {
#pragma unroll
            for (int h = 0; h < G; ++h) s[u][h] += __shfl_xor_sync(0xffffffffu, s[u][h], width);
          }
        }
        // Online softmax per head over this step's keys: one rescale, then p v accumulated.
#pragma unroll
        for (int h = 0; h < G; ++h) {
          float step_max = -INFINITY;
#pragma unroll
          for (int u = 0; u < K; ++u) step_max = t0 + u < hi ? fmaxf(step_max, s[u][h]) : step_max;
          const float m_new = fmaxf(m[h], step_max);  // finite: the step holds at least key t0
          const float alpha = exp2f(m[h] - m_new);    // 0 while m is still -inf
          l[h] *= alpha;
#pragma unroll
          for (int e = 0; e < 2 * P; ++e) o[h][e] *= alpha;
#pragma unroll
          for (int u = 0; u < K; ++u) {
            const float pr = t0 + u < hi ? exp2f(s[u][h] - m_new) : 0.0f;
            l[h] += pr;
#pragma unroll
            for (int p = 0; p < P; ++p) {
              o[h][p] += pr * va[u][p];
              o[h][P + p] += pr * vb[u][p];
            }
          }
          m[h] = m_new;
        }
      }
    }
    offset += seg_len;
  }

  // The block's warps combined: each warp's (m, l) and output per head, then one thread per
  // (head, element) weighs them by 2^(m_w - M).
  __shared__ float s_m[kWarps][G], s_l[kWarps][G];
  __shared__ float s_o[kWarps][G][D];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (lane == 0) {
      s_m[warp][h] = m[h];
      s_l[warp][h] = l[h];
    }
#pragma unroll
    for (int p = 0; p < P; ++p) {
      s_o[warp][h][d0 + p] = o[h][p];
      s_o[warp][h][d0 + p + half] = o[h][P + p];
    }
  }
  __syncthreads();
  for (int idx = int(threadIdx.x); idx < group * D; idx += kThreads) {
    const int h = idx / D, d = idx % D;
    float big = -INFINITY;
    for (int w = 0; w < kWarps; ++w) big = fmaxf(big, s_m[w][h]);
    float sum_l = 0.0f, sum_o = 0.0f;
    if (big != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float weight = s_m[w][h] == -INFINITY ? 0.0f : exp2f(s_m[w][h] - big);
        sum_l += weight * s_l[w][h];
        sum_o += weight * s_o[w][h][d];
      }
    }
    const int64_t head = g * group + h;  // row of out (1, n_heads, head_dim)
    if (splits == 1) {
      a.out[head * D + d] = sum_l > 0.0f ? sum_o / sum_l : 0.0f;
    } else {
      const int64_t scratch_row = int64_t(blockIdx.y) * a.n_heads + head;
      partial_o[scratch_row * D + d] = sum_o;
      if (d == 0) {
        partial_ml[2 * scratch_row] = big;
        partial_ml[2 * scratch_row + 1] = sum_l;
      }
    }
  }
}

template <int D, int G>
void launch_variant(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  const dim3 grid(unsigned(a.n_kv_heads), unsigned(splits));
  float* partial_o = splits > 1 ? scratch : nullptr;                          // (splits, n_heads, D)
  float* partial_ml = splits > 1 ? scratch + splits * a.n_heads * D : nullptr;  // (splits, n_heads, 2)
  attention_decode_kernel<D, G><<<grid, kThreads, 0, stream>>>(a, splits, partial_o, partial_ml);
  LTRI_CUDA_CHECK_LAUNCH("attention_decode");
  if (splits > 1) launch_attention_merge(partial_o, partial_ml, splits, a.n_heads, D, true, a.out, stream);
}

template <int D>
void launch_for_head_dim(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  const int64_t group = a.n_heads / a.n_kv_heads;
  if (group <= 1) return launch_variant<D, 1>(a, splits, scratch, stream);
  if (group <= 2) return launch_variant<D, 2>(a, splits, scratch, stream);
  if (group <= 4) return launch_variant<D, 4>(a, splits, scratch, stream);
  return launch_variant<D, kMaxGroup>(a, splits, scratch, stream);
}

}  // namespace

bool attention_decode_supports(const AttentionArgs& a) {
  return a.n == 1 && (a.head_dim == 64 || a.head_dim == 128) && a.n_kv_heads > 0 &&
         a.n_heads % a.n_kv_heads == 0 && a.n_heads / a.n_kv_heads <= kMaxGroup;
}

int attention_decode_splits(const AttentionArgs& a, int sm_count) {
  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += visible_in(a.segments[s]);
  // About eight blocks (32 warps) per SM to hide the latency of reading K and V, in parts of
  // at least 128 keys (each warp a few steps) so that the blocks' fixed costs and the merge stay
  // small against the reading.
  const int64_t want = (8 * int64_t(sm_count) + a.n_kv_heads - 1) / std::max<int64_t>(1, a.n_kv_heads);
  const int64_t most = std::max<int64_t>(1, visible / 128);
  return int(std::clamp<int64_t>(std::min(want, most), 1, kMaxAttentionSplits));
}

size_t attention_decode_scratch_floats(const AttentionArgs& a, int splits) {
  if (splits <= 1) return 0;
  return size_t(splits) * size_t(a.n_heads) * size_t(a.head_dim + 2);
}

void launch_attention_decode(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  if (!attention_decode_supports(a)) fail("attention_decode: a call it does not take (n ", a.n, ", head_dim ", a.head_dim, ")");
  if (a.head_dim == 64) {
    launch_for_head_dim<64>(a, splits, scratch, stream);
  } else {
    launch_for_head_dim<128>(a, splits, scratch, stream);
  }
}

}  // namespace ltri::cuda
