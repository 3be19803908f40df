// A measurement, not a test: the wall time of ContextStore::add_unit at the shape of an 8B
// model's ltri prefill (many layers' stores, short spans that keep nearly every key as an index
// vector), printed and never asserted. Disabled by default; run it with
//   LTRI_PROFILE=1 build/tests/ltri_test_kv --gtest_also_run_disabled_tests --gtest_filter='*ContextStoreBench*'
// (LTRI_PROFILE=1 adds the add_unit/slab_alloc and add_unit/index split at exit). The shape
// comes from the environment: LTRI_STORE_BENCH_STORES (32), _SPANS (4000 per store), _TOKENS
// (8 per span), _VECTORS (8 per span), _KV_HEADS (8), _HEAD_DIM (128). The default needs about
// 12 GiB of memory.
//
// Stores are filled the way a prefill fills them: chunk by chunk (512 tokens), every store in
// turn. Two host memories: the CPU backend's (new[]: pages are first touched when written) and
// one that touches every page of a slab when it is allocated, as page-locking (cudaHostAlloc)
// does, so the slab allocation's cost per byte shows on a machine without a GPU.
#include <gtest/gtest.h>

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/timer.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"

namespace ltri {
namespace {

// CPU time of the calling thread (user + system, page faults included), in ms: on a machine
// shared with other work the wall time says more about the load than about add_unit.
double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

int64_t env_or(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::stoll(v) : fallback;
}

// Host memory whose pages are all faulted in at allocation, like page-locked memory.
class TouchingHostBackend : public CpuBackend {
 public:
  TouchingHostBackend() : CpuBackend(1) {}
  float* alloc_host(size_t n_floats) override {
    float* p = CpuBackend::alloc_host(n_floats);
    volatile unsigned char* bytes = reinterpret_cast<unsigned char*>(p);
    for (size_t at = 0; at < n_floats * sizeof(float); at += 4096) bytes[at] = 0;
    return p;
  }
};

void fill_and_time(const char* label, Backend& host_memory) {
  const int64_t n_stores = env_or("LTRI_STORE_BENCH_STORES", 32);
  const int64_t n_spans = env_or("LTRI_STORE_BENCH_SPANS", 4000);
  const int64_t span = env_or("LTRI_STORE_BENCH_TOKENS", 8);
  const int64_t n_vectors = env_or("LTRI_STORE_BENCH_VECTORS", 8);
  const int64_t kv = env_or("LTRI_STORE_BENCH_KV_HEADS", 8);
  const int64_t hd = env_or("LTRI_STORE_BENCH_HEAD_DIM", 128);
  const int64_t spans_per_chunk = std::max<int64_t>(1, 512 / span);

  // One span's K, V (span, kv, hd) and index vectors (kv, n_vectors, hd); the values do not
  // matter to the time, only that they are not all zero.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> k(size_t(span * kv * hd)), v(k.size()), vectors(size_t(kv * n_vectors * hd));
  for (float& x : k) x = uniform(rng);
  for (float& x : v) x = uniform(rng);
  for (float& x : vectors) x = uniform(rng);

  Timer total;
  {
    std::vector<ContextStore> stores;
    for (int64_t s = 0; s < n_stores; ++s) stores.emplace_back(kv, hd, 128, &host_memory);
    double add_ms = 0.0, add_cpu_ms = 0.0;
    for (int64_t done = 0; done < n_spans; done += spans_per_chunk) {
      for (ContextStore& store : stores) {
        Timer t;
        const double cpu0 = thread_cpu_ms();
        for (int64_t i = done; i < std::min(n_spans, done + spans_per_chunk); ++i) {
          store.add_unit(k.data(), v.data(), span, vectors.data(), n_vectors);
        }
        add_ms += t.elapsed_ms();
        add_cpu_ms += thread_cpu_ms() - cpu0;
      }
    }
    size_t bytes = 0;
    for (const ContextStore& store : stores) bytes += store.bytes();
    const double calls = double(n_stores * n_spans);
    std::printf("[store bench] %-22s %lld stores x %lld spans x %lld tokens, %lld vectors, %lld x %lld: "
                "add_unit wall %.1f ms (%.2f us/call), thread CPU %.1f ms (%.2f us/call), store bytes %.2f GiB\n",
                label, (long long)n_stores, (long long)n_spans, (long long)span, (long long)n_vectors,
                (long long)kv, (long long)hd, add_ms, 1000.0 * add_ms / calls, add_cpu_ms, 1000.0 * add_cpu_ms / calls,
                double(bytes) / double(1 << 30));
  }
  std::printf("[store bench] %-22s total with construction and destruction %.1f ms\n", label, total.elapsed_ms());
}

TEST(ContextStoreBench, DISABLED_add_unit_at_the_8b_shape_cpu_host_memory) {
  CpuBackend backend(1);
  fill_and_time("new[] host memory", backend);
}

TEST(ContextStoreBench, DISABLED_add_unit_at_the_8b_shape_pages_touched_on_alloc) {
  TouchingHostBackend backend;
  fill_and_time("touched on alloc", backend);
}

}  // namespace
}  // namespace ltri
