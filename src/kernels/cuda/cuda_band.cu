// The attention band of a chunk on the GPU (Backend::attention_band; contract and host reference
// in ops/attention_band_host.hpp): scores of each query over the `width` keys up to its own
// token, the softmax over that band, per-key votes and the segmentation rows. Five kernels on
// the caller's stream, reading one workspace (band_scratch_floats):
//  1. band_rotate: the chunk's queries and the band's keys rotated once (positions t - first_key,
//     the host's rotation formula, bit for bit) into the workspace, four pairs a thread; sink rows
//     become zeros.
//  2. band_scores: one block per (64-query tile, head), 256 threads, each thread a 4 x 4 register
//     tile (queries ty + 16 r, keys tx + 16 c) of a 64-key slice; the tile's queries sit in
//     shared memory whole, the keys come in 32-element pieces of head_dim. Every score is one
//     sequential fma chain over head_dim, as before. ~2 x n_heads x n x (width + 63) x head_dim
//     FLOPs: 5.4 GFLOP for a 2048-token chunk of an 8B layer (32 heads, width 256, head_dim 128).
//     Before (one key and four queries a thread, keys rotated again by every block that read
//     them) this was the band's largest part, shared-memory bound.
//  3. band_softmax: one warp per (head, query row): exp(s - max) over the row's band, zeros
//     past it, 1 / sum (in double, as the host);
//  4. band_votes: one block per (32 keys, KV head), a warp per (query head, run of the queries
//     that see those keys): each lane sums, in double, the softmax weights its key received
//     (one coalesced row segment per query); each head's runs are added in order, then the
//     heads' float sums in head order;
//  5. band_seg: one warp per query row: one head's row or the mean of heads re-scaled to max 1.
// 3-5 read the (n_heads, n, width) probabilities once or twice: 67 MB for the chunk above, tens
// of microseconds of bandwidth. Only votes and seg rows leave the GPU.
// Checked against the CPU op (AttentionBandHost) in tests/kernels/test_cuda_band.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_band_kernels.hpp"
#include "kernels/cuda/cuda_check.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileQueries = 64;  // band_scores: query rows of a block
constexpr int kTileKeys = 64;     // band_scores: keys of a slice
constexpr int kPiece = 32;        // band_scores: head_dim elements of a key slice in shared memory at once
constexpr int kPad = 4;           // floats after each shared row: 16-byte reads of rows 4 banks apart
constexpr int kVoteKeys = 32;     // band_votes: keys of a block (one per lane)
constexpr int kVoteWarps = 16;    // band_votes: warps of a block, each a (query head, run of queries) at a time
constexpr int kVoteParts = 4;     // band_votes: most runs the queries that see a block's keys are cut into
constexpr int kVoteBatch = 8;     // band_votes: cells a lane loads before it adds them
constexpr int kSegBatch = 8;      // band_seg: heads' cells a lane loads before it adds them
constexpr int64_t kBlocksEnough = 256;  // band_scores blocks that keep an H100/H200 busy

// RoPE of four pairs (lo_k, hi_k) = (x[e + k], x[e + D/2 + k]) of a pre-RoPE head vector,
// rotate_half convention: lo c - hi s and hi c + lo s. Explicit roundings (no fused
// multiply-add), as the host's rope_rotate_host.
__device__ float4 rotated_low(float4 lo, float4 hi, float4 c, float4 s) {
  return make_float4(__fsub_rn(__fmul_rn(lo.x, c.x), __fmul_rn(hi.x, s.x)),
                     __fsub_rn(__fmul_rn(lo.y, c.y), __fmul_rn(hi.y, s.y)),
                     __fsub_rn(__fmul_rn(lo.z, c.z), __fmul_rn(hi.z, s.z)),
                     __fsub_rn(__fmul_rn(lo.w, c.w), __fmul_rn(hi.w, s.w)));
}

__device__ float4 rotated_high(float4 lo, float4 hi, float4 c, float4 s) {
  return make_float4(__fadd_rn(__fmul_rn(hi.x, c.x), __fmul_rn(lo.x, s.x)),
                     __fadd_rn(__fmul_rn(hi.y, c.y), __fmul_rn(lo.y, s.y)),
                     __fadd_rn(__fmul_rn(hi.z, c.z), __fmul_rn(lo.z, s.z)),
                     __fadd_rn(__fmul_rn(hi.w, c.w), __fmul_rn(lo.w, s.w)));
}

