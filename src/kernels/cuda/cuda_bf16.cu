// bf16 kernels of the CUDA backend: activations rounded to bf16 for the bf16 GEMM (plain, or the
// MLP's silu(gate) * up rounded as it is computed), the embedding lookup from a bf16 table, and
// bf16 K/V from the host store widened to f32. The rounding is the host's f32_to_bf16
// (core/dtype.hpp) bit for bit (nearest even, NaN kept quiet), so a test can predict every
// rounded value. All are bound by memory bandwidth (6 to 10 bytes per element) and small next to
// the GEMMs they feed.
// Checked in tests/kernels/test_cuda_bf16.cpp.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535)));
}

__device__ inline uint16_t round_to_bf16(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
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

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

__global__ void bf16_to_f32_kernel(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = __uint_as_float(uint32_t(x[i]) << 16);
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
