// The tensor-core prefill attention kernels (cuda_attention_mma.cu, and cuda_attention_wgmma.cu
// where the GPU and build have it, each shape on both) without the model around it, on
// full-attention plans: a chunk of n queries over `past` earlier keys plus its own causal keys,
// at the Llama-3-8B shape (32 heads, 8 KV heads, head_dim 128) unless told otherwise. Prints time
// per call and TFLOP/s (4 * head_dim FLOPs per (query head, visible key), the causal half counted
// as seen). A call is what the backend runs: the launcher whole, so the bf16 pre-pass of
// K and V, the merge of split parts and the shared-memory opt-in are inside the time (the
// pre-pass is ~1.5% of it at 128K keys). Timing is CUDA events around repeated calls after one
// warm-up. Inputs are random and uniform, so a row's running max settles early and the kernel's
// conditional O rescale is skipped more often than on a model's peaked attention: real chunks
// can be a little slower.
//
//   build-gpu/ltri_attention_bench                      # the default shapes
//   build-gpu/ltri_attention_bench 4096:126976 512:0    # n:past pairs
//
// Environment: LTRI_BENCH_HEADS=32,8,128 (heads, KV heads, head_dim), LTRI_BENCH_REPS=5.
#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"
#include "cuda_bench_util.cuh"

