// `ltri bench`, run as a user would: the tests per KV policy and prompt length (a prefill, then
// decode at that depth), the k/m token counts of -p, the memory fields, and one-line errors for
// bad lists, unknown policies and requests that cannot run. Checked against what the config
// implies (token counts, KV sizes), never against timings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/model_config.hpp"
#include "run_process.hpp"
#include "runtime/model_info.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

using test::ProcessResult;

std::string tiny_config() { return test::fixtures_dir() + "/tiny/llama_gqa_bf16/config.json"; }
std::string demo_dir() { return test::source_dir() + "/models/ltri-demo"; }

ProcessResult ltri(const std::vector<std::string>& args) {
  return test::run_process(test::ltri_binary(), args, {{"LTRI_MODEL_DIR", "", true}});
}

// `ltri bench --random-weights --config <tiny> -o json -r 1 -t 1 <args>`, parsed.
nlohmann::json tiny_bench_json(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"bench", "--random-weights", "--config", tiny_config(), "-o", "json", "-r", "1", "-t", "1"};
  all.insert(all.end(), args.begin(), args.end());
  const ProcessResult r = ltri(all);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

std::string describe(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "\n--- stderr:\n" + r.err;
}

// Exit `code`, nothing on stdout, one line "error: ..." on stderr holding each of `names`.
void expect_one_error_line(const ProcessResult& r, int code, const std::vector<std::string>& names) {
  EXPECT_EQ(r.exit_code, code) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
  ASSERT_FALSE(r.err.empty()) << describe(r);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << describe(r);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not exactly one line: " << describe(r);
  for (const std::string& name : names) {
    EXPECT_NE(r.err.find(name), std::string::npos) << "'" << name << "' not named: " << describe(r);
  }
}

// Bytes of full attention's f32 KV for `tokens` tokens of the model of `config`.
size_t full_kv_bytes(const ModelConfig& c, int64_t tokens) {
  return size_t(tokens * 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim) * sizeof(float);
}

const nlohmann::json* find_test(const nlohmann::json& doc, const std::string& policy, const std::string& name) {
  for (const nlohmann::json& t : doc["tests"]) {
    if (t["policy"] == policy && t["test"] == name) return &t;
  }
  return nullptr;
}

// A streaming shape the tiny model (max_position_embeddings 512) can position; --attn-* apply
// to every policy of the list.
const std::vector<std::string> kSmallWindow = {"--attn-init", "4", "--attn-local", "32", "--attn-budget", "32",
                                                "--attn-block", "16", "--attn-span-max", "16", "-b", "32"};

TEST(CliBench, every_policy_and_length_gives_a_prefill_and_a_decode_test) {
  std::vector<std::string> args = {"--attn", "full,streaming,infllm,ltri", "-p", "64,256", "-n", "4"};
  args.insert(args.end(), kSmallWindow.begin(), kSmallWindow.end());
  const nlohmann::json doc = tiny_bench_json(args);
  ASSERT_TRUE(doc.contains("tests"));
  ASSERT_EQ(doc["tests"].size(), 16u) << doc.dump(1);
  size_t i = 0;
  for (const std::string policy : {"full", "streaming", "infllm", "ltri"}) {
    for (int64_t n_prompt : {64, 256}) {
      const nlohmann::json& pp = doc["tests"][i++];
      const nlohmann::json& tg = doc["tests"][i++];
      EXPECT_EQ(pp["policy"], policy);
      EXPECT_EQ(pp["test"], "pp" + std::to_string(n_prompt));
      EXPECT_EQ(pp["n_prompt"], n_prompt);
      EXPECT_EQ(pp["n_gen"], 0);
      EXPECT_EQ(tg["policy"], policy);
      EXPECT_EQ(tg["test"], "tg4 @ d" + std::to_string(n_prompt));
      EXPECT_EQ(tg["n_prompt"], 0);
      EXPECT_EQ(tg["n_gen"], 4);
      EXPECT_EQ(tg["n_depth"], n_prompt);
      for (const nlohmann::json* t : {&pp, &tg}) {
        EXPECT_EQ((*t)["samples_ms"].size(), 1u);
        EXPECT_GT((*t)["avg_ts"].get<double>(), 0.0);
        EXPECT_GT((*t)["peak_host_bytes"].get<size_t>(), 0u);
        EXPECT_EQ((*t)["h2d_bytes"], 0);  // the CPU backend copies nothing across a bus
      }
      // Time to first token holds the prefill; decode tests have none.
      EXPECT_GE(pp["ttft_ms"].get<double>(), pp["samples_ms"][0].get<double>());
      EXPECT_TRUE(tg["ttft_ms"].is_null());
    }
  }
  // Full attention holds every token of the context; streaming keeps its window, whatever the depth.
  const ModelConfig config = load_model_config(tiny_config());
  for (int64_t depth : {64, 256}) {
    const nlohmann::json* full = find_test(doc, "full", "tg4 @ d" + std::to_string(depth));
    ASSERT_NE(full, nullptr);
    EXPECT_GE((*full)["kv_bytes"].get<size_t>(), full_kv_bytes(config, depth + 4));
  }
  const size_t window_64 = (*find_test(doc, "streaming", "tg4 @ d64"))["kv_bytes"];
  const size_t window_256 = (*find_test(doc, "streaming", "tg4 @ d256"))["kv_bytes"];
  EXPECT_EQ(window_64, window_256);
  EXPECT_LT(window_256, full_kv_bytes(config, 256 + 4));
  // infllm and ltri keep the evicted tokens in the host store: at d256 at least the 256 + 4
  // tokens less init, window and one chunk (4 + 32 + 32) are there.
  for (const std::string policy : {"infllm", "ltri"}) {
    EXPECT_GE((*find_test(doc, policy, "tg4 @ d256"))["kv_host_bytes"].get<size_t>(), full_kv_bytes(config, 260 - 68))
        << policy;
  }
}

