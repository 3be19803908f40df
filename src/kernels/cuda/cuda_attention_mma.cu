// Attention on tensor cores: the contract of launch_attention (cuda_attention.cu) computed with
// bf16 inputs and f32 accumulation, for prefill on models whose weights are held in bf16. out =
// softmax(q k^T / sqrt(d)) v under ONE softmax across every segment of the plan, keys rotated at
// load time to the positions the plan gives them (pre-RoPE f32 keys in memory), queries to
// query_first_position + i or to a segment's fixed query_position, GQA rows R = i * group + j, the
// chunk's own segment causal (key t visible to query i only when t <= i).
//
// Geometry: one block of 4 warps takes kRows = 64 rows of one KV head g (grid.y), 16 rows a warp,
// and walks its key range kKeys = 64 keys at a time, one segment at a time. Per tile the block
// reads f32 K and V from global memory, rotates K, rounds both to bf16 and stores them row-major
// in shared memory (rows padded by 8 bf16 so the 8 rows an ldmatrix phase reads fall in distinct
// banks). Each warp then computes its 16 x 64 scores S = Q K^T with mma.sync m16n8k16 (Q's
// fragments held in registers, rotated and rounded once per query placement), applies the mask,
// updates the rows' running max m and sum l in f32 (online softmax, in log2 units: the score is
// pre-multiplied by log2(e) / sqrt(d) and exp2 used throughout), and accumulates O += P V with P
// taken straight from S's accumulator registers: the C fragment of two adjacent 16 x 8 score
// blocks is, element for element, the A fragment of a 16 x 16 block of P. V's B fragments come
// from ldmatrix.trans on the row-major tile, so V needs no transposed copy.
//
// mma.sync m16n8k16 fragments (lane = 4 * gq + tq): A (16 x 16, row major) a0 = (gq, 2tq..2tq+1),
// a1 = (gq + 8, 2tq..), a2 = (gq, 2tq + 8..), a3 = (gq + 8, 2tq + 8..); B (16 x 8, k x n) b0 =
// (k 2tq..2tq+1, n gq), b1 = (k 2tq + 8.., n gq); C (16 x 8) c0, c1 = (gq, 2tq..2tq+1), c2, c3 =
// (gq + 8, 2tq..). A thread therefore owns rows gq and gq + 8 of its warp's 16 rows, and a row's
// reductions are two shuffles across the 4 lanes of a quad.
//
// Split keys: as the f32 kernel, grid.z may split the visible keys into parts (a 512-query chunk
// at 8 KV heads gives only 256 blocks); each part writes unnormalised o with (m, l) to scratch
// and merge_kernel combines them.
//
// Bound: tensor-core issue and the per-tile f32 -> bf16 conversion with RoPE (the KV cache stays
// f32; each block converts every key it reads, 64 rows share each conversion). Error: q, k, v
// and p rounded to bf16 (relative 2^-9 each), sums in f32: ~1e-3 of the output's scale.
// Checked against CpuBackend::attention in tests/kernels/test_cuda_attention_mma.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = kWarps * 16;  // rows (query, head) per block: 16 per warp, one mma's M
constexpr int kKeys = 64;           // keys per tile
constexpr int kPad = 8;             // bf16 of padding per shared row (16 bytes keep ldmatrix aligned)

// Shared memory of one block: the tile's rotated keys and its values, bf16, row major.
template <int D>
struct TileLayout {
  static constexpr int ld = D + kPad;       // bf16 per row; ld / 2 words = 4 (mod 32) for D = 64, 128
  static constexpr int k = 0;               // (kKeys, ld)
  static constexpr int v = k + kKeys * ld;  // (kKeys, ld)
  static constexpr int elements = v + kKeys * ld;
  static constexpr size_t bytes = size_t(elements) * sizeof(__nv_bfloat16);
};

__device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ inline int64_t placement_of(const AttentionSegment& s) { return s.query_position >= 0 ? s.query_position : -1; }

// Two floats as one register of two bf16 (round to nearest even), `lo` in the low half: the
// element with the smaller column index, as mma and ldmatrix expect.
__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// c (16 x 8, f32) += a (16 x 16, bf16) b (16 x 8, bf16), fragments as in the header.
__device__ inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory: lane l gives the address of row l % 8 of matrix
// l / 8; register j receives matrix j, lane (gq, tq) holding its row gq, columns 2tq, 2tq + 1
// (with .trans: its rows 2tq, 2tq + 1 of column gq). "memory": it reads what other warps stored
// before the barrier, so it must not move above it.
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* row) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* row) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
#endif