__host__ __device__ int64_t n_keys_of(const BandArgs& a) { return a.first_query + a.n - a.first_key; }

// Where the workspace's parts start (floats), each on a 64-float boundary (16-byte reads):
// [output: votes | seg] [probs (n_heads, n, width)] [inv_sum (n_heads, n)] [rotated q (n,
// n_heads, D)] [rotated keys (n_keys, n_kv_heads, D)].
struct BandLayout {
  size_t probs, inv_sum, q, keys, total;
};

size_t round64(size_t x) { return (x + 63) / 64 * 64; }

BandLayout band_layout(const BandArgs& a) {
  BandLayout l;
  l.probs = round64(band_output_floats(a));
  l.inv_sum = round64(l.probs + size_t(a.n_heads * a.n * a.width));
  l.q = round64(l.inv_sum + size_t(a.n_heads * a.n));
  l.keys = round64(l.q + size_t(a.n * a.n_heads * a.head_dim));
  l.total = l.keys + size_t(n_keys_of(a) * a.n_kv_heads * a.head_dim);
  return l;
}

// qr = the chunk's queries rotated to t - first_key (zeros for sink rows t < first_key, which
// have no band); kr = the keys rotated to j - first_key. A thread rotates four pairs (e, e + D/2)
// of one head vector: 16-byte loads of both halves and of the table's rows, where a thread per
// element loaded each input twice and divided 64-bit indices per element (68 us for a
// 2048-query chunk at the 8B shape on the H200, on the compute stream).
template <int D>
__global__ void band_rotate_kernel(BandArgs a, float* qr, float* kr) {
  constexpr int half = D / 2, quads = half / 4;  // threads per head vector
  const int64_t q_rows = a.n * a.n_heads;
  const int64_t total = (q_rows + n_keys_of(a) * a.n_kv_heads) * quads;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = idx / quads;  // a head vector: i * n_heads + h, then jj * n_kv_heads + g
    const int e = int(idx % quads) * 4;
    const float* x;
    float* out;
    int64_t position;
    if (row < q_rows) {
      const int64_t t = a.first_query + row / a.n_heads;
      out = qr + row * D;
      if (t < a.first_key) {
        const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        *reinterpret_cast<float4*>(out + e) = zero;
        *reinterpret_cast<float4*>(out + e + half) = zero;
        continue;
      }
      x = a.q + row * D;
      position = t - a.first_key;
    } else {
      const int64_t key_row = row - q_rows;
      x = a.keys + key_row * D;
      out = kr + key_row * D;
      position = key_row / a.n_kv_heads;
    }
    const float4 lo = *reinterpret_cast<const float4*>(x + e);
    const float4 hi = *reinterpret_cast<const float4*>(x + e + half);
    const float4 c = *reinterpret_cast<const float4*>(a.cos + position * half + e);
    const float4 s = *reinterpret_cast<const float4*>(a.sin + position * half + e);
    *reinterpret_cast<float4*>(out + e) = rotated_low(lo, hi, c, s);
    *reinterpret_cast<float4*>(out + e + half) = rotated_high(lo, hi, c, s);
  }
}

