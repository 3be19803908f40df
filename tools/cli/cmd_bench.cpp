// ltri bench: prompt-processing (ppN) and generation (tgN) speed of a model, llama-bench style.
// Token ids are random (no tokenizer needed), so a config.json alone benchmarks a model at its
// real shapes with --random-weights. Each test runs after one untimed warm-up, from an empty
// context, -r times; the table gives tokens per second as mean ± standard deviation.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/mapped_file.hpp"
#include "core/memory_stats.hpp"
#include "core/timer.hpp"
#include "io/model_config.hpp"
#include "runtime/model_info.hpp"

namespace ltri::cli {

namespace {

namespace fs = std::filesystem;

struct BenchOptions {
  std::string model_dir;
  bool random_weights = false;
  std::string config;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int64_t chunk = 512;
  int threads = 0;
  int64_t repetitions = 3;
  std::string output = "md";
  std::string device = "cpu";
  bool verbose = false;
};

struct TestResult {
  std::string name;  // "pp512", "tg128"
  int64_t n_prompt = 0, n_gen = 0;
  std::vector<double> samples_ms;
  std::vector<double> samples_ts;
  double mean_ts = 0.0, stddev_ts = 0.0;
};

// Model::load reads <dir>/config.json; a lone config file is given a directory of its own
// for the load, removed again when the benchmark ends.
class ConfigOnlyDir {
 public:
  explicit ConfigOnlyDir(const std::string& config_file) {
    std::string pattern = (fs::temp_directory_path() / "ltri-bench-XXXXXX").string();
    if (!mkdtemp(pattern.data())) fail(config_file, ": cannot create a temporary directory for the config");
    dir_ = pattern;
    std::error_code ec;
    fs::copy_file(config_file, fs::path(dir_) / "config.json", ec);
    if (ec) fail(config_file, ": cannot copy: ", ec.message());
  }
  ~ConfigOnlyDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ConfigOnlyDir(const ConfigOnlyDir&) = delete;
  ConfigOnlyDir& operator=(const ConfigOnlyDir&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

void summarise(TestResult& t) {
  const double n = double(t.samples_ts.size());
  double sum = 0.0;
  for (double v : t.samples_ts) sum += v;
  t.mean_ts = sum / n;
  double sq = 0.0;
  for (double v : t.samples_ts) sq += (v - t.mean_ts) * (v - t.mean_ts);
  t.stddev_ts = t.samples_ts.size() > 1 ? std::sqrt(sq / (n - 1.0)) : 0.0;
}

// The display name: the config file's stem, or the model directory's name.
std::string model_label(const BenchOptions& o, const std::string& dir) {
  fs::path path = o.config.empty() ? fs::path(dir) : fs::path(o.config);
  if (!path.has_filename()) path = path.parent_path();  // "dir/"
  std::string name = o.config.empty() ? path.filename().string() : path.stem().string();
  if (o.config.empty() == false && fs::is_directory(o.config)) name = path.filename().string();
  return o.random_weights ? name + " (random)" : name;
}

std::string markdown_table(const std::string& label, int64_t params, size_t weight_bytes,
                           const std::string& backend, int threads, const std::vector<TestResult>& tests) {
  std::string out;
  out += "| model | size | params | backend | threads | test | t/s |\n";
  out += "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n";
  for (const TestResult& t : tests) {
    char ts[64];
    std::snprintf(ts, sizeof ts, "%.2f ± %.2f", t.mean_ts, t.stddev_ts);
    out += cat("| ", label, " | ", format_bytes(double(weight_bytes)), " | ", format_param_count(params), " | ",
               backend, " | ", threads, " | ", t.name, " | ", ts, " |\n");
  }
  return out;
}

int run_bench(const BenchOptions& o) {
  set_log_level(o.verbose ? LogLevel::Debug : LogLevel::Info);
  const Device device = parse_device(o.device);

  // Where the config (and, without --random-weights, the weights) come from.
  std::string dir;
  std::unique_ptr<ConfigOnlyDir> config_dir;
  if (!o.config.empty()) {
    std::error_code ec;
    if (!fs::exists(o.config, ec)) fail("--config ", o.config, ": no such file");
    if (fs::is_directory(o.config, ec)) {
      dir = o.config;
    } else {
      config_dir = std::make_unique<ConfigOnlyDir>(o.config);
      dir = config_dir->dir();
    }
  } else {
    dir = model_dir_from_flag(o.model_dir);
  }
  const std::string config_path = (fs::path(dir) / "config.json").string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::exists(dir, ec)) fail(dir, ": not a directory (give the model directory, not a file in it)");
    fail(dir, ": model directory not found");
  }
  if (!fs::exists(config_path, ec)) fail(dir, ": no config.json in the model directory");
  const std::string source = o.config.empty() ? dir : o.config;
  const ModelConfig config = parse_model_config(read_text_file(config_path), o.config.empty() ? config_path : o.config);
  check_weights_fit_in_memory(config, source);

