// The built `ltri` binary, run as a user would: misuse and bad input give exit 2 (usage) or 1
// (run time) with exactly one "error: " line on stderr naming the flag or file, and nothing on
// stdout; good runs put only the generated text / JSON on stdout, equal to what the library
// computes in-process, and the timing block (llama.cpp wording) on stderr.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "io/model_config.hpp"
#include "runtime/engine.hpp"
#include "runtime/generator.hpp"
#include "runtime/model_info.hpp"
#include "run_process.hpp"
#include "test_paths.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri {
namespace {

namespace fs = std::filesystem;
using test::EnvChange;
using test::ProcessResult;

// The passkey format the bundled model was trained on (tools/train_demo/tasks.py, docs/eval.md),
// with a five-sentence haystack on each side of the needle.
const char* kPasskeyPrompt =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will "
    "quiz you about the important information there.\n\nThe grass is green. The sky is blue. The sun is "
    "yellow. Here we go. There and back again. The pass key is 48213. Remember it. 48213 is the pass key. "
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n\nWhat is "
    "the pass key? The pass key is";

std::string demo_dir() { return test::source_dir() + "/models/ltri-demo"; }

// Runs the built ltri with $LTRI_MODEL_DIR removed (unless `env` sets it), so the tests do
// not depend on the caller's environment.
ProcessResult ltri(const std::vector<std::string>& args, std::vector<EnvChange> env = {}) {
  bool sets_model_dir = false;
  for (const EnvChange& c : env) sets_model_dir = sets_model_dir || c.name == "LTRI_MODEL_DIR";
  if (!sets_model_dir) env.push_back({"LTRI_MODEL_DIR", "", true});
  return test::run_process(test::ltri_binary(), args, env);
}

std::string describe(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "\n--- stderr:\n" + r.err;
}

// Exit `code`, nothing on stdout, and stderr exactly one line "error: ..." holding each of
// `names` (the flag, file or value the message must point at).
void expect_one_error_line(const ProcessResult& r, int code, const std::vector<std::string>& names) {
  EXPECT_EQ(r.exit_code, code) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
  ASSERT_FALSE(r.err.empty()) << describe(r);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << describe(r);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not exactly one line: " << describe(r);
  for (const std::string& name : names) EXPECT_NE(r.err.find(name), std::string::npos) << "'" << name << "' not named: " << describe(r);
}

// A fresh directory under the temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ltri-cli-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

std::vector<int32_t> json_ids(const std::string& out) {
  const nlohmann::json doc = nlohmann::json::parse(out);  // throws (fails the test) if not JSON
  EXPECT_TRUE(doc.is_array()) << out;
  return doc.get<std::vector<int32_t>>();
}

// ---- usage errors: exit 2 --------------------------------------------------------------

TEST(Cli, no_command) {
  const ProcessResult r = ltri({});
  expect_one_error_line(r, 2, {"no command", "run", "tokenize", "bench"});
}

TEST(Cli, unknown_command) { expect_one_error_line(ltri({"frobnicate"}), 2, {"'frobnicate'", "run"}); }

TEST(Cli, unknown_flag) {
  expect_one_error_line(ltri({"run", "-p", "x", "--frobnicate"}), 2, {"--frobnicate"});
  expect_one_error_line(ltri({"tokenize", "-p", "x", "--frobnicate"}), 2, {"--frobnicate"});
  expect_one_error_line(ltri({"bench", "--frobnicate"}), 2, {"--frobnicate"});
}

TEST(Cli, bad_flag_values_name_the_flag_and_the_value) {
  expect_one_error_line(ltri({"run", "-p", "x", "-n", "-5"}), 2, {"--n-predict", "-5"});
  expect_one_error_line(ltri({"run", "-p", "x", "-n", "ten"}), 2, {"--n-predict", "'ten'"});
  expect_one_error_line(ltri({"run", "-p", "x", "--temp", "nan"}), 2, {"--temp", "nan"});
  expect_one_error_line(ltri({"run", "-p", "x", "--temp", "inf"}), 2, {"--temp", "inf"});
  expect_one_error_line(ltri({"run", "-p", "x", "--top-p", "0"}), 2, {"--top-p", "0"});
  expect_one_error_line(ltri({"run", "-p", "x", "--top-p", "1.5"}), 2, {"--top-p", "1.5"});
  expect_one_error_line(ltri({"run", "-p", "x", "--top-k", "-1"}), 2, {"--top-k", "-1"});
  expect_one_error_line(ltri({"run", "-p", "x", "-t", "-1"}), 2, {"--threads", "-1"});
  expect_one_error_line(ltri({"run", "-p", "x", "-c", "-3"}), 2, {"--ctx-size", "-3"});
  expect_one_error_line(ltri({"run", "-p", "x", "-b", "0"}), 2, {"--batch-size", "0"});
  expect_one_error_line(ltri({"run", "-p", "x", "-s", "1.5"}), 2, {"--seed", "1.5"});
  expect_one_error_line(ltri({"run", "-p", "x", "--device", "bogus"}), 2, {"--device", "bogus"});
  expect_one_error_line(ltri({"run", "-p", "x", "--attn", "bogus"}), 2, {"--attn", "bogus"});
  expect_one_error_line(ltri({"run", "-p", "x", "--temp"}), 2, {"--temp: needs a value"});
  expect_one_error_line(ltri({"run", "-p", "x", "--top-p"}), 2, {"--top-p: needs a value"});
  expect_one_error_line(ltri({"bench", "-r", "0"}), 2, {"--repetitions", "0"});
  expect_one_error_line(ltri({"bench", "-o", "xml"}), 2, {"--output", "xml"});
  expect_one_error_line(ltri({"run", "-p", "x", "--weights", "fp8"}), 2, {"--weights", "fp8"});
  expect_one_error_line(ltri({"bench", "--weights", "f16"}), 2, {"--weights", "f16"});
}

TEST(Cli, conflicting_or_missing_flags) {
  expect_one_error_line(ltri({"run", "-p", "x", "-f", "y.txt"}), 2, {"--prompt and --file cannot be used together"});
  expect_one_error_line(ltri({"tokenize", "-p", "x", "-f", "y.txt"}), 2, {"--prompt", "--file"});
  expect_one_error_line(ltri({"run", "-p", "x", "-v", "-q"}), 2, {"--verbose and --quiet cannot be used together"});
  expect_one_error_line(ltri({"run"}), 2, {"-p", "-f"});
  expect_one_error_line(ltri({"tokenize"}), 2, {"-p", "-f"});
  expect_one_error_line(ltri({"run", "-p", "x", "--system", "be brief"}), 2, {"--system", "--chat"});
  expect_one_error_line(ltri({"bench", "--config", "c.json"}), 2, {"--config", "--random-weights"});
}

// ---- run-time errors: exit 1 -------------------------------------------------------------

TEST(Cli, missing_prompt_file) {
  expect_one_error_line(ltri({"run", "-f", "/nonexistent/prompt.txt"}), 1, {"/nonexistent/prompt.txt"});
  expect_one_error_line(ltri({"tokenize", "-f", "/nonexistent/prompt.txt"}), 1, {"/nonexistent/prompt.txt"});
}

TEST(Cli, model_dir_that_does_not_exist) {
  expect_one_error_line(ltri({"run", "-m", "/nonexistent/model", "-p", "x"}), 1, {"-m /nonexistent/model"});
  expect_one_error_line(ltri({"tokenize", "-m", "/nonexistent/model", "-p", "x"}), 1, {"-m /nonexistent/model"});
  expect_one_error_line(ltri({"bench", "-m", "/nonexistent/model"}), 1, {"-m /nonexistent/model"});
  expect_one_error_line(ltri({"run", "-p", "x"}, {{"LTRI_MODEL_DIR", "/nonexistent/env"}}), 1,
                        {"LTRI_MODEL_DIR=/nonexistent/env"});
}

TEST(Cli, model_dir_with_broken_files) {
  TempDir dir;
  const std::string config = dir.write("config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": ");
  expect_one_error_line(ltri({"run", "-m", dir.str(), "-p", "x"}), 1, {config});
  expect_one_error_line(ltri({"bench", "-m", dir.str()}), 1, {config});

  dir.write("config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": -4}");
  expect_one_error_line(ltri({"run", "-m", dir.str(), "-p", "x"}), 1, {config, "vocab_size"});

  fs::copy_file(demo_dir() + "/config.json", dir.path() / "config.json", fs::copy_options::overwrite_existing);
  expect_one_error_line(ltri({"run", "-m", dir.str(), "-p", "x"}), 1, {dir.str(), "tokenizer.json"});
  expect_one_error_line(ltri({"tokenize", "-m", dir.str(), "-p", "x"}), 1, {"tokenizer.json"});

  fs::copy_file(demo_dir() + "/tokenizer.json", dir.path() / "tokenizer.json");
  expect_one_error_line(ltri({"run", "-m", dir.str(), "-p", "x"}), 1, {dir.str(), "safetensors"});

  const ProcessResult file_not_dir = ltri({"run", "-m", demo_dir() + "/config.json", "-p", "x"});
  expect_one_error_line(file_not_dir, 1, {demo_dir() + "/config.json", "directory"});
}

TEST(Cli, model_dir_from_environment_is_used) {
  // A directory with only tokenizer.json: tokenize works there, run says what is missing.
  TempDir dir;
  fs::copy_file(demo_dir() + "/tokenizer.json", dir.path() / "tokenizer.json");
  const ProcessResult r = ltri({"run", "-p", "x"}, {{"LTRI_MODEL_DIR", dir.str()}});
  expect_one_error_line(r, 1, {dir.str(), "config.json"});
  // -m wins over the environment.
  const ProcessResult m = ltri({"tokenize", "-m", demo_dir(), "-p", "x"}, {{"LTRI_MODEL_DIR", "/nonexistent"}});
  EXPECT_EQ(m.exit_code, 0) << describe(m);
}

TEST(Cli, bf16_weights_on_the_cpu_are_refused) {
  // The CPU backend computes in f32 only: --weights bf16 is a clear error before any prompt.
  expect_one_error_line(ltri({"run", "-p", "x", "--weights", "bf16"}), 1, {"--weights bf16", "cpu"});
  const ProcessResult f32 = ltri({"run", "-p", "x", "-n", "1", "--weights", "f32"});
  EXPECT_EQ(f32.exit_code, 0) << describe(f32);
}

TEST(Cli, prompt_longer_than_the_context) {
  const ProcessResult r = ltri({"run", "-m", demo_dir(), "-p", "one two three four five six", "-c", "3"});
  expect_one_error_line(r, 1, {"-c", "3"});
}

TEST(Cli, unsupported_bench_config) {
  expect_one_error_line(ltri({"bench", "--random-weights", "--config", "/nonexistent/c.json"}), 1,
                        {"/nonexistent/c.json"});
}

// ---- good runs ------------------------------------------------------------------------------

// The demo model loaded in-process, once, on one thread (the CLI runs below pass -t 1 as well,
// so both sides sum in the same order).
const Engine& demo_engine() {
  static const Engine engine = [] {
    ModelLoadOptions load;
    load.threads = 1;
    return Engine::load(demo_dir(), load);
  }();
  return engine;
}

// What `ltri run -m demo -p prompt -n n --temp 0` must print, computed in-process.
std::string library_greedy_text(const std::string& prompt, int64_t n, std::vector<std::string> stops = {}) {
  const Engine& engine = demo_engine();
  const std::vector<int32_t> ids = engine.tokenizer().encode(prompt, EncodeOptions{});
  SessionOptions session_options;
  session_options.max_context = 512;
  auto session = engine.model().new_session(session_options);
  GenerateOptions o;
  o.n_predict = n;
  o.sampling.temperature = 0.0f;
  o.eos_ids = engine.eos_ids();
  o.stop_strings = std::move(stops);
  std::string text;
  generate(*session, engine.model().config().vocab_size, engine.tokenizer(), ids, o,
           [&](std::string_view piece) { text += piece; });
  return text;
}

size_t prompt_token_count(const std::string& prompt) {
  return demo_engine().tokenizer().encode(prompt, EncodeOptions{}).size();
}

TEST(Cli, greedy_run_is_deterministic_and_matches_the_library) {
  const std::string prompt = "Once upon a time";
  const std::vector<std::string> args = {"run", "-m", demo_dir(), "-p", prompt, "-n", "8", "--temp", "0", "-t", "1"};
  const ProcessResult a = ltri(args);
  const ProcessResult b = ltri(args);
  ASSERT_EQ(a.exit_code, 0) << describe(a);
  ASSERT_EQ(b.exit_code, 0) << describe(b);
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out, library_greedy_text(prompt, 8));

  // The timing block on stderr, llama.cpp's wording, with the token counts of this run.
  EXPECT_NE(a.err.find("load time ="), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("eval time ="), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("total time ="), std::string::npos) << a.err;
  EXPECT_EQ(a.err.find("error"), std::string::npos) << a.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(a.err, m, std::regex(R"(prompt eval time = +[0-9.]+ ms / +([0-9]+) tokens)"))) << a.err;
  EXPECT_EQ(std::stoul(m[1]), prompt_token_count(prompt));
  ASSERT_TRUE(std::regex_search(a.err, m, std::regex(R"(\n +eval time = +[0-9.]+ ms / +([0-9]+) runs)"))) << a.err;
  EXPECT_EQ(std::stoi(m[1]), 7);  // 8 tokens: no forward after the last (unless EOS came first)
}

