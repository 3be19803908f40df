// The attention band of a chunk on the GPU (Backend::attention_band; contract and host reference
// in ops/attention_band_host.hpp): scores of each query over the `width` keys up to its own
// token, the softmax over that band, per-key votes and the segmentation rows. Four kernels on
// the backend's stream, all reading the one workspace `probs` (n_heads, n, width):
//  1. band_scores: one block per (query tile of 32, head), 256 threads; the tile's queries and
//     32-key slices of the keys are rotated into shared memory (positions t - first_key, the
//     host's rotation formula, bit for bit), each thread takes one key and four queries.
//     ~2 x n_heads x n x (width + 31) x head_dim FLOPs: 1.1 GFLOP for a 512-token chunk of an
//     8B layer (32 heads, width 256, head_dim 128): expected ~0.1-0.2 ms on an H200 (shared-memory
//     bound; not yet measured);
//  2. band_softmax: one warp per (head, query row): exp(s - max) over the row's band, zeros
//     past it, 1 / sum (in double, as the host);
//  3. band_votes: one warp per (key, KV head): the softmax weights the key received, summed per
//     query head in double, then over the group's heads in head order;
//  4. band_seg: one warp per query row: one head's row or the mean of heads re-scaled to max 1.
// 2-4 read the (n_heads, n, width) workspace once or twice: 16 MB for the chunk above, a few
// microseconds of bandwidth. Only votes and seg rows leave the GPU.
// Checked against the CPU op (AttentionBandHost) in tests/kernels/test_cuda_band.cpp.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_band_kernels.hpp"
#include "kernels/cuda/cuda_check.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileQueries = 32;
constexpr int kTileKeys = 32;
constexpr int kRowsPerThread = kTileQueries / kWarps;  // 4: warp w takes rows w, w + 8, ...
constexpr int kBatch = 8;  // elements a thread loads before it stores them (band_scores' copies)
constexpr int64_t kBlocksEnough = 256;  // band_scores blocks that keep an H100/H200 busy

