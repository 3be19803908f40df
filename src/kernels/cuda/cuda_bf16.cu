// bf16 kernels of the CUDA backend: activations rounded to bf16 for the bf16 GEMM (plain, or the
// MLP's silu(gate) * up rounded as it is computed, from f32 or from the fused GEMM's bf16 rows), the embedding lookup from a bf16 table, and
// bf16 K/V from the host store widened to f32. The rounding is the host's f32_to_bf16
// (core/dtype.hpp) bit for bit (nearest even, NaN kept quiet), so a test can predict every
// rounded value. All are bound by memory bandwidth (6 to 10 bytes per element) and small next to
// the GEMMs they feed.
// Checked in tests/kernels/test_cuda_bf16.cpp.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_bf16_round.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535)));
}

__global__ void f32_to_bf16_kernel(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = round_to_bf16(x[i]);
  }
}

// Four bf16 bits packed into 8 bytes, element 0 in the low half (little endian, as in memory).
__device__ inline uint2 pack_bf16x4(float a, float b, float c, float d) {
  return make_uint2(uint32_t(round_to_bf16(a)) | uint32_t(round_to_bf16(b)) << 16,
                    uint32_t(round_to_bf16(c)) | uint32_t(round_to_bf16(d)) << 16);
}

// f32_to_bf16_kernel four elements a step (16-byte loads, 8-byte stores): the scalar kernel's
// 2-byte stores leave much of the bandwidth unused on the (chunk, 14336) activations. n4 = n / 4;
// x 16-byte and out 8-byte aligned; the last n % 4 elements are the scalar kernel's.
__global__ void f32_to_bf16_x4_kernel(const float4* x, uint2* out, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    out[i] = pack_bf16x4(v.x, v.y, v.z, v.w);
  }
}

// silu(g) * u, the formula of cuda_elementwise.cu's swiglu_kernel (and the CPU op's), so the
// bf16 rounding of it equals rounding what launch_swiglu writes.
__device__ inline float swiglu_value(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__global__ void swiglu_to_bf16_kernel(const float* gate, const float* up, uint16_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = round_to_bf16(swiglu_value(gate[i], up[i]));
  }
}

__global__ void swiglu_to_bf16_x4_kernel(const float4* gate, const float4* up, uint2* out, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 g = gate[i], u = up[i];
    out[i] = pack_bf16x4(swiglu_value(g.x, u.x), swiglu_value(g.y, u.y), swiglu_value(g.z, u.z),
                         swiglu_value(g.w, u.w));
  }
}

// Eight bf16 values (a 16-byte word) widened to f32, element 0 from the low half of .x.
__device__ inline void unpack_bf16x8(uint4 w, float* out) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = bf16_bits_to_f32(uint16_t(words[i] & 0xffffu));
    out[2 * i + 1] = bf16_bits_to_f32(uint16_t(words[i] >> 16));
  }
}

// out (n, ffn) = silu(gate) * up rounded to bf16, from gate_up (n, 2 * ffn) bf16 rows [gate | up]
// (the fused gate/up GEMM's output). Rows over blockIdx.y, columns over x: no division per element.
__global__ void swiglu_rows_bf16_kernel(const uint16_t* gate_up, int64_t n, int64_t ffn, uint16_t* out) {
  for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
    const uint16_t* g = gate_up + row * 2 * ffn;
    const uint16_t* u = g + ffn;
    uint16_t* o = out + row * ffn;
    for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < ffn; c += int64_t(gridDim.x) * blockDim.x) {
      o[c] = round_to_bf16(swiglu_value(bf16_bits_to_f32(g[c]), bf16_bits_to_f32(u[c])));
    }
  }
}

// The same eight columns a step (16-byte loads and stores); ffn8 = ffn / 8, ffn % 8 == 0 and
// gate_up and out 16-byte aligned.
__global__ void swiglu_rows_bf16_x8_kernel(const uint4* gate_up, int64_t n, int64_t ffn8, uint4* out) {
  for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
    const uint4* g = gate_up + row * 2 * ffn8;
    const uint4* u = g + ffn8;
    uint4* o = out + row * ffn8;
    for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < ffn8; c += int64_t(gridDim.x) * blockDim.x) {
      float gv[8], uv[8];
      unpack_bf16x8(g[c], gv);
      unpack_bf16x8(u[c], uv);
      const uint2 lo = pack_bf16x4(swiglu_value(gv[0], uv[0]), swiglu_value(gv[1], uv[1]), swiglu_value(gv[2], uv[2]),
                                   swiglu_value(gv[3], uv[3]));
      const uint2 hi = pack_bf16x4(swiglu_value(gv[4], uv[4]), swiglu_value(gv[5], uv[5]), swiglu_value(gv[6], uv[6]),
                                   swiglu_value(gv[7], uv[7]));
      o[c] = make_uint4(lo.x, lo.y, hi.x, hi.y);
    }
  }
}

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

