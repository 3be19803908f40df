// The attention band (cuda_band.cu: rotation, scores, softmax, votes, segmentation rows) without
// the policy around it: a chunk of n queries over the band of `width` keys before each, at the
// Llama-3-8B shape (32 heads, 8 KV heads, head_dim 128) unless told otherwise, the keys starting
// a full band before the chunk as in a long stream. Prints time per call (one whole
// launch_attention_band with segmentation rows, what the ltri policy queues per layer and chunk)
// and the scores' share of FP32 FLOP/s (2 * head_dim per cell of the band). CUDA events around
// repeated calls after one warm-up; random uniform inputs.
//
//   build-gpu/ltri_band_bench                 # chunks of 1, 32, 512, 2048, 16384
//   build-gpu/ltri_band_bench 2048 4096       # chunk sizes
//
// Environment: LTRI_BENCH_HEADS=32,8,128 (heads, KV heads, head_dim), LTRI_BENCH_WIDTH=256,
// LTRI_BENCH_REPS=20.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/cuda/cuda_band_kernels.hpp"
#include "kernels/cuda/cuda_check.hpp"
#include "cuda_bench_util.cuh"

namespace {

using ltri::bench::env_count;
using ltri::bench::parse_integer;

void run(int argc, char** argv) {
  long long heads = 32, kv_heads = 8, head_dim = 128;
  if (const char* h = std::getenv("LTRI_BENCH_HEADS")) {
    if (std::sscanf(h, "%lld,%lld,%lld", &heads, &kv_heads, &head_dim) != 3 || heads < 1 || kv_heads < 1 ||
        heads % kv_heads != 0 || !ltri::cuda::band_supports_head_dim(head_dim)) {
      ltri::fail("band_bench: LTRI_BENCH_HEADS='", h, "' is not heads,kv_heads,head_dim (head_dim 64 or 128)");
    }
  }
  const long long width = env_count("band_bench", "LTRI_BENCH_WIDTH", 256, 4096);
  const int reps = int(env_count("band_bench", "LTRI_BENCH_REPS", 20, 10000));
  std::vector<long long> chunks;
  for (int i = 1; i < argc; ++i) {
    long long n = 0;
    if (!parse_integer(argv[i], &n) || n < 1 || n > (1 << 20)) ltri::fail("band_bench: chunk '", argv[i], "' is not 1..2^20");
    chunks.push_back(n);
  }
  if (chunks.empty()) chunks = {1, 32, 512, 2048, 16384};

  cudaDeviceProp prop{};
  LTRI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s; heads %lld, KV heads %lld, head_dim %lld, width %lld; %d timed calls per row\n\n", prop.name, heads,
              kv_heads, head_dim, width, reps);
  std::printf("| queries | ms per call | scores' TFLOP/s over the call |\n| ---: | ---: | ---: |\n");
  cudaEvent_t start, stop;
  LTRI_CUDA_CHECK(cudaEventCreate(&start));
  LTRI_CUDA_CHECK(cudaEventCreate(&stop));
  for (const long long n : chunks) {
    const long long n_keys = n + width - 1;  // the band's first key a full width before the chunk
    float *cos_table = nullptr, *sin_table = nullptr;
    ltri::bench::rope_tables(n_keys, head_dim, &cos_table, &sin_table);
    float* q = ltri::bench::device_random(n * heads * head_dim, 1, 2.0f);
    float* keys = ltri::bench::device_random(n_keys * kv_heads * head_dim, 2, 2.0f);
    ltri::cuda::BandArgs a;
    a.q = q;
    a.keys = keys;
    a.n = n;
    a.first_query = width - 1;
    a.first_key = 0;
    a.n_heads = heads;
    a.n_kv_heads = kv_heads;
    a.head_dim = head_dim;
    a.width = width;
    a.seg_head = -1;
    a.want_seg = true;
    a.cos = cos_table;
    a.sin = sin_table;
    float* scratch = nullptr;
    LTRI_CUDA_CHECK(cudaMalloc(&scratch, ltri::cuda::band_scratch_floats(a) * sizeof(float)));
    ltri::cuda::launch_attention_band(a, scratch, nullptr);  // warm-up
    LTRI_CUDA_CHECK(cudaEventRecord(start));
    for (int r = 0; r < reps; ++r) ltri::cuda::launch_attention_band(a, scratch, nullptr);
    LTRI_CUDA_CHECK(cudaEventRecord(stop));
    LTRI_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    LTRI_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    ms /= float(reps);
    const double flops = 2.0 * double(head_dim) * double(heads) * double(n) * double(width);
    std::printf("| %lld | %.4f | %.1f |\n", n, ms, flops / (double(ms) * 1e9));
    for (float* p : {q, keys, scratch, cos_table, sin_table}) LTRI_CUDA_CHECK(cudaFree(p));
  }
  LTRI_CUDA_CHECK(cudaEventDestroy(start));
  LTRI_CUDA_CHECK(cudaEventDestroy(stop));
}

}  // namespace

int main(int argc, char** argv) { return ltri::bench::run_main(run, argc, argv); }
