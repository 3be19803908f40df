// bf16 weights on the GPU: the bf16 GEMM and embedding against the CPU's f32 ops on the same
// bf16 values, raw byte uploads, a random tiny model with torch_dtype bfloat16 held in bf16 on
// the GPU giving logits close to the CPU's, and the GPU memory check refusing a session that
// cannot fit, in one line, before any work. Every test skips when no GPU is present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/cuda_kernels.hpp"
#include "model/llama_model.hpp"

namespace ltri {
namespace {

using test::randn;
using test::scaled_max_error;
using test::to_device;
using test::to_host;

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
  return out;
}

std::vector<float> from_bf16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(v[i]);
  return out;
}

// A device buffer holding bf16 values, two per float.
BackendBuffer bf16_to_device(Backend& backend, const std::vector<uint16_t>& v) {
  BackendBuffer buf(backend, (v.size() + 1) / 2);
  backend.upload_bytes(buf.data(), v.data(), v.size() * 2);
  return buf;
}

TEST(CudaBf16, matmul_matches_cpu_f32_on_the_same_bf16_values) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(2);
  ASSERT_TRUE(gpu.supports_weight_dtype(DType::BF16));
  // Odd sizes everywhere: k odd (bf16 rows not 4-byte aligned), m = 3 or odd, n = 1 (decode: the
  // GEMV kernel, vectorised when k % 8 == 0, one element at a time otherwise).
  const int64_t shapes[][3] = {{1, 384, 1152}, {7, 33, 19}, {131, 384, 1000}, {5, 4095, 3}, {1, 1, 5}, {64, 1024, 4096},
                               {1, 4096, 1031}, {1, 14336, 64}, {1, 4095, 17}, {1, 8, 1}, {1, 33, 2}};
  for (const auto& s : shapes) {
    const int64_t n = s[0], k = s[1], m = s[2];
    const auto w_bf16 = to_bf16(randn(size_t(m * k), 2, 0.05f));
    const auto x = randn(size_t(n * k), 1);
    const std::vector<float> w = from_bf16(w_bf16);
    const BackendBuffer dw = bf16_to_device(gpu, w_bf16), dx = to_device(gpu, x);
    BackendBuffer dout(gpu, size_t(n * m));
    gpu.matmul_weight(dx.data(), {dw.data(), DType::BF16}, n, k, m, dout.data());
    const std::vector<float> got = to_host(gpu, dout.data(), size_t(n * m));

    // 1) x rounded to bf16 on the host as the GPU rounds it: both sides multiply the same
    // values exactly (bf16 x bf16 products are exact in f32) and differ only in the order of
    // the f32 sums, as SGEMM vs OpenBLAS do (1e-5 in CudaOps.matmul_matches_cpu for k <= 1024;
    // the sums' rounding grows like sqrt(k), and k reaches 4095 here, hence 5e-5).
    const std::vector<float> x_rounded = from_bf16(to_bf16(x));
    std::vector<float> want_rounded(size_t(n * m));
    cpu.matmul(x_rounded.data(), w.data(), n, k, m, want_rounded.data());
    EXPECT_LT(scaled_max_error(got, want_rounded), 5e-5) << "n " << n << " k " << k << " m " << m;

    // 2) Against f32 x: rounding x to bf16 (relative error <= 2^-9 per element, random signs)
    // moves each output by ~2^-9 / sqrt(3) of its scale in rms; the max over a few thousand
    // outputs stays under 1% of the largest (a wrong layout or dtype gives O(1)).
    std::vector<float> want(size_t(n * m));
    cpu.matmul(x.data(), w.data(), n, k, m, want.data());
    EXPECT_LT(scaled_max_error(got, want), 1e-2) << "n " << n << " k " << k << " m " << m;
  }
}