// The rows a thread owns: gq and gq + 8 of its warp (index rr = 0, 1).
struct ThreadRows {
  bool active[2];
  int64_t i[2];  // query index in the chunk (0 for inactive rows)
  int64_t h[2];  // query head
};

// Q's A fragments for the thread's two rows, rotated to `placement` (-1: query_first_position + i)
// and rounded to bf16: qf[kc] covers head dims kc * 16 .. kc * 16 + 15. Rotation pairs d with
// d + D/2, which lands in fragment kc + D/32 at the same register, so each thread rotates its own
// elements straight from global memory.
template <int D>
__device__ inline void load_query_fragments(const AttentionArgs& a, const ThreadRows& rows, int64_t placement, int tq,
                                            uint32_t (&qf)[D / 16][4]) {
  constexpr int half = D / 2;
#pragma unroll
  for (int kc = 0; kc < D / 32; ++kc) {
#pragma unroll
    for (int col8 = 0; col8 < 2; ++col8) {  // columns 2tq.. (registers 0, 1) or 2tq + 8.. (2, 3)
      const int d = kc * 16 + col8 * 8 + 2 * tq;
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {  // row gq (registers 0, 2) or gq + 8 (1, 3)
        float2 x0 = make_float2(0.0f, 0.0f), x1 = make_float2(0.0f, 0.0f);
        if (rows.active[rr]) {
          const int64_t p = placement >= 0 ? placement : a.query_first_position + rows.i[rr];
          const float* qv = a.q + (rows.i[rr] * a.n_heads + rows.h[rr]) * D;
          const float2 lo = *reinterpret_cast<const float2*>(qv + d);
          const float2 hi = *reinterpret_cast<const float2*>(qv + d + half);
          const float2 c = *reinterpret_cast<const float2*>(a.cos + p * half + d);
          const float2 s = *reinterpret_cast<const float2*>(a.sin + p * half + d);
          x0 = make_float2(lo.x * c.x - hi.x * s.x, lo.y * c.y - hi.y * s.y);
          x1 = make_float2(hi.x * c.x + lo.x * s.x, hi.y * c.y + lo.y * s.y);
        }
        qf[kc][col8 * 2 + rr] = pack_bf16(x0.x, x0.y);
        qf[kc + D / 32][col8 * 2 + rr] = pack_bf16(x1.x, x1.y);
      }
    }
  }
}

