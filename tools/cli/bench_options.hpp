#pragma once
// What `ltri bench` was asked to measure (its flags), and the token-count syntax its -p list
// takes: plain integers or k/m suffixes counted in powers of two (32k = 32768, 1m = 1048576),
// the lengths long-context papers and llama-bench's -p mean.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "kv/attention_options.hpp"

namespace ltri::cli {

// From this prompt length on, a test runs once unless -r is given (a 1M-token prefill takes
// about a minute on a GPU and far longer on a CPU).
constexpr int64_t kLongPromptTokens = 32768;
constexpr int64_t kDefaultRepetitions = 3;

struct BenchOptions {
  std::string model_dir;
  bool random_weights = false;
  std::string config;
  std::vector<int64_t> n_prompt = {512};  // -p: prefill lengths (0 = no prefill, decode from empty)
  int64_t n_gen = 128;                    // -n: decode tokens after each prefill (0 = none)
  int64_t chunk = 512;                    // -b: prefill tokens per forward pass
  int threads = 0;
  int64_t repetitions = 0;                // -r; 0 = the default of repetitions_for()
  std::vector<std::string> policies = {"full"};  // --attn list
  AttentionOptions attention;             // --attn-* parameters, shared by every policy
  std::string output = "md";
  std::string device = "cpu";
  std::string weights = "auto";  // --weights auto|f32|bf16
  bool verbose = false;
};

// Timed runs of a test with `n_prompt` prompt tokens: -r if given, else 3 below
// kLongPromptTokens and 1 from there on.
int64_t repetitions_for(const BenchOptions& options, int64_t n_prompt);

// "4096", "32k", "128K", "1m" -> tokens; false (with `error` saying why) for anything else.
bool parse_token_count(const std::string& text, int64_t& tokens, std::string& error);

// A CLI11 transform for one element of a comma list: rewrites "32k" to "32768" so the option
// stores plain integers, and rejects other text with a message naming the element.
CLI::Validator token_count();

}  // namespace ltri::cli