TEST(CudaBf16, gemv_of_an_x_off_16_byte_alignment_matches_the_aligned_one) {
  // k % 8 == 0 but x starts 4 bytes past a 16-byte boundary: the GEMV reads one element at a
  // time instead of 16-byte pieces. The products are the same, only the grouping of the f32
  // sums differs, so the outputs are the aligned x's to within rounding (and both match the CPU
  // as in matmul_matches_cpu_f32_on_the_same_bf16_values).
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(2);
  for (const auto& [k, m] : {std::pair<int64_t, int64_t>{4096, 1031}, {1024, 64}, {8, 5}}) {
    const auto w_bf16 = to_bf16(randn(size_t(m * k), 3, 0.05f));
    const auto x = randn(size_t(k), 4);
    std::vector<float> padded(size_t(k + 1), 0.0f);
    std::copy(x.begin(), x.end(), padded.begin() + 1);
    const BackendBuffer dw = bf16_to_device(gpu, w_bf16), dx = to_device(gpu, x), dpadded = to_device(gpu, padded);
    ASSERT_NE(reinterpret_cast<uintptr_t>(dpadded.data() + 1) % 16, 0u);
    BackendBuffer aligned(gpu, size_t(m)), unaligned(gpu, size_t(m));
    gpu.matmul_weight(dx.data(), {dw.data(), DType::BF16}, 1, k, m, aligned.data());
    gpu.matmul_weight(dpadded.data() + 1, {dw.data(), DType::BF16}, 1, k, m, unaligned.data());
    const std::vector<float> got = to_host(gpu, unaligned.data(), size_t(m));
    EXPECT_LT(scaled_max_error(got, to_host(gpu, aligned.data(), size_t(m))), 1e-5) << "k " << k << " m " << m;
    const std::vector<float> x_rounded = from_bf16(to_bf16(x)), w = from_bf16(w_bf16);
    std::vector<float> want(static_cast<size_t>(m));
    cpu.matmul(x_rounded.data(), w.data(), 1, k, m, want.data());
    EXPECT_LT(scaled_max_error(got, want), 5e-5) << "k " << k << " m " << m;
  }
}