// Element e of a head vector x (head_dim D, pre-RoPE) rotated to `position`, rotate_half
// convention. Explicit roundings (no fused multiply-add), as the host's rope_rotate_host.
template <int D>
__device__ float rotated(const float* x, int e, int64_t position, const float* cos, const float* sin) {
  constexpr int half = D / 2;
  if (e < half) {
    const float a = x[e], b = x[e + half];
    const float c = cos[position * half + e], s = sin[position * half + e];
    return __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  }
  const int i = e - half;
  const float a = x[i], b = x[e];
  const float c = cos[position * half + i], s = sin[position * half + i];
  return __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

// probs[h][i][d] = scale * <q_i, k_{t-d}> for every cell of the band (t = first_query + i,
// d <= min(width - 1, t - first_key)); other cells are left for band_softmax to zero.
template <int D>
__global__ void __launch_bounds__(kThreads) band_scores_kernel(BandArgs a, float scale, float* probs) {
  __shared__ float qs[kTileQueries][D];
  __shared__ float ks[kTileKeys][D + 1];  // +1: lanes read different keys, conflict-free
  const int64_t h = blockIdx.y;
  const int64_t g = h / (a.n_heads / a.n_kv_heads);
  const int64_t i0 = int64_t(blockIdx.x) * kTileQueries;
  const int64_t rows = min(int64_t(kTileQueries), a.n - i0);
  const int64_t t_first = a.first_query + i0, t_last = t_first + rows - 1;
  if (t_last < a.first_key) return;  // sink rows only: no band
  const int64_t k_lo = max(a.first_key, t_first - a.width + 1);
  const int64_t k_hi = t_last;
  const int64_t q_row = a.n_heads * D, kv_row = a.n_kv_heads * D;

  // Loads are batched (kBatch elements read, then stored) in both copies below: one element per
  // loop step waited one memory round trip per step, which made a decode step's band (one query,
  // a few key slices per block) latency-bound at ~0.1 ms.
  static_assert((kTileQueries * D) % (kBatch * kThreads) == 0 && (kTileKeys * D) % (kBatch * kThreads) == 0,
                "whole batches");
#pragma unroll 1
  for (int idx0 = threadIdx.x; idx0 < kTileQueries * D; idx0 += kBatch * kThreads) {
    float val[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int idx = idx0 + u * kThreads, r = idx / D, e = idx % D;
      const int64_t i = i0 + r, t = a.first_query + i;
      val[u] = (i < a.n && t >= a.first_key) ? rotated<D>(a.q + i * q_row + h * D, e, t - a.first_key, a.cos, a.sin)
                                             : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int idx = idx0 + u * kThreads;
      qs[idx / D][idx % D] = val[u];
    }
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  // grid.z > 1 (decode, short chunks) deals the key slices out to that many blocks.
  for (int64_t k0 = k_lo + int64_t(blockIdx.z) * kTileKeys; k0 <= k_hi; k0 += int64_t(gridDim.z) * kTileKeys) {
    __syncthreads();  // the previous slice is no longer read (and, first time, qs is complete)
#pragma unroll 1
    for (int idx0 = threadIdx.x; idx0 < kTileKeys * D; idx0 += kBatch * kThreads) {
      float val[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int idx = idx0 + u * kThreads, c = idx / D, e = idx % D;
        const int64_t j = k0 + c;
        val[u] = j <= k_hi ? rotated<D>(a.keys + (j - a.first_key) * kv_row + g * D, e, j - a.first_key, a.cos, a.sin)
                           : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int idx = idx0 + u * kThreads;
        ks[idx / D][idx % D] = val[u];
      }
    }
    __syncthreads();
    float acc[kRowsPerThread] = {};
#pragma unroll 8
    for (int e = 0; e < D; ++e) {
      const float k = ks[lane][e];
#pragma unroll
      for (int m = 0; m < kRowsPerThread; ++m) acc[m] = fmaf(qs[warp + m * kWarps][e], k, acc[m]);
    }
    const int64_t j = k0 + lane;
    if (j > k_hi) continue;
#pragma unroll
    for (int m = 0; m < kRowsPerThread; ++m) {
      const int64_t i = i0 + warp + m * kWarps, t = a.first_query + i;
      const int64_t d = t - j;
      if (i < a.n && t >= a.first_key && d >= 0 && d < a.width) probs[(h * a.n + i) * a.width + d] = scale * acc[m];
    }
  }
}

__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ double warp_sum(double v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Row (h, i) of probs: exp(s - max) over the band, 0 past it; inv_sum[h][i] = 1 / sum (0 for a
// sink row, which has no band).
__global__ void band_softmax_kernel(BandArgs a, float* probs, float* inv_sum) {
  const int lane = threadIdx.x % 32;
  const int64_t total = a.n_heads * a.n;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; row < total; row += int64_t(gridDim.x) * kWarps) {
    const int64_t i = row % a.n;
    const int64_t d_last = min(a.width - 1, a.first_query + i - a.first_key);
    float* p = probs + row * a.width;
    float mx = -INFINITY;
    for (int64_t d = lane; d <= d_last; d += 32) mx = fmaxf(mx, p[d]);
    mx = warp_max(mx);
    double sum = 0.0;
    for (int64_t d = lane; d < a.width; d += 32) {
      const float e = d <= d_last ? expf(p[d] - mx) : 0.0f;  // A_ij / max_j A_ij
      p[d] = e;
      sum += e;
    }
    sum = warp_sum(sum);
    if (lane == 0) inv_sum[row] = d_last < 0 ? 0.0f : float(1.0 / sum);
  }
}

// votes[jj][g] = sum over g's query heads h (in order) of float(sum over the queries t that see
// key j = first_key + jj of probs[h][t][t - j] * inv_sum[h][t]).
__global__ void band_votes_kernel(BandArgs a, const float* probs, const float* inv_sum, float* votes) {
  const int lane = threadIdx.x % 32;
  const int64_t n_keys = a.first_query + a.n - a.first_key;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t total = n_keys * a.n_kv_heads;
  for (int64_t item = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; item < total;
       item += int64_t(gridDim.x) * kWarps) {
    const int64_t jj = item / a.n_kv_heads, g = item % a.n_kv_heads;
    const int64_t j = a.first_key + jj;
    const int64_t t_lo = max(j, a.first_query);
    const int64_t t_hi = min(j + a.width - 1, a.first_query + a.n - 1);
    float vote = 0.0f;
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      double acc = 0.0;
      for (int64_t t = t_lo + lane; t <= t_hi; t += 32) {
        const int64_t i = t - a.first_query;
        acc += double(probs[(h * a.n + i) * a.width + (t - j)]) * inv_sum[h * a.n + i];
      }
      vote += float(warp_sum(acc));
    }
    if (lane == 0) votes[item] = vote;
  }
}

// seg row i: head seg_head's probs row (max 1 already), or the mean over heads divided by its max.
__global__ void band_seg_kernel(BandArgs a, const float* probs, float* seg) {
  const int lane = threadIdx.x % 32;
  const bool mean = a.seg_head < 0;
  const float weight = mean ? 1.0f / float(a.n_heads) : 1.0f;
  const int64_t h_first = mean ? 0 : a.seg_head, h_end = mean ? a.n_heads : a.seg_head + 1;
  for (int64_t i = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; i < a.n; i += int64_t(gridDim.x) * kWarps) {
    float* out = seg + i * a.width;
    float mx = 0.0f;
    for (int64_t d = lane; d < a.width; d += 32) {
      float v = 0.0f;
      for (int64_t h = h_first; h < h_end; ++h) v = __fadd_rn(v, __fmul_rn(weight, probs[(h * a.n + i) * a.width + d]));
      out[d] = v;
      mx = fmaxf(mx, v);
    }
    if (!mean) continue;
    mx = warp_max(mx);  // a mean of rows with max 1 has max <= 1: scale it back to 1
    if (mx > 0.0f) {
      for (int64_t d = lane; d < a.width; d += 32) out[d] = out[d] / mx;
    }
  }
}

unsigned warp_grid(int64_t items) {
  return unsigned(std::max<int64_t>(1, std::min<int64_t>((items + kWarps - 1) / kWarps, 8192)));
}

template <int D>
void launch_scores(const BandArgs& a, float* probs, cudaStream_t stream) {
  const int64_t query_tiles = (a.n + kTileQueries - 1) / kTileQueries;
  // A decode step has one query tile: 32 blocks (one per head) walking ~9 key slices each in turn
  // left the GPU idle and the step latency-bound. Few blocks split the slices across grid.z;
  // chunks have blocks enough, and each extra z would reload the query tile.
  const int64_t blocks = query_tiles * a.n_heads;
  const int64_t slices = (std::min<int64_t>(a.width, a.first_query + a.n - a.first_key) + kTileQueries + kTileKeys - 1) / kTileKeys;
  const int64_t z = blocks >= kBlocksEnough ? 1 : std::clamp<int64_t>((kBlocksEnough + blocks - 1) / blocks, 1, slices);
  const dim3 grid(unsigned(query_tiles), unsigned(a.n_heads), unsigned(z));
  const float scale = 1.0f / std::sqrt(float(D));
  band_scores_kernel<D><<<grid, kThreads, 0, stream>>>(a, scale, probs);
  LTRI_CUDA_CHECK_LAUNCH("band_scores_kernel");
}

int64_t n_keys_of(const BandArgs& a) { return a.first_query + a.n - a.first_key; }

}  // namespace

bool band_supports_head_dim(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

size_t band_output_floats(const BandArgs& a) {
  return size_t(n_keys_of(a) * a.n_kv_heads) + (a.want_seg ? size_t(a.n * a.width) : 0);
}

size_t band_scratch_floats(const BandArgs& a) {
  return band_output_floats(a) + size_t(a.n_heads * a.n * a.width) + size_t(a.n_heads * a.n);
}

void launch_attention_band(const BandArgs& a, float* scratch, cudaStream_t stream) {
  if (a.n <= 0 || n_keys_of(a) <= 0) return;
  float* votes = scratch;
  float* seg = votes + n_keys_of(a) * a.n_kv_heads;
  float* probs = scratch + band_output_floats(a);
  float* inv_sum = probs + a.n_heads * a.n * a.width;
  if (a.head_dim == 64) {
    launch_scores<64>(a, probs, stream);
  } else if (a.head_dim == 128) {
    launch_scores<128>(a, probs, stream);
  } else {
    fail("attention_band: head_dim ", a.head_dim, " is not supported by the CUDA backend (64 or 128)");
  }
  band_softmax_kernel<<<warp_grid(a.n_heads * a.n), kThreads, 0, stream>>>(a, probs, inv_sum);
  LTRI_CUDA_CHECK_LAUNCH("band_softmax_kernel");
  band_votes_kernel<<<warp_grid(n_keys_of(a) * a.n_kv_heads), kThreads, 0, stream>>>(a, probs, inv_sum, votes);
  LTRI_CUDA_CHECK_LAUNCH("band_votes_kernel");
  if (a.want_seg) {
    band_seg_kernel<<<warp_grid(a.n), kThreads, 0, stream>>>(a, probs, seg);
    LTRI_CUDA_CHECK_LAUNCH("band_seg_kernel");
  }
}

}  // namespace ltri::cuda
