#pragma once
// The results of an `ltri eval` run: its configuration and every sample, as JSON (written by
// the run, read back by later tools such as the heat-map plot) and as Markdown tables.
//
// JSON (docs/eval.md has the full schema):
//   {"format": "ltri-eval", "version": 6,
//    "config": {"command", "tasks", "model", "attention": {...every --attn-* option...},
//               "lengths", "depths", "samples", "seed", ...},
//    "samples": [{"task", "length", "tokens", "depth", "index", "expected", "output", "score",
//                 "correct", "prefill_ms", "decode_ms", "peak_rss_bytes", "kv_bytes", ...}],
//    "wall_s": 12.3}
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/attention_options.hpp"

namespace ltri::eval {

struct EvalConfig {
  std::string command;             // "passkey", "niah" or "report"
  std::vector<std::string> tasks;  // task names run
  // KV policies run: one for passkey/niah (= attention.policy), the grid's for report.
  std::vector<std::string> policies;
  std::string model_dir;
  std::string architecture;
  int64_t max_position_embeddings = 0;
  AttentionOptions attention;
  std::vector<int64_t> lengths;  // requested prompt lengths, tokens
  std::vector<double> depths;    // needle depths, fractions of the haystack
  int64_t samples = 0;           // per (task, length, depth) cell
  uint64_t seed = 0;
  std::string prompt_template;  // "plain" or "chat:<format>"
  std::string question_placement = "after_context";
  int64_t chunk = 0;           // prefill chunk (-b)
  int64_t threads = 0;         // OpenMP threads used
  int64_t max_new_tokens = 0;  // -n; 0: per task (the answer's length plus slack)
  int64_t context = 0;         // -c; 0: each sample's prompt plus its new tokens
  std::string haystack;        // prose source (file or directory)
  std::string words;           // word list for keys
  std::string device;
};

struct SampleResult {
  std::string policy;  // the KV policy it ran under
  std::string task;
  int64_t length = 0;  // requested
  int64_t tokens = 0;  // the prompt's actual tokens
  double depth = 0;    // requested
  std::vector<double> needle_depths;  // measured, of the target needles
  int64_t index = 0;                  // sample number within its cell
  std::vector<std::string> expected;
  std::string output;
  std::string scoring;  // "first_number" or "string_match_all"
  double score = 0;     // 0..1 (string_match_all can give partial credit)
  bool correct = false;  // score == 1
  double prefill_ms = 0;
  double decode_ms = 0;
  int64_t generated_tokens = 0;
  std::string stop_reason;
  int64_t context = 0;  // the session's max_context
  size_t peak_rss_bytes = 0;
  size_t kv_bytes = 0;       // KV cache at the end (backend memory)
  size_t kv_host_bytes = 0;  // evicted KV the streaming policies keep in host memory
  bool haystack_repeated = false;
};

struct EvalReport {
  EvalConfig config;
  std::vector<SampleResult> samples;
  double wall_s = 0;
};

nlohmann::json report_to_json(const EvalReport& report);
nlohmann::json config_to_json(const EvalConfig& config);
// Throws ltri::Error naming the field that is missing or of the wrong type. Version 1 files
// (before the policy grid) read with policies = {attention.policy} and kv_host_bytes 0.
EvalReport report_from_json(const nlohmann::json& json);
// Reads and parses a results file; throws ltri::Error naming the path.
EvalReport read_report(const std::string& path);

// Writes the JSON to `path` through a temporary file renamed over it, so a reader never sees a
// half-written file. Throws ltri::Error naming the path if it cannot be written.
void write_report(const EvalReport& report, const std::string& path);

// Accuracy (%) of one task as a table: a row per length, a column per depth, then a row and a
// column of averages over samples.
std::string markdown_depth_table(const EvalReport& report, const std::string& task);
// Accuracy (%) of every task: a row per length, a column per task, depths averaged.
std::string markdown_task_table(const EvalReport& report);

// The samples of one policy (and the same configuration).
EvalReport samples_of_policy(const EvalReport& report, const std::string& policy);

// "25%", "33.3%".
std::string format_depth(double depth);

}  // namespace ltri::eval