  ModelLoadOptions load;
  load.device = device;
  load.threads = o.threads;
  load.random_weights = o.random_weights;
  Timer load_timer;
  const std::unique_ptr<Model> model = Model::load(dir, load);
  const double load_ms = load_timer.elapsed_ms();
  const int threads = omp_get_max_threads();
  log_info(cat("bench: ", source, o.random_weights ? " (random weights)" : "", " loaded in ",
               int64_t(std::lround(load_ms)), " ms; ", threads, " threads"));

  SessionOptions session_options;
  session_options.max_context = std::max<int64_t>({o.n_prompt, o.n_gen, 1});
  session_options.chunk = o.chunk;
  const std::unique_ptr<Session> session = model->new_session(session_options);

  // Random ids over the whole vocabulary, the same for every run of a test.
  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(config.vocab_size - 1));
  std::vector<int32_t> ids(size_t(std::max(o.n_prompt, o.n_gen)));  // (max(p, n)) token ids
  for (int32_t& id : ids) id = pick(rng);
  std::vector<float> logits(static_cast<size_t>(config.vocab_size));  // (vocab), f32

  auto prefill = [&](int64_t n) {
    session->reset();
    session->forward(std::span<const int32_t>(ids.data(), size_t(n)), logits.data());
  };
  auto decode = [&](int64_t n) {
    session->reset();
    for (int64_t i = 0; i < n; ++i) session->forward(std::span<const int32_t>(&ids[size_t(i)], 1), logits.data());
  };

  std::vector<TestResult> tests;
  auto run_test = [&](const std::string& name, int64_t n_prompt, int64_t n_gen, auto&& body) {
    TestResult t;
    t.name = name;
    t.n_prompt = n_prompt;
    t.n_gen = n_gen;
    body(std::min<int64_t>(n_prompt + n_gen, o.chunk));  // warm-up: caches, thread pools, page faults
    for (int64_t r = 0; r < o.repetitions; ++r) {
      Timer timer;
      body(n_prompt + n_gen);
      const double ms = timer.elapsed_ms();
      t.samples_ms.push_back(ms);
      t.samples_ts.push_back(1000.0 * double(n_prompt + n_gen) / ms);
      log_debug(cat("bench: ", name, " run ", r + 1, "/", o.repetitions, ": ", ms, " ms"));
    }
    summarise(t);
    tests.push_back(std::move(t));
  };
  if (o.n_prompt > 0) run_test(cat("pp", o.n_prompt), o.n_prompt, 0, prefill);
  if (o.n_gen > 0) run_test(cat("tg", o.n_gen), 0, o.n_gen, decode);

  const int64_t params = count_parameters(config);
  const std::string backend = device == Device::Cpu ? "CPU" : "CUDA";
  const std::string label = model_label(o, dir);
  const size_t peak_rss = peak_rss_bytes();
  if (o.output == "json") {
    nlohmann::json doc = {{"model", label},
                          {"architecture", architecture_name(config.architecture)},
                          {"random_weights", o.random_weights},
                          {"params", params},
                          {"weight_bytes", model->weight_bytes()},
                          {"backend", backend},
                          {"threads", threads},
                          {"n_batch", o.chunk},
                          {"repetitions", o.repetitions},
                          {"load_ms", load_ms},
                          {"peak_rss_bytes", peak_rss},
                          {"tests", nlohmann::json::array()}};
    for (const TestResult& t : tests) {
      doc["tests"].push_back({{"test", t.name},
                              {"n_prompt", t.n_prompt},
                              {"n_gen", t.n_gen},
                              {"samples_ms", t.samples_ms},
                              {"samples_ts", t.samples_ts},
                              {"avg_ts", t.mean_ts},
                              {"stddev_ts", t.stddev_ts}});
    }
    write_stdout(doc.dump(2) + "\n");
  } else {
    write_stdout(markdown_table(label, params, model->weight_bytes(), backend, threads, tests));
    write_stdout(cat("\npeak RSS = ", format_bytes(double(peak_rss)), "\n"));
  }
  return 0;
}

}  // namespace

Subcommand add_bench_command(CLI::App& parent) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = parent.add_subcommand("bench", "Measure prompt processing and generation speed");
  CLI::Option* m = app->add_option("-m,--model", o->model_dir,
                                   "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  CLI::Option* random = app->add_flag("--random-weights", o->random_weights,
                                      "Seeded random weights: only config.json is read");
  CLI::Option* config = app->add_option("--config", o->config,
                                        "config.json (or a directory holding one) for --random-weights");
  config->needs(random);
  config->excludes(m);
  m->excludes(config);
  app->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens of the pp test (0 = skip it)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-n,--n-gen", o->n_gen, "Generated tokens of the tg test (0 = skip it)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-b,--batch-size", o->chunk, "Prefill chunk: tokens per forward pass")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-r,--repetitions", o->repetitions, "Timed runs of each test")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-o,--output", o->output, "Output format: md or json")
      ->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  app->add_option("--device", o->device, "Where to run: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app->add_flag("-v,--verbose", o->verbose, "Print every timed run on stderr");
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace ltri::cli
