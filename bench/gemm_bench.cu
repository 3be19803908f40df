// The prefill GEMMs of the Llama-3-8B shape alone: cublasGemmEx as the CUDA backend calls it
// (CUBLAS_GEMM_DEFAULT) against every algorithm cublasLt's heuristic offers for the same
// problem, TFLOP/s each, to tell whether choosing the algorithm by measurement would pay.
// Usage: ltri_gemm_bench [rows]   (rows: the prefill chunk, default 2048)
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_bench_util.cuh"

namespace {

using ltri::fail;

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(what, ": cuBLAS status ", int(s));
}

struct Shape {
  const char* name;
  int64_t m, k;  // out (n, m) = x (n, k) . w^T, w (m, k)
  bool bf16_out;
};

}  // namespace

int main(int argc, char** argv) try {
  long long rows = 2048;
  if (argc > 1 && (!ltri::bench::parse_integer(argv[1], &rows) || rows < 1)) fail("rows: not a positive integer: ", argv[1]);
  const int64_t n = rows;
  const Shape shapes[] = {{"q", 4096, 4096, false},        {"k or v", 1024, 4096, false}, {"o", 4096, 4096, false},
                          {"gate+up", 28672, 4096, true},  {"gate or up", 14336, 4096, false},
                          {"down", 4096, 14336, false}};
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  check(cublasCreate(&blas), "cublasCreate");
  check(cublasLtCreate(&lt), "cublasLtCreate");
  const size_t workspace_bytes = size_t(64) << 20;
  void* workspace = nullptr;
  LTRI_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
  // bf16 operands: random floats reinterpreted as pairs of bf16 values are sane numbers too.
  const int64_t max_k = 14336, max_m = 28672;
  float* w = ltri::bench::device_random(max_m * max_k / 2, 1, 0.1f);
  float* x = ltri::bench::device_random(n * max_k / 2, 2, 1.0f);
  float* out = ltri::bench::device_random(n * max_m, 3, 1.0f);
  std::printf("| gemm | n | m | k | out | cublasGemmEx TFLOP/s | best cublasLt TFLOP/s (algo of %s) | algos tried |\n", "heuristic rank");
  std::printf("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n");
  for (const Shape& s : shapes) {
    const double flops = 2.0 * double(n) * double(s.m) * double(s.k);
    const float alpha = 1.0f, beta = 0.0f;
    const cudaDataType out_type = s.bf16_out ? CUDA_R_16BF : CUDA_R_32F;
    const float ms_ex = ltri::bench::mean_call_ms([&] {
      check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(s.m), int(n), int(s.k), &alpha, w, CUDA_R_16BF, int(s.k), x,
                         CUDA_R_16BF, int(s.k), &beta, out, out_type, int(s.m), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    }, 20);
    // The same problem for cublasLt: column-major out^T (m, n) = w^T . x^T.
    cublasLtMatmulDesc_t desc;
    check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)), "transa");
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)), "transb");
    cublasLtMatrixLayout_t a_layout, b_layout, c_layout;
    check(cublasLtMatrixLayoutCreate(&a_layout, CUDA_R_16BF, uint64_t(s.k), uint64_t(s.m), s.k), "a");
    check(cublasLtMatrixLayoutCreate(&b_layout, CUDA_R_16BF, uint64_t(s.k), uint64_t(n), s.k), "b");
    check(cublasLtMatrixLayoutCreate(&c_layout, out_type, uint64_t(s.m), uint64_t(n), s.m), "c");
    cublasLtMatmulPreference_t pref;
    check(cublasLtMatmulPreferenceCreate(&pref), "pref");
    check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                               sizeof(workspace_bytes)), "pref workspace");
    cublasLtMatmulHeuristicResult_t results[32];
    int found = 0;
    check(cublasLtMatmulAlgoGetHeuristic(lt, desc, a_layout, b_layout, c_layout, c_layout, pref, 32, results, &found),
          "heuristic");
    float best = 1e30f;
    int best_rank = -1;
    for (int i = 0; i < found; ++i) {
      const float ms = ltri::bench::mean_call_ms([&] {
        check(cublasLtMatmul(lt, desc, &alpha, w, a_layout, x, b_layout, &beta, out, c_layout, out, c_layout,
                             &results[i].algo, workspace, workspace_bytes, nullptr), "cublasLtMatmul");
      }, 20);
      if (ms < best) best = ms, best_rank = i;
    }
    std::printf("| %s | %lld | %lld | %lld | %s | %.1f | %.1f (%d) | %d |\n", s.name, (long long)n, (long long)s.m,
                (long long)s.k, s.bf16_out ? "bf16" : "f32", flops / ms_ex / 1e9, flops / best / 1e9, best_rank, found);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(a_layout);
    cublasLtMatrixLayoutDestroy(b_layout);
    cublasLtMatrixLayoutDestroy(c_layout);
    cublasLtMatmulDescDestroy(desc);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
