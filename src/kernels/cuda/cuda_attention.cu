// Attention on the GPU over a policy's visible segments (same contract as CpuBackend::attention):
// out = softmax(q k^T / sqrt(d)) v under ONE softmax across every segment of the plan, keys
// rotated at load time to the positions the plan gives them (pre-RoPE keys in memory), queries
// to query_first_position + i or to a segment's fixed query_position, GQA, and the chunk's own
// segment causal (key t visible to query i only when t <= i).
//
// Flash-style: scores never reach global memory. One block of 128 threads takes kRows "rows"
// of one KV head g, a row being a (query i, query head h of g's group) pair, R = i * group + j,
// so every head sharing g's keys reuses each key tile. The block walks its key range kKeys keys
// at a time, one segment at a time (a tile never crosses segments, so it has one position rule
// and one query placement): keys are rotated and values copied into shared memory, each of the
// TPR threads of a row computes kKeys / TPR scores of it, the row's running max m and sum l are
// updated (online softmax: earlier output is rescaled by e^(m_old - m_new)), and the thread's
// D / TPR output elements accumulate p v. A row's threads are neighbours in one warp, so row
// reductions are warp shuffles and no block barrier. Chunks use TPR = 4 (32 rows a block);
// a call with few rows uses 16 or 32 threads a row (8 or 4 rows a block) rather than leave
// most of a 32-row block idle. (Decode steps go to cuda_attention_decode.cu when a KV head has
// at most 8 query heads; this kernel takes the others.)
//
// Split keys (flash-decoding): when the rows alone give too few blocks to fill the GPU (decode,
// short chunks), grid.z splits the visible keys into parts; each writes its unnormalised output
// with (m, l) to scratch, and launch_attention_merge (cuda_attention_merge.cu) combines them: with M = max m_s,
// out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
//
// Bound: f32 on CUDA cores, by shared-memory reads (~1 per multiply-add): a few TFLOP/s at
// prefill; decode reads each K/V element once per block of rows, so it is bound by memory
// bandwidth once split across the SMs. Models with bf16 weights prefill with the tensor-core
// kernel instead (cuda_attention_mma.cu).
// Checked against CpuBackend::attention in tests/kernels/test_cuda_attention.cpp.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kKeys = 32;  // keys per tile
// Threads per row, TPR: 4 (32 rows per block) for chunks; decode has only `group` rows per KV
// head, so it takes 16 (8 rows) or 32 (4 rows) and no block computes rows that do not exist.
template <int TPR>
__host__ __device__ constexpr int rows_per_block() {
  static_assert(TPR == 4 || TPR == 16 || TPR == 32, "a row's threads share a warp");
  return kThreads / TPR;
}

// Shared memory of one block, in floats. Rows of q and k are padded by one float so the 8 rows a
// warp reads at one d fall in 8 different banks.
template <int D, int kRows>
struct SharedLayout {
  static constexpr int q_ld = D + 1;
  static constexpr int k_ld = D + 1;
  static constexpr int p_ld = kKeys + 1;
  static constexpr int q = 0;                     // (kRows, D): rotated, scaled queries
  static constexpr int k = q + kRows * q_ld;      // (kKeys, D): rotated keys of the tile
  static constexpr int v = k + kKeys * k_ld;      // (kKeys, D): values of the tile (16-byte aligned)
  static constexpr int p = v + kKeys * D;         // (kRows, kKeys): probabilities of the tile
  static constexpr int floats = p + kRows * p_ld;
  static constexpr size_t bytes = size_t(floats) * sizeof(float);
  static_assert(v % 4 == 0, "values are stored as float4");
};

__device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ inline int64_t placement_of(const AttentionSegment& s) { return s.query_position >= 0 ? s.query_position : -1; }