TEST(Cli, quiet_run_prints_only_the_text) {
  const ProcessResult r = ltri({"run", "-m", demo_dir(), "-p", "Once upon a time", "-n", "3", "--temp", "0", "-q", "-t", "1"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, library_greedy_text("Once upon a time", 3));
}

TEST(Cli, stop_string_and_prompt_file) {
  TempDir dir;
  const std::string file = dir.write("prompt.txt", kPasskeyPrompt);
  // The stop string comes from the middle of the model's own greedy text (any weights).
  const std::string full = library_greedy_text(kPasskeyPrompt, 16);
  const std::string stop = full.substr(full.size() / 2, 4);
  ASSERT_GT(full.find(stop), 0u) << full;
  const ProcessResult r =
      ltri({"run", "-m", demo_dir(), "-f", file, "-n", "16", "--temp", "0", "--stop", stop, "-q", "-t", "1"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, full.substr(0, full.find(stop)));
  EXPECT_EQ(r.out, library_greedy_text(kPasskeyPrompt, 16, {stop}));
}

TEST(Cli, bundled_model_answers_the_passkey_prompt) {
  // No -m and no $LTRI_MODEL_DIR: the model bundled with the source tree.
  const ProcessResult r = ltri({"run", "-p", kPasskeyPrompt, "-n", "8", "--temp", "0", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // The answer, then <|end_of_text|>: the model stops by itself well before -n 8.
  EXPECT_EQ(r.out, " 48213.") << describe(r);
}

TEST(Cli, tokenize_prints_the_tokenizer_ids_as_one_json_array) {
  const Tokenizer tokenizer = Tokenizer::load(demo_dir());
  const std::string text = "Hello<|end_of_text|> world, caf\xC3\xA9 42";
  const ProcessResult r = ltri({"tokenize", "-m", demo_dir(), "-p", text});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  const std::vector<int32_t> ids = json_ids(r.out);
  EXPECT_EQ(ids, tokenizer.encode(text, EncodeOptions{}));
  const int32_t end_of_text = tokenizer.token_to_id("<|end_of_text|>");
  ASSERT_GE(end_of_text, 0);
  EXPECT_NE(std::find(ids.begin(), ids.end(), end_of_text), ids.end()) << "special token written in the text";
  EXPECT_EQ(ids.front(), tokenizer.bos_id());

  EncodeOptions plain;
  plain.parse_special = false;
  const std::vector<int32_t> no_special = json_ids(ltri({"tokenize", "-m", demo_dir(), "-p", text, "--no-special"}).out);
  EXPECT_EQ(no_special, tokenizer.encode(text, plain));
  EXPECT_EQ(std::find(no_special.begin(), no_special.end(), end_of_text), no_special.end());

  EncodeOptions bare;
  bare.add_special_tokens = false;
  EXPECT_EQ(json_ids(ltri({"tokenize", "-m", demo_dir(), "-p", text, "--no-bos"}).out), tokenizer.encode(text, bare));
}

TEST(Cli, tokenize_needs_only_tokenizer_json) {
  TempDir dir;
  fs::copy_file(demo_dir() + "/tokenizer.json", dir.path() / "tokenizer.json");
  const std::string text = "The grass is green.";
  const std::vector<int32_t> want = Tokenizer::load(demo_dir()).encode(text, EncodeOptions{});
  const ProcessResult r = ltri({"tokenize", "-m", dir.str(), "-p", text});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(json_ids(r.out), Tokenizer::load(dir.str()).encode(text, EncodeOptions{}));
  // The file itself works too; -f reads the text from a file.
  const std::string file = dir.write("text.txt", text);
  const ProcessResult f = ltri({"tokenize", "-m", (dir.path() / "tokenizer.json").string(), "-f", file});
  ASSERT_EQ(f.exit_code, 0) << describe(f);
  EXPECT_EQ(json_ids(f.out), json_ids(r.out));
}

// Running `ltri bench`: tests/unit/cli/test_cli_bench.cpp.

// The bench configs must stay loadable and true to their names. (Running the 100M one takes
// ~3.5 s of random-weight setup on 2 cores, too slow for this binary; test_cli_bench.cpp's
// tiny config covers the same code path.)
TEST(Cli, bench_configs_parse_and_match_their_names) {
  const ModelConfig c100m = load_model_config(test::source_dir() + "/bench/configs/llama-100m.json");
  EXPECT_NEAR(double(count_parameters(c100m)), 100e6, 5e6);
  const ModelConfig c8b = load_model_config(test::source_dir() + "/bench/configs/llama-3-8b.json");
  EXPECT_EQ(count_parameters(c8b), 8030261248);  // Meta-Llama-3-8B's published count
}

TEST(Cli, help_and_version_go_to_stdout_with_exit_0) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"run", "--help"}, {"tokenize", "--help"}, {"bench", "--help"}}) {
    const ProcessResult r = ltri(args);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("Usage: ltri"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err, "");
  }
  const ProcessResult v = ltri({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("ltri ", 0), 0u) << v.out;
}

}  // namespace
}  // namespace ltri