// Keys k_first .. k_first + n_tile - 1 of `seg` into shared memory, rotated and rounded; values
// likewise. Rows past n_tile are zero (a p of 0 times an uninitialised NaN would still be NaN).
template <int D>
__device__ inline void load_tile(const AttentionArgs& a, const AttentionSegment& seg, int64_t g, int64_t k_first,
                                 int64_t n_tile, __nv_bfloat16* ks, __nv_bfloat16* vs) {
  using L = TileLayout<D>;
  constexpr int half = D / 2;
  const int64_t kv_row = a.n_kv_heads * D;
  // Keys: one item = 4 dims at d and their partners at d + D/2.
#pragma unroll 2
  for (int idx = threadIdx.x; idx < kKeys * (half / 4); idx += kThreads) {
    const int c = idx / (half / 4), d = (idx % (half / 4)) * 4;
    uint2 lo_bits = make_uint2(0u, 0u), hi_bits = make_uint2(0u, 0u);
    if (c < n_tile) {
      const int64_t t = k_first + c;
      const int64_t p = seg.first_position + t * seg.position_stride;
      const float* kv = seg.k + t * kv_row + g * D;
      const float4 lo = __ldg(reinterpret_cast<const float4*>(kv + d));
      const float4 hi = __ldg(reinterpret_cast<const float4*>(kv + d + half));
      const float4 cs = __ldg(reinterpret_cast<const float4*>(a.cos + p * half + d));
      const float4 sn = __ldg(reinterpret_cast<const float4*>(a.sin + p * half + d));
      lo_bits = make_uint2(pack_bf16(lo.x * cs.x - hi.x * sn.x, lo.y * cs.y - hi.y * sn.y),
                           pack_bf16(lo.z * cs.z - hi.z * sn.z, lo.w * cs.w - hi.w * sn.w));
      hi_bits = make_uint2(pack_bf16(hi.x * cs.x + lo.x * sn.x, hi.y * cs.y + lo.y * sn.y),
                           pack_bf16(hi.z * cs.z + lo.z * sn.z, hi.w * cs.w + lo.w * sn.w));
    }
    *reinterpret_cast<uint2*>(ks + c * L::ld + d) = lo_bits;
    *reinterpret_cast<uint2*>(ks + c * L::ld + d + half) = hi_bits;
  }
  // Values: one item = 4 consecutive dims.
#pragma unroll 4
  for (int idx = threadIdx.x; idx < kKeys * (D / 4); idx += kThreads) {
    const int c = idx / (D / 4), d = (idx % (D / 4)) * 4;
    uint2 bits = make_uint2(0u, 0u);
    if (c < n_tile) {
      const float4 x = __ldg(reinterpret_cast<const float4*>(seg.v + (k_first + c) * kv_row + g * D + d));
      bits = make_uint2(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w));
    }
    *reinterpret_cast<uint2*>(vs + c * L::ld + d) = bits;
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(AttentionArgs a, int splits, float* partial_o,
                                                                 float* partial_ml) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 mma.sync needs sm_80; the host only launches this on such devices
#else
  using L = TileLayout<D>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* ks = reinterpret_cast<__nv_bfloat16*>(smem_raw) + L::k;
  __nv_bfloat16* vs = reinterpret_cast<__nv_bfloat16*>(smem_raw) + L::v;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int gq = lane / 4, tq = lane % 4;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t g = blockIdx.y;
  const int64_t rows_total = a.n * group;
  const int64_t r0 = int64_t(blockIdx.x) * kRows;
  const int64_t warp_r0 = r0 + warp * 16;
  const bool warp_active = warp_r0 < rows_total;
  // Last query of the block (bounds every causal tile loop) and of this warp (skips its
  // all-masked tiles); both only over rows that exist.
  const int64_t i_last = imin(a.n - 1, (imin(r0 + kRows, rows_total) - 1) / group);
  const int64_t warp_i_last = warp_active ? imin(a.n - 1, (imin(warp_r0 + 16, rows_total) - 1) / group) : -1;
  ThreadRows rows;
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int64_t row = warp_r0 + gq + 8 * rr;
    rows.active[rr] = row < rows_total;
    rows.i[rr] = rows.active[rr] ? row / group : 0;
    rows.h[rr] = g * group + (rows.active[rr] ? row % group : 0);
  }
  const float scale_log2 = rsqrtf(float(D)) * 1.4426950408889634f;  // 1/sqrt(d) * log2(e)

  // This split's part of the visible keys (all segments concatenated).
  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += a.segments[s].n;
  const int64_t part = (visible + splits - 1) / splits;
  const int64_t c0 = int64_t(blockIdx.z) * part;
  const int64_t c1 = imin(visible, c0 + part);

  float m[2] = {-INFINITY, -INFINITY};  // running max of each row, log2 units
  float l[2] = {0.0f, 0.0f};            // this thread's share of each row's running sum
  float o[D / 8][4];                    // (16 x D) output of the warp, C fragments per 8 dims
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
  uint32_t qf[D / 16][4];

  int64_t loaded_placement = -2;  // none yet
  int64_t offset = 0;             // first column of the segment
  for (int si = 0; si < a.n_segments; ++si) {
    const AttentionSegment& seg = a.segments[si];
    // Keys of this segment any row of the block may see: a causal one stops at the last query.
    const int64_t seg_len = seg.causal ? imin(seg.n, i_last + 1) : seg.n;
    const int64_t lo = imax(c0, offset), hi = imin(c1, offset + seg_len);
    if (lo < hi && placement_of(seg) != loaded_placement) {
      loaded_placement = placement_of(seg);  // registers only: no barrier needed
      load_query_fragments<D>(a, rows, loaded_placement, tq, qf);
    }
    for (int64_t t0 = lo; t0 < hi; t0 += kKeys) {
      const int64_t n_tile = imin(kKeys, hi - t0);
      const int64_t k_first = t0 - offset;  // key index in the segment
      __syncthreads();                      // every warp done with the previous tile
      load_tile<D>(a, seg, g, k_first, n_tile, ks, vs);
      __syncthreads();
      // A warp none of whose rows sees a key of this tile leaves m, l, o as they are.
      if (!warp_active || (seg.causal && k_first > warp_i_last)) continue;

      // S = Q K^T, 16 x 64: s[nb] holds keys nb * 8 .. nb * 8 + 7.
      float s[kKeys / 8][4];
#pragma unroll
      for (int nb = 0; nb < kKeys / 8; ++nb) {
        s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
        for (int kp = 0; kp < D / 32; ++kp) {
          // Matrices: keys nb * 8 + 0..7 x dims kp * 32 + 8j: b0, b1 of kc = 2kp, then of 2kp + 1.
          uint32_t b[4];
          ldmatrix_x4(b, ks + (nb * 8 + lane % 8) * L::ld + kp * 32 + (lane / 8) * 8);
          mma_bf16(s[nb], qf[2 * kp], b[0], b[1]);
          mma_bf16(s[nb], qf[2 * kp + 1], b[2], b[3]);
        }
      }

      // Mask and scale; element e of s[nb] is row rr = e / 2, key nb * 8 + 2tq + e % 2.
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nb = 0; nb < kKeys / 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int rr = e / 2;
          const int c = nb * 8 + 2 * tq + e % 2;
          const bool seen = rows.active[rr] && c < n_tile && (!seg.causal || k_first + c <= rows.i[rr]);
          s[nb][e] = seen ? s[nb][e] * scale_log2 : -INFINITY;
          tile_max[rr] = fmaxf(tile_max[rr], s[nb][e]);
        }
      }
      float alpha[2], m_ref[2];
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        tile_max[rr] = fmaxf(tile_max[rr], __shfl_xor_sync(0xffffffffu, tile_max[rr], 1));
        tile_max[rr] = fmaxf(tile_max[rr], __shfl_xor_sync(0xffffffffu, tile_max[rr], 2));
        const float m_new = fmaxf(m[rr], tile_max[rr]);
        // A row that has seen nothing yet keeps m = -inf, l = 0, o = 0 (no -inf - -inf): its
        // scores are all -inf, and exp2(-inf - 0) = 0.
        alpha[rr] = m_new == -INFINITY ? 1.0f : exp2f(m[rr] - m_new);
        m_ref[rr] = m_new == -INFINITY ? 0.0f : m_new;
        m[rr] = m_new;
      }
      // P = exp2(S - m), packed into A fragments: keys kk * 16 .. kk * 16 + 15 are score blocks
      // 2kk (registers 0, 1) and 2kk + 1 (registers 2, 3).
      uint32_t pf[kKeys / 16][4];
      float p_sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int nb = 0; nb < kKeys / 8; ++nb) {
        const float p0 = exp2f(s[nb][0] - m_ref[0]), p1 = exp2f(s[nb][1] - m_ref[0]);
        const float p2 = exp2f(s[nb][2] - m_ref[1]), p3 = exp2f(s[nb][3] - m_ref[1]);
        p_sum[0] += p0 + p1;
        p_sum[1] += p2 + p3;
        pf[nb / 2][(nb % 2) * 2 + 0] = pack_bf16(p0, p1);
        pf[nb / 2][(nb % 2) * 2 + 1] = pack_bf16(p2, p3);
      }
      l[0] = l[0] * alpha[0] + p_sum[0];
      l[1] = l[1] * alpha[1] + p_sum[1];
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        o[nd][0] *= alpha[0];
        o[nd][1] *= alpha[0];
        o[nd][2] *= alpha[1];
        o[nd][3] *= alpha[1];
      }

      // O += P V: for keys kk * 16.., dims nd2 * 16..: matrices keys +0..7 / +8..15 x dims +0..7,
      // then the same keys x dims +8..15, read transposed (b0, b1 of nd = 2nd2, then 2nd2 + 1).
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
#pragma unroll
        for (int nd2 = 0; nd2 < D / 16; ++nd2) {
          uint32_t b[4];
          const int mat = lane / 8;
          ldmatrix_x4_trans(b, vs + (kk * 16 + (mat % 2) * 8 + lane % 8) * L::ld + nd2 * 16 + (mat / 2) * 8);
          mma_bf16(o[2 * nd2], pf[kk], b[0], b[1]);
          mma_bf16(o[2 * nd2 + 1], pf[kk], b[2], b[3]);
        }
      }
    }
    offset += seg.n;
  }

  if (!warp_active) return;
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);
  }
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    if (!rows.active[rr]) continue;
    const int64_t out_row = rows.i[rr] * a.n_heads + rows.h[rr];  // row of out (n, n_heads, head_dim)
    if (splits == 1) {
      const float inv = l[rr] > 0.0f ? 1.0f / l[rr] : 0.0f;
      float* out = a.out + out_row * D + 2 * tq;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        *reinterpret_cast<float2*>(out + nd * 8) = make_float2(o[nd][2 * rr] * inv, o[nd][2 * rr + 1] * inv);
      }
    } else {
      const int64_t scratch_row = int64_t(blockIdx.z) * a.n * a.n_heads + out_row;
      float* po = partial_o + scratch_row * D + 2 * tq;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        *reinterpret_cast<float2*>(po + nd * 8) = make_float2(o[nd][2 * rr], o[nd][2 * rr + 1]);
      }
      if (tq == 0) {
        partial_ml[2 * scratch_row] = m[rr];
        partial_ml[2 * scratch_row + 1] = l[rr];
      }
    }
  }