TEST(CudaBf16, rounding_kernels_match_the_host_bit_for_bit_at_any_alignment) {
  // launch_f32_to_bf16 and launch_swiglu_to_bf16 take 4 elements a step when the pointers are
  // aligned and one at a time otherwise and for the last n % 4: both paths, against the host's
  // rounding (special values included) and against launch_swiglu + launch_f32_to_bf16.
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  std::vector<float> x = randn(4103, 20, 30.0f);
  const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 3.4e38f, -3.4e38f, INFINITY, -INFINITY, NAN, 1.00390625f,
                            1.01171875f, 88.0f, -88.0f, -104.0f};
  std::copy(std::begin(specials), std::end(specials), x.begin() + 1);
  const std::vector<float> up = randn(x.size(), 21);
  const BackendBuffer dx = to_device(gpu, x), dup = to_device(gpu, up);
  gpu.synchronize();
  for (const int64_t offset : {0, 1, 2}) {  // floats past the 16-byte aligned start
    for (const int64_t n : {int64_t(4096), int64_t(4101), int64_t(3), int64_t(1)}) {
      const int64_t elements = std::min<int64_t>(n, int64_t(x.size()) - offset);
      BackendBuffer rounded(gpu, size_t(elements + 1)), fused(gpu, size_t(elements + 1)), act(gpu, size_t(elements));
      BackendBuffer act_rounded(gpu, size_t(elements + 1));
      // out at a 2-byte offset too when the input is misaligned: both vector conditions fail.
      uint16_t* out = reinterpret_cast<uint16_t*>(rounded.data()) + (offset > 0 ? 1 : 0);
      uint16_t* out_fused = reinterpret_cast<uint16_t*>(fused.data()) + (offset > 0 ? 1 : 0);
      cuda::launch_f32_to_bf16(dx.data() + offset, out, elements, nullptr);
      cuda::launch_swiglu_to_bf16(dx.data() + offset, dup.data() + offset, out_fused, elements, nullptr);
      gpu.copy(act.data(), dx.data() + offset, size_t(elements));
      gpu.synchronize();
      cuda::launch_swiglu(act.data(), dup.data() + offset, elements, nullptr);
      uint16_t* out_act = reinterpret_cast<uint16_t*>(act_rounded.data());
      const size_t count = static_cast<size_t>(elements);
      std::vector<uint16_t> got(count), got_fused(count), want_fused(count);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(got.data(), out, size_t(elements) * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(got_fused.data(), out_fused, size_t(elements) * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      for (int64_t i = 0; i < elements; ++i) {
        ASSERT_EQ(got[size_t(i)], f32_to_bf16(x[size_t(offset + i)])) << "offset " << offset << " n " << n << " i " << i;
      }
      cuda::launch_f32_to_bf16(act.data(), out_act, elements, nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(want_fused.data(), out_act, size_t(elements) * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      EXPECT_EQ(got_fused, want_fused) << "offset " << offset << " n " << n;
    }
  }
}

TEST(CudaBf16, shared_input_projections_and_swiglu_down_are_the_separate_ops_bit_for_bit) {
  // matmul_weights rounds x once for all its GEMMs and swiglu_matmul_weight rounds the
  // activation as it computes it: the GEMMs see the same bf16 values as with one op each, so
  // the outputs are identical, not just close. Odd sizes take the scalar rounding path.
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  for (const auto& [n, k, ffn] : {std::tuple<int64_t, int64_t, int64_t>{64, 1024, 2816}, {37, 101, 67}, {1, 256, 704}}) {
    const auto x = randn(size_t(n * k), 30);
    const auto wq = to_bf16(randn(size_t(3 * k * k), 31, 0.05f)), wv = to_bf16(randn(size_t(17 * k), 32, 0.05f));
    const BackendBuffer dx = to_device(gpu, x), dwq = bf16_to_device(gpu, wq), dwv = bf16_to_device(gpu, wv);
    BackendBuffer q(gpu, size_t(n * 3 * k)), v(gpu, size_t(n * 17)), q_want(gpu, size_t(n * 3 * k)), v_want(gpu, size_t(n * 17));
    const Backend::Projection both[] = {{{dwq.data(), DType::BF16}, 3 * k, q.data()}, {{dwv.data(), DType::BF16}, 17, v.data()}};
    gpu.matmul_weights(dx.data(), n, k, both);
    gpu.matmul_weight(dx.data(), {dwq.data(), DType::BF16}, n, k, 3 * k, q_want.data());
    gpu.matmul_weight(dx.data(), {dwv.data(), DType::BF16}, n, k, 17, v_want.data());
    EXPECT_EQ(to_host(gpu, q.data(), size_t(n * 3 * k)), to_host(gpu, q_want.data(), size_t(n * 3 * k))) << n << " " << k;
    EXPECT_EQ(to_host(gpu, v.data(), size_t(n * 17)), to_host(gpu, v_want.data(), size_t(n * 17))) << n << " " << k;

    const auto gate = randn(size_t(n * ffn), 33, 3.0f), up = randn(size_t(n * ffn), 34);
    const auto wd = to_bf16(randn(size_t(k * ffn), 35, 0.05f));
    const BackendBuffer dgate = to_device(gpu, gate), dup = to_device(gpu, up), dwd = bf16_to_device(gpu, wd);
    BackendBuffer act = to_device(gpu, gate), out(gpu, size_t(n * k)), want(gpu, size_t(n * k));
    gpu.swiglu_matmul_weight(dgate.data(), dup.data(), {dwd.data(), DType::BF16}, n, ffn, k, out.data());
    gpu.swiglu(act.data(), dup.data(), n * ffn);
    gpu.matmul_weight(act.data(), {dwd.data(), DType::BF16}, n, ffn, k, want.data());
    EXPECT_EQ(to_host(gpu, out.data(), size_t(n * k)), to_host(gpu, want.data(), size_t(n * k))) << n << " " << ffn;
  }
}

// `count` bf16 values (raw bits) from device memory.
std::vector<uint16_t> bf16_from_device(const uint16_t* device, size_t count) {
  std::vector<uint16_t> host(count);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), device, count * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

TEST(CudaBf16, swiglu_of_fused_bf16_rows_is_widen_swiglu_round_bit_for_bit) {
  // launch_swiglu_rows_bf16 reads the fused gate/up GEMM's bf16 rows [gate | up]: eight columns
  // a step when ffn % 8 == 0 and both pointers are 16-byte aligned, one at a time otherwise.
  // Both paths against widening the halves to f32, launch_swiglu, then launch_f32_to_bf16.
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  for (const auto& [n, ffn, offset] : {std::tuple<int64_t, int64_t, int64_t>{5, 64, 0}, {3, 67, 0}, {4, 64, 1},
                                       {2, 14336, 0}, {70, 8, 0}}) {
    std::vector<float> values = randn(size_t(n * 2 * ffn), 40, 4.0f);
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.0f, -104.0f, 3e38f};
    std::copy(std::begin(specials), std::end(specials), values.begin());
    const std::vector<uint16_t> rows = to_bf16(values);  // (n, 2 * ffn)
    std::vector<uint16_t> padded(size_t(offset), 0);     // `offset` bf16 values before the rows
    padded.insert(padded.end(), rows.begin(), rows.end());
    const BackendBuffer d_rows = bf16_to_device(gpu, padded);
    BackendBuffer out(gpu, size_t(n * ffn / 2 + 8));
    const uint16_t* in = reinterpret_cast<const uint16_t*>(d_rows.data()) + offset;
    uint16_t* got_at = reinterpret_cast<uint16_t*>(out.data()) + offset;
    gpu.synchronize();
    cuda::launch_swiglu_rows_bf16(in, n, ffn, got_at, nullptr);
    const std::vector<uint16_t> got = bf16_from_device(got_at, size_t(n * ffn));

    const std::vector<float> wide = from_bf16(rows);
    std::vector<float> gate(size_t(n * ffn)), up(size_t(n * ffn));
    for (int64_t r = 0; r < n; ++r) {
      std::copy_n(wide.begin() + r * 2 * ffn, ffn, gate.begin() + r * ffn);
      std::copy_n(wide.begin() + r * 2 * ffn + ffn, ffn, up.begin() + r * ffn);
    }
    const BackendBuffer d_gate = to_device(gpu, gate), d_up = to_device(gpu, up);
    BackendBuffer want_buf(gpu, size_t(n * ffn / 2 + 1));
    gpu.synchronize();
    cuda::launch_swiglu(d_gate.data(), d_up.data(), n * ffn, nullptr);
    uint16_t* want_at = reinterpret_cast<uint16_t*>(want_buf.data());
    cuda::launch_f32_to_bf16(d_gate.data(), want_at, n * ffn, nullptr);
    const std::vector<uint16_t> want = bf16_from_device(want_at, size_t(n * ffn));
    EXPECT_EQ(got, want) << "n " << n << " ffn " << ffn << " offset " << offset;
  }
}

TEST(CudaBf16, norms_written_in_bf16_are_the_f32_norms_rounded_bit_for_bit) {
  // launch_rmsnorm_bf16 and launch_add_rmsnorm_bf16 write the norm as the GEMM reads it; the
  // f32 kernels then launch_f32_to_bf16 must give the same bits, and the add the same x.
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  for (const auto& [n, dim] : {std::pair<int64_t, int64_t>{3, 4096}, {1, 4096}, {5, 101}}) {
    const auto x = randn(size_t(n * dim), 50, 3.0f), h = randn(size_t(n * dim), 51), w = randn(size_t(dim), 52);
    const BackendBuffer dx = to_device(gpu, x), dh = to_device(gpu, h), dw = to_device(gpu, w);
    BackendBuffer x_fused = to_device(gpu, x), x_plain = to_device(gpu, x), normed(gpu, size_t(n * dim));
    BackendBuffer got_buf(gpu, size_t(n * dim)), want_buf(gpu, size_t(n * dim));
    uint16_t* got = reinterpret_cast<uint16_t*>(got_buf.data());
    uint16_t* want = reinterpret_cast<uint16_t*>(want_buf.data());
    gpu.synchronize();
    cuda::launch_rmsnorm_bf16(dx.data(), dw.data(), n, dim, 1e-5f, got, nullptr);
    cuda::launch_rmsnorm(dx.data(), dw.data(), n, dim, 1e-5f, normed.data(), nullptr);
    cuda::launch_f32_to_bf16(normed.data(), want, n * dim, nullptr);
    EXPECT_EQ(bf16_from_device(got, size_t(n * dim)), bf16_from_device(want, size_t(n * dim))) << n << " " << dim;

    cuda::launch_add_rmsnorm_bf16(x_fused.data(), dh.data(), dw.data(), n, dim, 1e-5f, got, nullptr);
    cuda::launch_add_rmsnorm(x_plain.data(), dh.data(), dw.data(), n, dim, 1e-5f, normed.data(), nullptr);
    cuda::launch_f32_to_bf16(normed.data(), want, n * dim, nullptr);
    EXPECT_EQ(bf16_from_device(got, size_t(n * dim)), bf16_from_device(want, size_t(n * dim))) << n << " " << dim;
    EXPECT_EQ(to_host(gpu, x_fused.data(), size_t(n * dim)), to_host(gpu, x_plain.data(), size_t(n * dim)));
  }
}

// A layer's MLP weights in bf16 on the device as the loader holds them: gate over up in one
// buffer (gate_up), gate and up views of it, down apart.
struct DeviceMlp {
  BackendBuffer gate_up, down;
  Backend::MlpWeights weights(int64_t ffn, int64_t hidden, bool fused) const {
    const float* g = gate_up.data();
    const float* u = g + ffn * hidden / 2;  // two bf16 values per float (ffn * hidden is even here)
    return {{g, DType::BF16}, {u, DType::BF16}, {fused ? g : nullptr, DType::BF16}, {down.data(), DType::BF16}};
  }
};

DeviceMlp device_mlp(Backend& gpu, int64_t hidden, int64_t ffn, uint32_t seed) {
  return {bf16_to_device(gpu, to_bf16(randn(size_t(2 * ffn * hidden), seed, 0.05f))),
          bf16_to_device(gpu, to_bf16(randn(size_t(hidden * ffn), seed + 1, 0.05f)))};
}

TEST(CudaBf16, mlp_of_fused_bf16_gate_up_is_close_to_f32_gate_and_up) {
  // Past one row, mlp runs one GEMM of gate_up with bf16 results and the activation from those:
  // gate and up take one rounding more than in the default (f32 gate and up, Backend::mlp), so
  // the two agree to bf16 rounding (~2^-9 of an element), far from the O(1) of a wrong layout.
  // One row goes to the fused GEMV, which gives the separate GEMVs' results exactly.
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  for (const auto& [n, hidden, ffn] : {std::tuple<int64_t, int64_t, int64_t>{64, 256, 704}, {9, 128, 36}, {1, 256, 704}}) {
    const DeviceMlp w = device_mlp(gpu, hidden, ffn, 60);
    const BackendBuffer x = to_device(gpu, randn(size_t(n * hidden), 62));
    BackendBuffer scratch(gpu, size_t(n * 2 * ffn)), got(gpu, size_t(n * hidden)), want(gpu, size_t(n * hidden));
    gpu.mlp(x.data(), w.weights(ffn, hidden, true), n, hidden, ffn, scratch.data(), got.data());
    gpu.mlp(x.data(), w.weights(ffn, hidden, false), n, hidden, ffn, scratch.data(), want.data());
    const auto g = to_host(gpu, got.data(), size_t(n * hidden)), v = to_host(gpu, want.data(), size_t(n * hidden));
    if (n == 1) {
      EXPECT_EQ(g, v);
    } else {
      const double err = scaled_max_error(g, v);
      EXPECT_LT(err, 1e-2) << n << " " << ffn;
      EXPECT_GT(err, 0.0) << "the bf16 path did not run";  // one rounding more must show somewhere
    }
    // out over x, as the model calls it: the same values.
    BackendBuffer x_again = to_device(gpu, to_host(gpu, x.data(), size_t(n * hidden)));
    gpu.mlp(x_again.data(), w.weights(ffn, hidden, true), n, hidden, ffn, scratch.data(), x_again.data());
    EXPECT_EQ(to_host(gpu, x_again.data(), size_t(n * hidden)), g);
  }
}

TEST(CudaBf16, norm_folded_into_projections_and_mlp_gives_the_separate_ops_bit_for_bit) {
  // norm_matmul_weights and norm_mlp write the norm straight in bf16 for their GEMMs, the bits
  // matmul_weights and mlp round it to: against the base class's composition (add_rmsnorm or
  // rmsnorm, then the op) on the same backend, outputs and residual identical.
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  for (const auto& [n, hidden, ffn] : {std::tuple<int64_t, int64_t, int64_t>{48, 256, 704}, {7, 128, 36}, {1, 128, 64}}) {
    const auto x0 = randn(size_t(n * hidden), 70, 2.0f), h0 = randn(size_t(n * hidden), 71);
    const BackendBuffer norm_w = to_device(gpu, randn(size_t(hidden), 72));
    const BackendBuffer wq = bf16_to_device(gpu, to_bf16(randn(size_t(2 * hidden * hidden), 73, 0.05f)));
    const BackendBuffer wv = bf16_to_device(gpu, to_bf16(randn(size_t(18 * hidden), 74, 0.05f)));
    const DeviceMlp mlp = device_mlp(gpu, hidden, ffn, 75);
    for (const bool with_add : {true, false}) {
      BackendBuffer x_got = to_device(gpu, x0), x_want = to_device(gpu, x0);
      BackendBuffer h_got = to_device(gpu, h0), h_want = to_device(gpu, h0);
      BackendBuffer q_got(gpu, size_t(n * 2 * hidden)), q_want(gpu, size_t(n * 2 * hidden));
      BackendBuffer v_got(gpu, size_t(n * 18)), v_want(gpu, size_t(n * 18));
      const auto projections = [&](BackendBuffer& q, BackendBuffer& v) {
        return std::vector<Backend::Projection>{{{wq.data(), DType::BF16}, 2 * hidden, q.data()},
                                                {{wv.data(), DType::BF16}, 18, v.data()}};
      };
      const Backend::ResidualNorm got_norm{x_got.data(), with_add ? h_got.data() : nullptr, norm_w.data(), 1e-5f,
                                           h_got.data()};
      const Backend::ResidualNorm want_norm{x_want.data(), with_add ? h_want.data() : nullptr, norm_w.data(), 1e-5f,
                                            h_want.data()};
      gpu.norm_matmul_weights(got_norm, n, hidden, projections(q_got, v_got));
      gpu.Backend::norm_matmul_weights(want_norm, n, hidden, projections(q_want, v_want));
      EXPECT_EQ(to_host(gpu, q_got.data(), q_got.size()), to_host(gpu, q_want.data(), q_want.size())) << n;
      EXPECT_EQ(to_host(gpu, v_got.data(), v_got.size()), to_host(gpu, v_want.data(), v_want.size())) << n;
      EXPECT_EQ(to_host(gpu, x_got.data(), x_got.size()), to_host(gpu, x_want.data(), x_want.size())) << n;

      // The MLP after it, its output over h as the model's: h reset to the same values first.
      gpu.upload(h_got.data(), h0.data(), h0.size());
      gpu.upload(h_want.data(), h0.data(), h0.size());
      BackendBuffer scratch(gpu, size_t(n * 2 * ffn));
      gpu.norm_mlp(got_norm, n, hidden, mlp.weights(ffn, hidden, true), ffn, scratch.data(), h_got.data());
      gpu.Backend::norm_mlp(want_norm, n, hidden, mlp.weights(ffn, hidden, true), ffn, scratch.data(), h_want.data());
      EXPECT_EQ(to_host(gpu, h_got.data(), h_got.size()), to_host(gpu, h_want.data(), h_want.size())) << n;
      EXPECT_EQ(to_host(gpu, x_got.data(), x_got.size()), to_host(gpu, x_want.data(), x_want.size())) << n;
    }
  }
}

TEST(CudaBf16, f32_weights_through_matmul_weight_are_plain_matmul) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  const auto x = randn(7 * 33, 1), w = randn(19 * 33, 2, 0.1f);
  const BackendBuffer dx = to_device(gpu, x), dw = to_device(gpu, w);
  BackendBuffer a(gpu, 7 * 19), b(gpu, 7 * 19);
  gpu.matmul(dx.data(), dw.data(), 7, 33, 19, a.data());
  gpu.matmul_weight(dx.data(), {dw.data(), DType::F32}, 7, 33, 19, b.data());
  EXPECT_EQ(to_host(gpu, a.data(), 7 * 19), to_host(gpu, b.data(), 7 * 19));
  EXPECT_THROW(gpu.matmul_weight(dx.data(), {dw.data(), DType::F16}, 7, 33, 19, b.data()), Error);
}

TEST(CudaBf16, embed_reads_bf16_rows_exactly) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  const int64_t vocab = 301, dim = 77, n = 9;  // odd dim: rows start at odd bf16 offsets
  const auto table = to_bf16(randn(size_t(vocab * dim), 4));
  const std::vector<int32_t> ids = {0, 300, 5, 5, 17, 299, 1, 150, 42};
  const BackendBuffer dtable = bf16_to_device(gpu, table);
  BackendBuffer dids(gpu, ids.size()), dout(gpu, size_t(n * dim));
  gpu.upload(dids.data(), reinterpret_cast<const float*>(ids.data()), ids.size());
  gpu.embed_weight({dtable.data(), DType::BF16}, reinterpret_cast<const int32_t*>(dids.data()), n, dim, dout.data());
  const std::vector<float> got = to_host(gpu, dout.data(), size_t(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < dim; ++d) {
      ASSERT_EQ(got[size_t(i * dim + d)], bf16_to_f32(table[size_t(ids[size_t(i)] * dim + d)])) << i << " " << d;
    }
  }
}