namespace {

using ltri::bench::device_random;
using ltri::bench::parse_integer;
using ltri::bench::rope_tables;
using ltri::cuda::AttentionArgs;
using ltri::cuda::AttentionSegment;

struct Shape {
  int64_t n;     // queries in the chunk
  int64_t past;  // keys before it
};

Shape parse_shape(const std::string& text) {
  const size_t colon = text.find(':');
  long long n = 0, past = -1;
  if (colon == std::string::npos || !parse_integer(text.substr(0, colon), &n) ||
      !parse_integer(text.substr(colon + 1), &past) || n <= 0 || past < 0 || n + past > (1LL << 30)) {
    ltri::fail("attention_bench: shape '", text, "' is not n:past (n >= 1, past >= 0, n + past <= 2^30)");
  }
  return {n, past};
}

// heads,kv_heads,head_dim from LTRI_BENCH_HEADS.
void parse_heads(const char* text, int64_t* heads, int64_t* kv_heads, int64_t* head_dim) {
  long long values[3] = {0, 0, 0};
  std::string rest = text;
  bool ok = true;
  for (int i = 0; i < 3 && ok; ++i) {
    const size_t comma = i < 2 ? rest.find(',') : std::string::npos;
    if (i < 2 && comma == std::string::npos) ok = false;
    if (ok) ok = parse_integer(rest.substr(0, comma), &values[i]) && values[i] > 0;
    if (ok && i < 2) rest = rest.substr(comma + 1);
  }
  if (!ok || values[0] % values[1] != 0) {
    ltri::fail("attention_bench: LTRI_BENCH_HEADS='", text, "' is not heads,kv_heads,head_dim (heads a multiple of kv_heads)");
  }
  *heads = values[0];
  *kv_heads = values[1];
  *head_dim = values[2];
}

void run(int argc, char** argv) {
  int64_t heads = 32, kv_heads = 8, head_dim = 128;
  if (const char* h = std::getenv("LTRI_BENCH_HEADS")) parse_heads(h, &heads, &kv_heads, &head_dim);
  int reps = 5;
  if (const char* r = std::getenv("LTRI_BENCH_REPS")) {
    long long value = 0;
    if (!parse_integer(r, &value) || value < 1 || value > 10000) {
      ltri::fail("attention_bench: LTRI_BENCH_REPS='", r, "' is not a count from 1 to 10000");
    }
    reps = int(value);
  }
  std::vector<Shape> shapes;
  for (int i = 1; i < argc; ++i) shapes.push_back(parse_shape(argv[i]));
  if (shapes.empty()) shapes = {{512, 32256}, {512, 130560}, {2048, 129024}, {4096, 28672}, {4096, 126976}, {16384, 114688}};

  int64_t positions = 0;
  for (const Shape& s : shapes) positions = std::max(positions, s.past + s.n);
  float *cos_table = nullptr, *sin_table = nullptr;
  rope_tables(positions, head_dim, &cos_table, &sin_table);
  int sm_count = 0;
  LTRI_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop{};
  LTRI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 8) {
    ltri::fail("attention_bench: ", prop.name, " is sm_", prop.major, prop.minor, "; the tensor-core kernel needs sm_80 or newer");
  }
  std::printf("%s, %d SMs; heads %ld, KV heads %ld, head_dim %ld; %d timed calls per row\n\n", prop.name, sm_count,
              long(heads), long(kv_heads), long(head_dim), reps);
  std::printf(
      "| kernel | queries | past keys | splits | ms per call | TFLOP/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
  struct Kernel {
    const char* name;
    bool (*supports)(const AttentionArgs&);
    int (*splits)(const AttentionArgs&, int);
    size_t (*scratch_floats)(const AttentionArgs&, int);
    void (*launch)(const AttentionArgs&, int, float*, cudaStream_t);
  };
  std::vector<Kernel> kernels = {{"mma", ltri::cuda::attention_mma_supports, ltri::cuda::attention_mma_splits,
                                  ltri::cuda::attention_mma_scratch_floats, ltri::cuda::launch_attention_mma}};
  if (ltri::cuda::attention_wgmma_available()) {
    kernels.push_back({"wgmma", ltri::cuda::attention_wgmma_supports, ltri::cuda::attention_wgmma_splits,
                       ltri::cuda::attention_wgmma_scratch_floats, ltri::cuda::launch_attention_wgmma});
  }

  cudaEvent_t start, stop;
  LTRI_CUDA_CHECK(cudaEventCreate(&start));
  LTRI_CUDA_CHECK(cudaEventCreate(&stop));
  for (const Shape& shape : shapes) {
    const int64_t keys = shape.past + shape.n;
    float* q = device_random(shape.n * heads * head_dim, 1, 2.0f);
    float* k = device_random(keys * kv_heads * head_dim, 2, 2.0f);
    float* v = device_random(keys * kv_heads * head_dim, 3, 1.0f);
    float* out = nullptr;
    LTRI_CUDA_CHECK(cudaMalloc(&out, size_t(shape.n * heads * head_dim) * sizeof(float)));
    AttentionArgs a;
    a.q = q;
    a.out = out;
    a.n = shape.n;
    a.n_heads = heads;
    a.n_kv_heads = kv_heads;
    a.head_dim = head_dim;
    a.query_first_position = shape.past;
    a.cos = cos_table;
    a.sin = sin_table;
    // The plan FullPolicy makes: earlier keys all visible, then the chunk's own, causal.
    if (shape.past > 0) a.segments[a.n_segments++] = AttentionSegment{k, v, shape.past, 0, 1, -1, 0};
    const int64_t own = shape.past * kv_heads * head_dim;
    a.segments[a.n_segments++] = AttentionSegment{k + own, v + own, shape.n, shape.past, 1, -1, 1};
    for (const Kernel& kernel : kernels) {
      if (!kernel.supports(a)) ltri::fail("attention_bench: the ", kernel.name, " kernel refuses this shape");
      const int splits = kernel.splits(a, sm_count);
      float* scratch = nullptr;
      LTRI_CUDA_CHECK(cudaMalloc(&scratch, kernel.scratch_floats(a, splits) * sizeof(float)));
      kernel.launch(a, splits, scratch, nullptr);  // warm-up
      LTRI_CUDA_CHECK(cudaEventRecord(start));
      for (int r = 0; r < reps; ++r) kernel.launch(a, splits, scratch, nullptr);
      LTRI_CUDA_CHECK(cudaEventRecord(stop));
      LTRI_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      LTRI_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      ms /= float(reps);
      const double seen = double(shape.n) * double(shape.past) + double(shape.n) * double(shape.n + 1) / 2.0;
      const double flops = 4.0 * double(head_dim) * double(heads) * seen;
      std::printf("| %s | %ld | %ld | %d | %.3f | %.1f |\n", kernel.name, long(shape.n), long(shape.past), splits, ms,
                  flops / (double(ms) * 1e9));
      LTRI_CUDA_CHECK(cudaFree(scratch));
    }
    for (float* p : {q, k, v, out}) LTRI_CUDA_CHECK(cudaFree(p));
  }
  LTRI_CUDA_CHECK(cudaEventDestroy(start));
  LTRI_CUDA_CHECK(cudaEventDestroy(stop));
  LTRI_CUDA_CHECK(cudaFree(cos_table));
  LTRI_CUDA_CHECK(cudaFree(sin_table));
}

}  // namespace

int main(int argc, char** argv) { return ltri::bench::run_main(run, argc, argv); }
