#pragma once
// How `ltri bench` prints its tests: a llama-bench style markdown table (one row per test), or
// one JSON document holding every field (`-o json`, the form bench/compare_sdpa.py joins with
// bench/sdpa_reference.py's output).
#include <cstdint>
#include <string>
#include <vector>

#include "bench_options.hpp"
#include "bench_runner.hpp"

namespace ltri::cli {

// What is the same for every test of one invocation.
struct BenchSetup {
  std::string model;         // "llama-3-8b (random)"
  std::string architecture;  // "llama"
  bool random_weights = false;
  int64_t params = 0;
  size_t weight_bytes = 0;
  std::string backend;       // "CPU", "CUDA"
  int threads = 0;
  double load_ms = 0.0;
  size_t peak_rss_bytes = 0;  // process peak at the end
};

std::string bench_markdown(const BenchSetup& setup, const std::vector<BenchTest>& tests);
std::string bench_json(const BenchSetup& setup, const BenchOptions& options, const std::vector<BenchTest>& tests);

}  // namespace ltri::cli