template <int D, int kThreadsPerRow>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionArgs a, int splits, float* partial_o,
                                                             float* partial_ml) {
  constexpr int kRows = rows_per_block<kThreadsPerRow>();
  constexpr int kScoresPerThread = kKeys / kThreadsPerRow;
  extern __shared__ float smem[];
  using L = SharedLayout<D, kRows>;
  float* qs = smem + L::q;
  float* ks = smem + L::k;
  float* vs = smem + L::v;
  float* ps = smem + L::p;
  constexpr int half = D / 2;

  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t g = blockIdx.y;
  const int64_t rows_total = a.n * group;
  const int64_t r0 = int64_t(blockIdx.x) * kRows;
  const int tid = threadIdx.x;
  const int r = tid / kThreadsPerRow;  // this thread's row
  const int j = tid % kThreadsPerRow;  // its lane in the row: scores j + TPR u, outputs j + TPR e
  const int64_t row = r0 + r;
  const bool active = row < rows_total;
  const int64_t i = active ? row / group : 0;  // query index in the chunk
  const int64_t h = g * group + (active ? row % group : 0);
  const int64_t i_last = imin(a.n - 1, (imin(r0 + kRows, rows_total) - 1) / group);  // last query of the block
  const int64_t q_row = a.n_heads * D;
  const int64_t kv_row = a.n_kv_heads * D;
  const float scale = rsqrtf(float(D));

  // This split's part of the visible keys (all segments concatenated).
  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += a.segments[s].n;
  const int64_t part = (visible + splits - 1) / splits;
  const int64_t c0 = int64_t(blockIdx.z) * part;
  const int64_t c1 = imin(visible, c0 + part);

  float m = -INFINITY, l = 0.0f;
  float o[D / kThreadsPerRow];
#pragma unroll
  for (int e = 0; e < D / kThreadsPerRow; ++e) o[e] = 0.0f;

  int64_t loaded_placement = -2;  // none yet
  int64_t offset = 0;             // first column of the segment
  for (int si = 0; si < a.n_segments; ++si) {
    const AttentionSegment& seg = a.segments[si];
    // Keys of this segment any row of the block may see: a causal one stops at the last query.
    const int64_t seg_len = seg.causal ? imin(seg.n, i_last + 1) : seg.n;
    const int64_t lo = imax(c0, offset), hi = imin(c1, offset + seg_len);
    if (lo < hi && placement_of(seg) != loaded_placement) {
      // Queries of the block rotated to this segment's placement, pre-multiplied by 1/sqrt(d).
      loaded_placement = placement_of(seg);
      __syncthreads();  // the previous placement's queries may still be read
      for (int idx = tid; idx < kRows * half; idx += kThreads) {
        const int rr = idx / half, d = idx % half;
        const int64_t row_q = r0 + rr;
        float x0 = 0.0f, x1 = 0.0f;
        if (row_q < rows_total) {
          const int64_t iq = row_q / group, hq = g * group + row_q % group;
          const int64_t p = loaded_placement >= 0 ? loaded_placement : a.query_first_position + iq;
          const float* qv = a.q + iq * q_row + hq * D;
          const float c = a.cos[p * half + d], s = a.sin[p * half + d];
          x0 = (qv[d] * c - qv[d + half] * s) * scale;
          x1 = (qv[d + half] * c + qv[d] * s) * scale;
        }
        qs[rr * L::q_ld + d] = x0;
        qs[rr * L::q_ld + d + half] = x1;
      }
    }
    for (int64_t t0 = lo; t0 < hi; t0 += kKeys) {
      const int64_t n_tile = imin(kKeys, hi - t0);
      const int64_t k_first = t0 - offset;  // key index in the segment
      __syncthreads();  // queries loaded; the previous tile fully read
      // All of a thread's global reads of the tile are issued before any shared store, in
      // batches of kBatch: a loop that loads and stores one element per step waits one memory
      // round trip per step, which made decode (a few tiles per block) latency-bound.
      constexpr int kKeyLoads = kKeys * half / kThreads;  // (key, d) pairs per thread
      constexpr int kBatch = 8;
      static_assert(kKeyLoads % kBatch == 0, "whole batches");
#pragma unroll 1  // a batch at a time: unrolling the batches too would cost registers, not time
      for (int b0 = 0; b0 < kKeyLoads; b0 += kBatch) {
        float k0[kBatch], k1[kBatch], cs[kBatch], sn[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int idx = tid + (b0 + u) * kThreads;
          const int c = idx / half, d = idx % half;
          k0[u] = k1[u] = cs[u] = sn[u] = 0.0f;
          if (c < n_tile) {
            const int64_t t = k_first + c;
            const int64_t p = seg.first_position + t * seg.position_stride;
            const float* kv = seg.k + t * kv_row + g * D;
            k0[u] = kv[d];
            k1[u] = kv[d + half];
            cs[u] = a.cos[p * half + d];
            sn[u] = a.sin[p * half + d];
          }
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int idx = tid + (b0 + u) * kThreads;
          const int c = idx / half, d = idx % half;
          ks[c * L::k_ld + d] = k0[u] * cs[u] - k1[u] * sn[u];
          ks[c * L::k_ld + d + half] = k1[u] * cs[u] + k0[u] * sn[u];
        }
      }
      // Values as float4 when the segment's rows are 16-byte aligned (always, for the window and
      // retrieved buffers: rows of n_kv_heads * D floats from an aligned base), else one float
      // at a time.
      if ((reinterpret_cast<uintptr_t>(seg.v) & 15) == 0) {
        constexpr int kVecLoads = kKeys * D / 4 / kThreads;  // float4 per thread
        constexpr int kVecBatch = 4;
        static_assert(kVecLoads % kVecBatch == 0, "whole batches");
#pragma unroll 1
        for (int b0 = 0; b0 < kVecLoads; b0 += kVecBatch) {
          float4 vv[kVecBatch];
#pragma unroll
          for (int u = 0; u < kVecBatch; ++u) {
            const int idx = tid + (b0 + u) * kThreads;  // float4 index in the (kKeys, D) tile
            const int c = idx / (D / 4), d4 = idx % (D / 4);
            vv[u] = c < n_tile ? *reinterpret_cast<const float4*>(seg.v + (k_first + c) * kv_row + g * D + 4 * d4)
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          }
#pragma unroll
          for (int u = 0; u < kVecBatch; ++u) reinterpret_cast<float4*>(vs)[tid + (b0 + u) * kThreads] = vv[u];
        }
      } else {
        for (int idx = tid; idx < kKeys * D; idx += kThreads) {
          const int c = idx / D, d = idx % D;
          vs[idx] = c < n_tile ? seg.v[(k_first + c) * kv_row + g * D + d] : 0.0f;
        }
      }
      __syncthreads();

      // Scores of this thread's row against keys j, j + 4, ...; hidden ones are -inf.
      float s[kScoresPerThread];
#pragma unroll
      for (int u = 0; u < kScoresPerThread; ++u) s[u] = 0.0f;
      const float* q_r = qs + r * L::q_ld;
#pragma unroll 8
      for (int d = 0; d < D; ++d) {
        const float qd = q_r[d];
#pragma unroll
        for (int u = 0; u < kScoresPerThread; ++u) s[u] += qd * ks[(j + kThreadsPerRow * u) * L::k_ld + d];
      }
      float tile_max = -INFINITY;
#pragma unroll
      for (int u = 0; u < kScoresPerThread; ++u) {
        const int c = j + kThreadsPerRow * u;
        const bool seen = active && c < n_tile && (!seg.causal || k_first + c <= i);
        s[u] = seen ? s[u] : -INFINITY;
        tile_max = fmaxf(tile_max, s[u]);
      }
#pragma unroll
      for (int lane = 1; lane < kThreadsPerRow; lane <<= 1) {
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, lane));
      }
      const float m_new = fmaxf(m, tile_max);
      // A row that has seen nothing yet keeps m = -inf, l = 0, o = 0 (no -inf - -inf).
      const float alpha = m_new == -INFINITY ? 1.0f : expf(m - m_new);
      float p_sum = 0.0f;
#pragma unroll
      for (int u = 0; u < kScoresPerThread; ++u) {
        const float p = s[u] == -INFINITY ? 0.0f : expf(s[u] - m_new);
        ps[r * L::p_ld + j + kThreadsPerRow * u] = p;
        p_sum += p;
      }
#pragma unroll
      for (int lane = 1; lane < kThreadsPerRow; lane <<= 1) p_sum += __shfl_xor_sync(0xffffffffu, p_sum, lane);
      l = l * alpha + p_sum;
      m = m_new;
      __syncwarp();  // row r's probabilities come from the TPR threads of r, all in this warp
#pragma unroll
      for (int e = 0; e < D / kThreadsPerRow; ++e) o[e] *= alpha;
      const float* p_r = ps + r * L::p_ld;
      for (int c = 0; c < n_tile; ++c) {
        const float pc = p_r[c];
        const float* v_c = vs + c * D + j;
#pragma unroll
        for (int e = 0; e < D / kThreadsPerRow; ++e) o[e] += pc * v_c[kThreadsPerRow * e];
      }
    }
    offset += seg.n;
  }

  if (!active) return;
  const int64_t out_row = i * a.n_heads + h;  // row of out (n, n_heads, head_dim)
  if (splits == 1) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* out = a.out + out_row * D + j;
