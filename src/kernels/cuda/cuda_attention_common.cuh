// Device helpers shared by the two tensor-core prefill attention kernels (cuda_attention_mma.cu:
// mma.sync, any GPU from sm_80; cuda_attention_wgmma.cu: wgmma, sm_90a), and their host-side
// sizing: bf16 packing, the SFU exponential, cp.async copies, the plan's visible keys and the
// choice of key parts.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda::attention_common {

__device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
// The fixed position a segment's queries are rotated to, or -1 for query_first_position + i.
__device__ inline int64_t placement_of(const AttentionSegment& s) { return s.query_position >= 0 ? s.query_position : -1; }

// Two floats as one register of two bf16 (round to nearest even), `lo` in the low half: the
// element with the smaller column index, as mma, wgmma and ldmatrix expect.
__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 2^x by the special-function unit alone (ex2.approx.ftz: relative error ~2^-22, results below
// 2^-126 flushed to 0, -inf gives 0). exp2f without fast-math adds a range fix-up around it for
// denormal results, which probabilities rounded to bf16 next do not need.
__device__ inline float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// One row's output from a thread's accumulator pairs: pair nd (dims 8nd + 2tq, + 1 of the
// row) at acc[4 * nd], acc[4 * nd + 1] (the accumulator fragment layout of both kernels).
// Without partials (one key part): out = acc / sum; else the unnormalised acc and (m, sum) as
// part `part` of partial_o (parts, rows, D) / partial_ml (parts, rows, 2), for
// launch_attention_merge.
template <int D>
__device__ __forceinline__ void store_output_row(const AttentionArgs& a, int64_t out_row, int tq, const float* acc,
                                                 float m, float sum, int part, float* partial_o,
                                                 float* partial_ml) {
  if (partial_o == nullptr) {
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    float* out = a.out + out_row * D + 2 * tq;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
      *reinterpret_cast<float2*>(out + nd * 8) = make_float2(acc[4 * nd] * inv, acc[4 * nd + 1] * inv);
    }
    return;
  }
  const int64_t scratch_row = int64_t(part) * a.n * a.n_heads + out_row;
  float* po = partial_o + scratch_row * D + 2 * tq;
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd) {
    *reinterpret_cast<float2*>(po + nd * 8) = make_float2(acc[4 * nd], acc[4 * nd + 1]);
  }
  if (tq == 0) {
    partial_ml[2 * scratch_row] = m;
    partial_ml[2 * scratch_row + 1] = sum;
  }
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// 16 bytes from global to shared memory without passing through registers; with `valid` false
// the 16 bytes are zero-filled (src-size 0) and nothing is read.
__device__ inline void cp_async_16(void* dst, const void* src, bool valid) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most `pending` of this thread's committed groups are still in flight.
template <int pending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}
#endif

inline int64_t visible_keys(const AttentionArgs& a) {
  int64_t visible = 0;
  for (int s = 0; s < a.n_segments; ++s) visible += a.segments[s].n;
  return visible;
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Key parts for `blocks` blocks of 128 rows when the GPU runs `slots` blocks at a time. blocks * s
// of them take ceil(blocks * s / slots) waves of 1/s the work each, so the time is
// ~ceil(blocks * s / slots) / s and the busy share of the slots blocks * s / (waves * slots).
// Fewest parts (of >= 1024 keys, at most 64) that keep 7/8 of the slots busy (a prefill chunk of
// 512 queries at 32 / 8 heads is 128 blocks: 2 parts with 2 blocks an SM on 132 SMs), else the best.
inline int key_parts(int64_t blocks, int64_t slots, int64_t visible) {
  const int64_t most = std::clamp<int64_t>(visible / 1024, 1, 64);
  int best = 1;
  double best_busy = 0.0;
  for (int64_t s = 1; s <= most; ++s) {
    const int64_t waves = (blocks * s + slots - 1) / slots;
    const double busy = double(blocks * s) / double(waves * slots);
    if (busy >= 0.875) return int(s);
    if (busy > best_busy) {
      best_busy = busy;
      best = int(s);
    }
  }
  return best;
}

// Above 48 KiB of dynamic shared memory a kernel must opt in before its launch.
template <typename Kernel>
void opt_in_shared_memory(Kernel kernel, size_t bytes) {
  LTRI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// Blocks of `kernel` one SM holds at once (1 when the query fails).
template <typename Kernel>
int blocks_per_sm(Kernel kernel, int threads, size_t shared_bytes) {
  opt_in_shared_memory(kernel, shared_bytes);
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return 1;
  }
  return std::max(1, blocks);
}

}  // namespace ltri::cuda::attention_common