TEST(CudaBf16, upload_bytes_copies_and_counts_odd_byte_counts) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  const std::vector<uint16_t> v = {1, 2, 3, 4, 5, 6, 7};  // 14 bytes: 3.5 floats
  BackendBuffer buf(gpu, 4);
  const uint64_t before = gpu.stats().h2d_bytes;
  gpu.upload_bytes(buf.data(), v.data(), 14);
  EXPECT_EQ(gpu.stats().h2d_bytes, before + 14);
  std::vector<uint16_t> back(8, 99);
  gpu.download(reinterpret_cast<float*>(back.data()), buf.data(), 4);
  EXPECT_EQ(std::vector<uint16_t>(back.begin(), back.begin() + 7), v);
  EXPECT_EQ(back[7], 0);  // the rest of the zeroed allocation
}

std::string write_tiny_bf16_config() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ltri_cuda_bf16_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 1000,
    "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
    "torch_dtype": "bfloat16"})";
  return dir.string();
}

TEST(CudaBf16, random_bf16_model_runs_in_bf16_with_logits_close_to_the_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  const std::string dir = write_tiny_bf16_config();
  ModelLoadOptions o;
  o.random_weights = true;
  o.random_seed = 11;
  o.threads = 0;
  const std::unique_ptr<Model> cpu = Model::load(dir, o);
  o.device = Device::Cuda;
  const std::unique_ptr<Model> gpu = Model::load(dir, o);
  o.weights = WeightPrecision::F32;
  const std::unique_ptr<Model> gpu_f32 = Model::load(dir, o);
  std::filesystem::remove_all(dir);

  const auto& w = dynamic_cast<const LlamaModel&>(*gpu).weights();
  EXPECT_EQ(w.layers[0].wq.dtype, DType::BF16);
  EXPECT_EQ(w.embed.dtype, DType::BF16);
  EXPECT_EQ(dynamic_cast<const LlamaModel&>(*gpu_f32).weights().layers[0].wq.dtype, DType::F32);
  // Matrices at 2 bytes instead of 4; the 5 norms of 256 stay f32.
  const size_t norms = 5 * 256 * 4;
  EXPECT_EQ(gpu->weight_bytes() - norms, (cpu->weight_bytes() - norms) / 2);

  std::vector<int32_t> prompt(200);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % 1000);
  SessionOptions s;
  s.max_context = 512;
  s.chunk = 64;
  const size_t vocab = 1000;
  std::vector<float> want(prompt.size() * vocab), got(prompt.size() * vocab), got_f32(prompt.size() * vocab);
  std::vector<float> last(vocab);
  cpu->new_session(s)->forward(prompt, last.data(), want.data());
  gpu->new_session(s)->forward(prompt, last.data(), got.data());
  gpu_f32->new_session(s)->forward(prompt, last.data(), got_f32.data());
  // Same weight values on both devices (bf16-rounded random samples): with f32 weights on the
  // GPU only the order of f32 sums differs (CudaModel's 1e-3); with bf16 weights every GEMM
  // input is also rounded to bf16 (~0.1% rms per GEMM, ~10 GEMMs deep here), so 5% of the
  // largest logit bounds it while a wrong weight layout or dtype gives O(1).
  EXPECT_LT(scaled_max_error(got_f32, want), 1e-3);
  EXPECT_LT(scaled_max_error(got, want), 5e-2);

  // bf16 weights hold q/k/v and gate/up fused (views of one buffer each), f32 ones apart.
  const LayerWeights& L = w.layers[1];
  ASSERT_GT(L.qkv.numel, 0u);
  ASSERT_GT(L.gate_up.numel, 0u);
  // Offsets in floats: two bf16 values per float.
  const auto floats = [](const MatrixWeight& m) { return static_cast<const float*>(m.ref().data); };
  EXPECT_EQ(floats(L.wq), floats(L.qkv));
  EXPECT_EQ(floats(L.wk), floats(L.qkv) + L.wq.numel / 2);
  EXPECT_EQ(floats(L.wv), floats(L.qkv) + (L.wq.numel + L.wk.numel) / 2);
  EXPECT_EQ(floats(L.w_up), floats(L.gate_up) + L.w_gate.numel / 2);
  EXPECT_EQ(dynamic_cast<const LlamaModel&>(*gpu_f32).weights().layers[1].qkv.numel, 0u);
  // Decode steps (one token: the fused GEMVs) after a prefill stay with the CPU as the chunks do.
  const std::vector<int32_t> head(prompt.begin(), prompt.end() - 3);
  std::vector<float> cpu_last(vocab), gpu_last(vocab);
  const auto cpu_s = cpu->new_session(s), gpu_s = gpu->new_session(s);
  cpu_s->forward(head, cpu_last.data(), nullptr);
  gpu_s->forward(head, gpu_last.data(), nullptr);
  for (size_t i = prompt.size() - 3; i < prompt.size(); ++i) {
    const std::vector<int32_t> one = {prompt[i]};
    cpu_s->forward(one, cpu_last.data(), nullptr);
    gpu_s->forward(one, gpu_last.data(), nullptr);
    EXPECT_LT(scaled_max_error(gpu_last, cpu_last), 5e-2) << "decode step at " << i;
  }
}

TEST(CudaBf16, gpu_memory_check_refuses_what_cannot_fit_in_one_line) {
  LTRI_SKIP_WITHOUT_CUDA();
  const std::string dir = write_tiny_bf16_config();
  ModelLoadOptions o;
  o.random_weights = true;
  o.device = Device::Cuda;
  SessionOptions huge;
  huge.max_context = int64_t(1) << 40;  // full attention: 2 layers x 2^40 tokens x 1 KiB = 2 PiB of KV
  o.planned_session = huge;
  try {
    (void)Model::load(dir, o);
    FAIL() << "loaded a model whose planned session cannot fit";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("--device cuda: needs ", 0), 0u) << what;
    EXPECT_NE(what.find("GiB free"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  o.planned_session.reset();
  const std::unique_ptr<Model> model = Model::load(dir, o);  // weights alone fit
  std::filesystem::remove_all(dir);
  EXPECT_THROW((void)model->new_session(huge), Error);  // each session checks its own KV
  SessionOptions small;
  small.max_context = 512;
  EXPECT_NO_THROW((void)model->new_session(small));
}

}  // namespace
}  // namespace ltri