#pragma unroll
    for (int e = 0; e < D / kThreadsPerRow; ++e) out[kThreadsPerRow * e] = o[e] * inv;
  } else {
    const int64_t scratch_row = int64_t(blockIdx.z) * a.n * a.n_heads + out_row;
    float* po = partial_o + scratch_row * D + j;
#pragma unroll
    for (int e = 0; e < D / kThreadsPerRow; ++e) po[kThreadsPerRow * e] = o[e];
    if (j == 0) {
      partial_ml[2 * scratch_row] = m;
      partial_ml[2 * scratch_row + 1] = l;
    }
  }
}

// Threads per row for a call: the fewest rows per block that still hold a KV head's rows.
int threads_per_row(const AttentionArgs& a) {
  const int64_t rows = a.n * (a.n_heads / a.n_kv_heads);
  return rows <= rows_per_block<32>() ? 32 : rows <= rows_per_block<16>() ? 16 : 4;
}

template <int D, int TPR>
void launch_variant(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  constexpr int kRows = rows_per_block<TPR>();
  constexpr size_t bytes = SharedLayout<D, kRows>::bytes;
  // Above 48 KiB of dynamic shared memory a kernel must opt in (once per process is enough).
  static const bool opted_in = [] {
    LTRI_CUDA_CHECK(
        cudaFuncSetAttribute(attention_kernel<D, TPR>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    return true;
  }();
  (void)opted_in;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t row_blocks = (a.n * group + kRows - 1) / kRows;
  const dim3 grid(unsigned(row_blocks), unsigned(a.n_kv_heads), unsigned(splits));
  const int64_t rows = a.n * a.n_heads;
  float* partial_o = splits > 1 ? scratch : nullptr;                    // (splits, rows, D)
  float* partial_ml = splits > 1 ? scratch + splits * rows * D : nullptr;  // (splits, rows, 2)
  attention_kernel<D, TPR><<<grid, kThreads, bytes, stream>>>(a, splits, partial_o, partial_ml);
  LTRI_CUDA_CHECK_LAUNCH("attention");
  if (splits > 1) launch_attention_merge(partial_o, partial_ml, splits, rows, D, false, a.out, stream);
}

template <int D>
void launch_for_head_dim(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  switch (threads_per_row(a)) {
    case 32: return launch_variant<D, 32>(a, splits, scratch, stream);
    case 16: return launch_variant<D, 16>(a, splits, scratch, stream);
    default: return launch_variant<D, 4>(a, splits, scratch, stream);
  }
}

}  // namespace

bool attention_supports_head_dim(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

int attention_splits(const AttentionArgs& a, int sm_count) {
  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += a.segments[s].n;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t rows_in_block = kThreads / threads_per_row(a);
  const int64_t row_blocks = (a.n * group + rows_in_block - 1) / rows_in_block;
  const int64_t blocks = row_blocks * a.n_kv_heads;
  // Decode (one block of rows per KV head) is bound by reading K and V: it needs many blocks in
  // flight per SM to hide the memory latency, so it splits into parts of >= 64 keys, aiming at
  // eight blocks per SM. Chunks have blocks enough; they split only to reach two per SM, in
  // parts of >= 256 keys, so the merge stays cheap.
  const bool decode = row_blocks == 1;
  const int64_t per_sm = decode ? 8 : 2;
  const int64_t want = (per_sm * int64_t(sm_count) + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, visible / (decode ? 64 : 256));
  return int(std::clamp<int64_t>(std::min(want, most), 1, decode ? kMaxAttentionSplits : 64));
}

size_t attention_scratch_floats(const AttentionArgs& a, int splits) {
  if (splits <= 1) return 0;
  return size_t(splits) * size_t(a.n * a.n_heads) * size_t(a.head_dim + 2);
}

void launch_attention(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  if (a.n <= 0) return;
  if (a.head_dim == 64) {
    launch_for_head_dim<64>(a, splits, scratch, stream);
  } else if (a.head_dim == 128) {
    launch_for_head_dim<128>(a, splits, scratch, stream);
  } else {
    fail("attention: head_dim ", a.head_dim, " is not compiled into the CUDA backend (64, 128)");
  }
}

}  // namespace ltri::cuda