TEST(CliBench, prompt_lengths_take_k_and_m_suffixes) {
  std::vector<std::string> args = {"--attn", "streaming", "-p", "1k,0", "-n", "2"};
  args.insert(args.end(), kSmallWindow.begin(), kSmallWindow.end());
  const nlohmann::json doc = tiny_bench_json(args);
  ASSERT_EQ(doc["tests"].size(), 3u) << doc.dump(1);
  EXPECT_EQ(doc["tests"][0]["test"], "pp1024");
  EXPECT_EQ(doc["tests"][0]["n_prompt"], 1024);
  EXPECT_EQ(doc["tests"][1]["test"], "tg2 @ d1024");
  // -p 0: no prefill, decode from an empty context.
  EXPECT_EQ(doc["tests"][2]["test"], "tg2");
  EXPECT_EQ(doc["tests"][2]["n_depth"], 0);
}

TEST(CliBench, repetitions_give_that_many_samples) {
  const ProcessResult r = ltri({"bench", "--random-weights", "--config", tiny_config(), "-p", "16", "-n", "2",
                                "-r", "2", "-o", "json", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["tests"].size(), 2u);
  for (const nlohmann::json& t : doc["tests"]) EXPECT_EQ(t["samples_ms"].size(), 2u) << t.dump();
  EXPECT_EQ(doc["tests"][0]["samples_ttft_ms"].size(), 2u);
}

TEST(CliBench, markdown_table_has_a_row_per_test) {
  const ProcessResult r = ltri({"bench", "--random-weights", "--config", tiny_config(), "-p", "8", "-n", "2",
                                "-r", "1", "-t", "1", "--attn", "full,streaming", "--attn-local", "32"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const std::string row : {"| full | pp8 |", "| full | tg2 @ d8 |", "| streaming | pp8 |", "| streaming | tg2 @ d8 |"}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << row << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("| model | size | params | backend | policy | test | t/s | ttft |"), std::string::npos) << r.out;
}

// The demo model from its directory (real weights) still benchmarks; its parameter count is
// the sum of the checkpoint's tensor sizes.
TEST(CliBench, bundled_model_json) {
  const ProcessResult r = ltri({"bench", "-m", demo_dir(), "-p", "64", "-n", "4", "-r", "1", "-o", "json", "-t", "1",
                                "--attn-decode-band-batch", "8"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["params"], 15733632);
  EXPECT_EQ(doc["attention"]["decode_band_batch"], 8);  // the flags that shape decode are recorded
  EXPECT_EQ(doc["attention"]["decode_retrieval"], true);
  EXPECT_EQ(doc["random_weights"], false);
  ASSERT_EQ(doc["tests"].size(), 2u);
  EXPECT_EQ(doc["tests"][0]["test"], "pp64");
  EXPECT_EQ(doc["tests"][1]["test"], "tg4 @ d64");
}

TEST(CliBench, bad_lists_and_policies_are_one_line_usage_errors) {
  expect_one_error_line(ltri({"bench", "-p", "32k,12x"}), 2, {"--n-prompt", "12x"});
  expect_one_error_line(ltri({"bench", "-p", "1.5k"}), 2, {"--n-prompt", "1.5k"});
  expect_one_error_line(ltri({"bench", "-p", "-4"}), 2, {"-4"});
  expect_one_error_line(ltri({"bench", "--attn", "full,flash"}), 2, {"--attn", "flash"});
  expect_one_error_line(ltri({"bench", "-r", "0"}), 2, {"--repetitions", "0"});
}

TEST(CliBench, requests_that_cannot_run_fail_before_any_test) {
  const std::vector<std::string> base = {"bench", "--random-weights", "--config", tiny_config(), "-r", "1"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> all = base;
    all.insert(all.end(), extra.begin(), extra.end());
    return ltri(all);
  };
  expect_one_error_line(with({"--attn", "full,ltri,full"}), 1, {"--attn", "'full'", "twice"});
  expect_one_error_line(with({"-p", "0", "-n", "0"}), 1, {"-p", "-n"});
  // A window the tiny model (512 positions) cannot place: the policy's own check, before work.
  expect_one_error_line(with({"--attn", "full,streaming", "--attn-local", "4096"}), 1, {"--attn-local"});
  // Full attention's KV cache for 2^40 tokens fits in no host: refused before loading.
  expect_one_error_line(with({"--attn", "full", "-p", "1048576m"}), 1, {"--attn full", "-p", "host memory"});
}

}  // namespace
}  // namespace ltri