#endif
}

// One block per output row (query, head), one thread per element of head_dim; m in log2 units:
// with M = max m_s, out = sum_s o_s 2^(m_s - M) / sum_s l_s 2^(m_s - M).
__global__ void merge_kernel(const float* partial_o, const float* partial_ml, int splits, int64_t rows,
                             int64_t head_dim, float* out) {
  const int64_t row = blockIdx.x;
  float m_max = -INFINITY;
  for (int s = 0; s < splits; ++s) m_max = fmaxf(m_max, partial_ml[2 * (s * rows + row)]);
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float total = 0.0f, acc = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float m = partial_ml[2 * (s * rows + row)];
      if (m == -INFINITY) continue;  // this part held no key the row sees
      const float w = exp2f(m - m_max);
      total += w * partial_ml[2 * (s * rows + row) + 1];
      acc += w * partial_o[(s * rows + row) * head_dim + d];
    }
    out[row * head_dim + d] = total > 0.0f ? acc / total : 0.0f;
  }
}

template <int D>
void launch_for_head_dim(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  constexpr size_t bytes = TileLayout<D>::bytes;  // 18 KiB (d 64), 34 KiB (d 128): no opt-in needed
  static_assert(bytes <= 48 * 1024, "above 48 KiB the kernel would need cudaFuncAttributeMaxDynamicSharedMemorySize");
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t row_blocks = (a.n * group + kRows - 1) / kRows;
  const dim3 grid(unsigned(row_blocks), unsigned(a.n_kv_heads), unsigned(splits));
  const int64_t rows = a.n * a.n_heads;
  float* partial_o = splits > 1 ? scratch : nullptr;                       // (splits, rows, D)
  float* partial_ml = splits > 1 ? scratch + splits * rows * D : nullptr;  // (splits, rows, 2)
  attention_mma_kernel<D><<<grid, kThreads, bytes, stream>>>(a, splits, partial_o, partial_ml);
  LTRI_CUDA_CHECK_LAUNCH("attention_mma");
  if (splits > 1) {
    merge_kernel<<<unsigned(rows), D, 0, stream>>>(partial_o, partial_ml, splits, rows, D, a.out);
    LTRI_CUDA_CHECK_LAUNCH("attention_mma_merge");
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool attention_mma_supports(const AttentionArgs& a) {
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  // float4 loads of K, V and the RoPE rows, float2 loads of q and stores of out.
  if (!aligned16(a.cos) || !aligned16(a.sin) || !aligned16(a.q) || !aligned16(a.out)) return false;
  for (int s = 0; s < a.n_segments; ++s) {
    if (!aligned16(a.segments[s].k) || !aligned16(a.segments[s].v)) return false;
  }
  return true;
}

int attention_mma_splits(const AttentionArgs& a, int sm_count) {
  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += a.segments[s].n;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t blocks = (a.n * group + kRows - 1) / kRows * a.n_kv_heads;
  const int64_t want = (2 * int64_t(sm_count) + blocks - 1) / blocks;  // two blocks per SM
  const int64_t most = std::max<int64_t>(1, visible / 1024);              // parts of >= 1024 keys
  return int(std::clamp<int64_t>(std::min(want, most), 1, 64));
}

size_t attention_mma_scratch_floats(const AttentionArgs& a, int splits) {
  if (splits <= 1) return 0;
  return size_t(splits) * size_t(a.n * a.n_heads) * size_t(a.head_dim + 2);
}

void launch_attention_mma(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  if (a.n <= 0) return;
  if (a.head_dim == 64) {
    launch_for_head_dim<64>(a, splits, scratch, stream);
  } else if (a.head_dim == 128) {
    launch_for_head_dim<128>(a, splits, scratch, stream);
  } else {
    fail("attention (bf16 tensor cores): head_dim ", a.head_dim, " is not compiled in (64, 128)");
  }
}

}  // namespace ltri::cuda