__global__ void bf16_to_f32_kernel(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = bf16_bits_to_f32(x[i]);
  }
}

__global__ void embed_bf16_kernel(const uint16_t* table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const uint16_t* src = table + int64_t(ids[row]) * dim;
    float* dst = out + row * dim;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) dst[d] = __uint_as_float(uint32_t(src[d]) << 16);
  }
}

}  // namespace

void launch_f32_to_bf16(const float* x, uint16_t* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  int64_t done = 0;
  if (aligned(x, 16) && aligned(out, 8) && n >= 4) {
    const int64_t n4 = n / 4;
    f32_to_bf16_x4_kernel<<<grid_for(n4), kThreads, 0, stream>>>(reinterpret_cast<const float4*>(x),
                                                                    reinterpret_cast<uint2*>(out), n4);
    LTRI_CUDA_CHECK_LAUNCH("f32_to_bf16_x4_kernel");
    done = n4 * 4;
  }
  if (done == n) return;
  f32_to_bf16_kernel<<<grid_for(n - done), kThreads, 0, stream>>>(x + done, out + done, n - done);
  LTRI_CUDA_CHECK_LAUNCH("f32_to_bf16_kernel");
}

void launch_swiglu_to_bf16(const float* gate, const float* up, uint16_t* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  int64_t done = 0;
  if (aligned(gate, 16) && aligned(up, 16) && aligned(out, 8) && n >= 4) {
    const int64_t n4 = n / 4;
    swiglu_to_bf16_x4_kernel<<<grid_for(n4), kThreads, 0, stream>>>(
        reinterpret_cast<const float4*>(gate), reinterpret_cast<const float4*>(up), reinterpret_cast<uint2*>(out), n4);
    LTRI_CUDA_CHECK_LAUNCH("swiglu_to_bf16_x4_kernel");
    done = n4 * 4;
  }
  if (done == n) return;
  swiglu_to_bf16_kernel<<<grid_for(n - done), kThreads, 0, stream>>>(gate + done, up + done, out + done, n - done);
  LTRI_CUDA_CHECK_LAUNCH("swiglu_to_bf16_kernel");
}

void launch_swiglu_rows_bf16(const uint16_t* gate_up, int64_t n, int64_t ffn, uint16_t* out, cudaStream_t stream) {
  if (n <= 0 || ffn <= 0) return;
  const unsigned rows = unsigned(std::min<int64_t>(n, 65535));
  if (ffn % 8 == 0 && aligned(gate_up, 16) && aligned(out, 16)) {
    const int64_t ffn8 = ffn / 8;
    const dim3 grid(unsigned(std::min<int64_t>((ffn8 + kThreads - 1) / kThreads, 65535)), rows);
    swiglu_rows_bf16_x8_kernel<<<grid, kThreads, 0, stream>>>(reinterpret_cast<const uint4*>(gate_up), n, ffn8,
                                                               reinterpret_cast<uint4*>(out));
    LTRI_CUDA_CHECK_LAUNCH("swiglu_rows_bf16_x8_kernel");
    return;
  }
  const dim3 grid(unsigned(std::min<int64_t>((ffn + kThreads - 1) / kThreads, 65535)), rows);
  swiglu_rows_bf16_kernel<<<grid, kThreads, 0, stream>>>(gate_up, n, ffn, out);
  LTRI_CUDA_CHECK_LAUNCH("swiglu_rows_bf16_kernel");
}

void launch_bf16_to_f32(const uint16_t* x, float* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  bf16_to_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, out, n);
  LTRI_CUDA_CHECK_LAUNCH("bf16_to_f32_kernel");
}

void launch_embed_bf16(const uint16_t* table, const int32_t* ids, int64_t n, int64_t dim, float* out,
                       cudaStream_t stream) {
  if (n <= 0) return;
  embed_bf16_kernel<<<unsigned(std::min<int64_t>(n, 65535)), kThreads, 0, stream>>>(table, ids, n, dim, out);
  LTRI_CUDA_CHECK_LAUNCH("embed_bf16_kernel");
}

}  // namespace ltri::cuda