// probs[h][i][d] = scale * <qr_i, kr_{t-d}> for every cell of the band (t = first_query + i,
// d <= min(width - 1, t - first_key)); other cells are left for band_softmax to zero.
template <int D>
__global__ void __launch_bounds__(kThreads) band_scores_kernel(BandArgs a, const float* qr, const float* kr,
                                                                float scale, float* probs) {
  __shared__ __align__(16) float qs[kTileQueries][D + kPad];
  __shared__ __align__(16) float ks[kTileKeys][kPiece + kPad];
  const int64_t h = blockIdx.y;
  const int64_t g = h / (a.n_heads / a.n_kv_heads);
  const int64_t i0 = int64_t(blockIdx.x) * kTileQueries;
  const int64_t rows = min(int64_t(kTileQueries), a.n - i0);
  const int64_t t_first = a.first_query + i0, t_last = t_first + rows - 1;
  if (t_last < a.first_key) return;  // sink rows only: no band
  const int64_t k_lo = max(a.first_key, t_first - a.width + 1);
  const int64_t k_hi = t_last;
  const int64_t q_row = a.n_heads * D, kv_row = a.n_kv_heads * D;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  // The query tile, whole (rows past the chunk are zeros; their scores are never stored).
  for (int idx = threadIdx.x; idx < kTileQueries * D / 4; idx += kThreads) {
    const int r = idx / (D / 4), e4 = idx % (D / 4);
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < rows) v = *reinterpret_cast<const float4*>(qr + (i0 + r) * q_row + h * D + e4 * 4);
    *reinterpret_cast<float4*>(&qs[r][e4 * 4]) = v;
  }
  // grid.z > 1 (decode, short chunks) deals the key slices out to that many blocks.
  for (int64_t k0 = k_lo + int64_t(blockIdx.z) * kTileKeys; k0 <= k_hi; k0 += int64_t(gridDim.z) * kTileKeys) {
    float acc[4][4] = {};
    for (int e0 = 0; e0 < D; e0 += kPiece) {
      __syncthreads();  // the previous piece is no longer read (and, first time, qs is complete)
      for (int idx = threadIdx.x; idx < kTileKeys * kPiece / 4; idx += kThreads) {
        const int c = idx / (kPiece / 4), e4 = idx % (kPiece / 4);
        const int64_t j = k0 + c;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (j <= k_hi) v = *reinterpret_cast<const float4*>(kr + (j - a.first_key) * kv_row + g * D + e0 + e4 * 4);
        *reinterpret_cast<float4*>(&ks[c][e4 * 4]) = v;
      }
      __syncthreads();
#pragma unroll
      for (int e = 0; e < kPiece; e += 4) {
        float4 q[4], k[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) q[r] = *reinterpret_cast<const float4*>(&qs[ty + 16 * r][e0 + e]);
#pragma unroll
        for (int c = 0; c < 4; ++c) k[c] = *reinterpret_cast<const float4*>(&ks[tx + 16 * c][e]);
        // Element by element in head_dim order: each score is the one fma chain over e.
#pragma unroll
        for (int r = 0; r < 4; ++r) {
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            acc[r][c] = fmaf(q[r].x, k[c].x, acc[r][c]);
            acc[r][c] = fmaf(q[r].y, k[c].y, acc[r][c]);
            acc[r][c] = fmaf(q[r].z, k[c].z, acc[r][c]);
            acc[r][c] = fmaf(q[r].w, k[c].w, acc[r][c]);
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t i = i0 + ty + 16 * r, t = a.first_query + i;
      if (i >= a.n || t < a.first_key) continue;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t j = k0 + tx + 16 * c, d = t - j;
        if (j <= k_hi && d >= 0 && d < a.width) probs[(h * a.n + i) * a.width + d] = scale * acc[r][c];
      }
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
#pragma unroll 8
    for (int64_t d = lane; d <= d_last; d += 32) mx = fmaxf(mx, p[d]);
    mx = warp_max(mx);
    double sum = 0.0;
#pragma unroll 8
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
// key j = first_key + jj of probs[h][t][t - j] * inv_sum[h][t]). Lane l of a block takes key
// j0 + l: for one query t the lanes read probs[h][t][t - j0 - 31 .. t - j0], one contiguous
// segment (a warp per key walking the diagonal read a cache line per cell). The queries that see
// the block's keys are cut into `parts` runs (vote_parts), and each warp sums one (head, run) in double:
// a warp per head walking all ~width + 31 queries was latency-bound, with few warps a block
// (124 us for a 2048-query chunk at the 8B shape on the H200). The runs' sums are then added in
// order, so the votes stay the same from call to call.
__global__ void __launch_bounds__(kVoteWarps * 32) band_votes_kernel(BandArgs a, const float* probs,
                                                                     const float* inv_sum, int parts, float* votes) {
  extern __shared__ double run_sums[];  // (group, parts, kVoteKeys)
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t n_keys = n_keys_of(a);
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t g = blockIdx.y;
  const int64_t j0 = a.first_key + int64_t(blockIdx.x) * kVoteKeys;
  const int64_t j = j0 + lane;
  const bool key = j - a.first_key < n_keys;
  // Queries that see any key of the block: t in [j0, j0 + 31 + width - 1], within the chunk.
  const int64_t t_lo = max(j0, a.first_query);
  const int64_t t_hi = min(j0 + kVoteKeys - 1 + a.width - 1, a.first_query + a.n - 1);
  const int64_t run = (max(t_hi - t_lo + 1, int64_t(0)) + parts - 1) / parts;
  for (int64_t item = warp; item < group * parts; item += kVoteWarps) {
    const int64_t hh = item / parts, part = item % parts;
    const int64_t h = g * group + hh;
    const float* head_probs = probs + h * a.n * a.width;
    const float* head_inv = inv_sum + h * a.n;
    const int64_t first = t_lo + part * run, last = min(first + run - 1, t_hi);
    double acc = 0.0;
    // Loads in batches of kVoteBatch before their sums: a load per step waited a memory round
    // trip per step. Cells outside the lane's band read a clamped cell (in bounds) and add 0.
    for (int64_t t0 = first; t0 <= last; t0 += kVoteBatch) {
      float p[kVoteBatch], w[kVoteBatch];
#pragma unroll
      for (int u = 0; u < kVoteBatch; ++u) {
        const int64_t t = min(t0 + u, last), i = t - a.first_query;
        const int64_t d = t - j;
        const bool seen = key && t0 + u <= last && d >= 0 && d < a.width;
        p[u] = head_probs[i * a.width + min(max(d, int64_t(0)), a.width - 1)];
        w[u] = seen ? head_inv[i] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kVoteBatch; ++u) {
        if (w[u] != 0.0f) acc += double(p[u]) * w[u];
      }
    }
    run_sums[(hh * parts + part) * kVoteKeys + lane] = acc;
  }
  __syncthreads();
  if (warp != 0 || !key) return;
  float vote = 0.0f;
  for (int64_t hh = 0; hh < group; ++hh) {
    double head = 0.0;
    for (int part = 0; part < parts; ++part) head += run_sums[(hh * parts + part) * kVoteKeys + lane];
    vote += float(head);
  }
  votes[(j - a.first_key) * a.n_kv_heads + g] = vote;
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
      // The heads' cells loaded in batches before they are added (in head order, as the host).
      const float* cell = probs + i * a.width + d;
      const int64_t head_stride = a.n * a.width;
      float v = 0.0f;
      int64_t h = h_first;
      for (; h + kSegBatch <= h_end; h += kSegBatch) {
        float p[kSegBatch];
#pragma unroll
        for (int u = 0; u < kSegBatch; ++u) p[u] = cell[(h + u) * head_stride];
#pragma unroll
        for (int u = 0; u < kSegBatch; ++u) v = __fadd_rn(v, __fmul_rn(weight, p[u]));
      }
      for (; h < h_end; ++h) v = __fadd_rn(v, __fmul_rn(weight, cell[h * head_stride]));
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
void launch_rotate(const BandArgs& a, const BandLayout& l, float* scratch, cudaStream_t stream) {
  const int64_t threads = (a.n * a.n_heads + n_keys_of(a) * a.n_kv_heads) * (D / 8);  // 4 pairs a thread
  const unsigned blocks = unsigned(std::clamp<int64_t>((threads + kThreads - 1) / kThreads, 1, 65536));
  band_rotate_kernel<D><<<blocks, kThreads, 0, stream>>>(a, scratch + l.q, scratch + l.keys);
  LTRI_CUDA_CHECK_LAUNCH("band_rotate_kernel");
}

template <int D>
void launch_scores(const BandArgs& a, const BandLayout& l, float* scratch, cudaStream_t stream) {
  const int64_t query_tiles = (a.n + kTileQueries - 1) / kTileQueries;
  // A decode step has one query tile: one block per head walking the key slices in turn left
  // the GPU idle and the step latency-bound. Few blocks split the slices across grid.z; chunks
  // have blocks enough, and each extra z would reload the query tile.
  const int64_t blocks = query_tiles * a.n_heads;
  const int64_t slices = (std::min<int64_t>(a.width, n_keys_of(a)) + kTileQueries + kTileKeys - 1) / kTileKeys;
  const int64_t z = blocks >= kBlocksEnough ? 1 : std::clamp<int64_t>((kBlocksEnough + blocks - 1) / blocks, 1, slices);
  const dim3 grid(unsigned(query_tiles), unsigned(a.n_heads), unsigned(z));
  const float scale = 1.0f / std::sqrt(float(D));
  band_scores_kernel<D><<<grid, kThreads, 0, stream>>>(a, scratch + l.q, scratch + l.keys, scale, scratch + l.probs);
  LTRI_CUDA_CHECK_LAUNCH("band_scores_kernel");
}

void check_head_dim(const BandArgs& a) {
  if (!band_supports_head_dim(a.head_dim)) {
    fail("attention_band: head_dim ", a.head_dim, " is not supported by the CUDA backend (64 or 128)");
  }
}

// The rotation reads its inputs 16 bytes at a time: rows of head_dim floats from 16-byte
// aligned bases (device allocations are; a misaligned view would be a caller's bug).
void check_aligned(const BandArgs& a) {
  for (const float* p : {a.q, a.keys, a.cos, a.sin}) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) fail("attention_band: an input is not 16-byte aligned");
  }
}

}  // namespace

bool band_supports_head_dim(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

size_t band_output_floats(const BandArgs& a) {
  return size_t(n_keys_of(a) * a.n_kv_heads) + (a.want_seg ? size_t(a.n * a.width) : 0);
}

size_t band_scratch_floats(const BandArgs& a) { return band_layout(a).total; }

void launch_band_rotate(const BandArgs& a, float* scratch, cudaStream_t stream) {
  if (a.n <= 0 || n_keys_of(a) <= 0) return;
  check_head_dim(a);
  check_aligned(a);
  const BandLayout l = band_layout(a);
  if (a.head_dim == 64) {
    launch_rotate<64>(a, l, scratch, stream);
  } else {
    launch_rotate<128>(a, l, scratch, stream);
  }
}

void launch_band_from_rotated(const BandArgs& a, float* scratch, cudaStream_t stream) {
  if (a.n <= 0 || n_keys_of(a) <= 0) return;
  check_head_dim(a);
  const BandLayout l = band_layout(a);
  float* votes = scratch;
  float* seg = votes + n_keys_of(a) * a.n_kv_heads;
  float* probs = scratch + l.probs;
  float* inv_sum = scratch + l.inv_sum;
  if (a.head_dim == 64) {
    launch_scores<64>(a, l, scratch, stream);
  } else {
    launch_scores<128>(a, l, scratch, stream);
  }
  band_softmax_kernel<<<warp_grid(a.n_heads * a.n), kThreads, 0, stream>>>(a, probs, inv_sum);
  LTRI_CUDA_CHECK_LAUNCH("band_softmax_kernel");
  const int64_t group = a.n_heads / a.n_kv_heads;
  const dim3 vote_grid(unsigned((n_keys_of(a) + kVoteKeys - 1) / kVoteKeys), unsigned(a.n_kv_heads));
  // Runs per head: enough (head, run) items for the block's warps, at most kVoteParts; the
  // shared sums stay within 16 KB at any group.
  const int parts = int(std::clamp<int64_t>(kVoteWarps / group, 1, kVoteParts));
  const size_t vote_shared = size_t(group * parts * kVoteKeys) * sizeof(double);
  band_votes_kernel<<<vote_grid, kVoteWarps * 32, vote_shared, stream>>>(a, probs, inv_sum, parts, votes);
  LTRI_CUDA_CHECK_LAUNCH("band_votes_kernel");
  if (a.want_seg) {
    band_seg_kernel<<<warp_grid(a.n), kThreads, 0, stream>>>(a, probs, seg);
    LTRI_CUDA_CHECK_LAUNCH("band_seg_kernel");
  }
}

void launch_attention_band(const BandArgs& a, float* scratch, cudaStream_t stream) {
  launch_band_rotate(a, scratch, stream);
  launch_band_from_rotated(a, scratch, stream);
}

}  // namespace ltri::cuda
