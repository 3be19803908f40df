// ltri bench: prefill (ppN) and decode (tgN @ dN) speed of a model per KV policy and prompt
// length, llama-bench style, with time to first token, peak device and host memory and
// host->device bytes. Token ids are random (no tokenizer needed), so a config.json alone
// benchmarks a model at its real shapes with --random-weights. The measurements are in
// bench_runner.cpp, the table and JSON in bench_report.cpp.
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <omp.h>

#include "attention_flags.hpp"
#include "bench_options.hpp"
#include "bench_report.hpp"
#include "bench_runner.hpp"
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

// The display name: the config file's stem, or the model directory's name.
std::string model_label(const BenchOptions& o, const std::string& dir) {
  fs::path path = o.config.empty() ? fs::path(dir) : fs::path(o.config);
  if (!path.has_filename()) path = path.parent_path();  // "dir/"
  std::string name = o.config.empty() ? path.filename().string() : path.stem().string();
  if (o.config.empty() == false && fs::is_directory(o.config)) name = path.filename().string();
  return o.random_weights ? name + " (random)" : name;
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
  if (device == Device::Cpu) check_weights_fit_in_memory(config, source);
  check_bench_request(o, config, device);

  ModelLoadOptions load;
  load.device = device;
  load.threads = o.threads;
  load.random_weights = o.random_weights;
  load.weights = parse_weight_precision(o.weights);
  Timer load_timer;
  const std::unique_ptr<Model> model = Model::load(dir, load);
  const double load_ms = load_timer.elapsed_ms();
  check_policies_build(*model, o);  // a bad --attn-* value is the only line on stderr
  const int threads = omp_get_max_threads();
  log_info(cat("bench: ", source, o.random_weights ? " (random weights)" : "", " loaded in ",
               int64_t(std::lround(load_ms)), " ms; ", threads, " threads"));

  const std::vector<BenchTest> tests = run_benchmarks(*model, o);

  BenchSetup setup;
  setup.model = model_label(o, dir);
  setup.architecture = architecture_name(config.architecture);
  setup.random_weights = o.random_weights;
  setup.params = count_parameters(config);
  setup.weight_bytes = model->weight_bytes();
  setup.backend = device == Device::Cpu ? "CPU" : "CUDA";
  setup.threads = threads;
  setup.load_ms = load_ms;
  setup.peak_rss_bytes = peak_rss_bytes();
  write_stdout(o.output == "json" ? bench_json(setup, o, tests) : bench_markdown(setup, tests));
  return 0;
}

}  // namespace

Subcommand add_bench_command(CLI::App& parent) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = parent.add_subcommand(
      "bench", "Measure prefill and decode speed, time to first token and memory per KV policy and prompt length");
  CLI::Option* m = app->add_option("-m,--model", o->model_dir,
                                   "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  CLI::Option* random = app->add_flag("--random-weights", o->random_weights,
                                      "Seeded random weights: only config.json is read");
  CLI::Option* config = app->add_option("--config", o->config,
                                        "config.json (or a directory holding one) for --random-weights");
  config->needs(random);
  config->excludes(m);
  m->excludes(config);
  app->add_option("-p,--n-prompt", o->n_prompt,
                  "Prompt lengths, a comma list (k = 1024, m = 1048576: 32k,128k,1m); each is one prefill "
                  "test, then the -n decode test at that depth (0 = decode from an empty context)")
      ->delimiter(',')->transform(token_count())->capture_default_str();
  app->add_option("-n,--n-gen", o->n_gen, "Decode tokens after each prefill (0 = no decode test)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-b,--batch-size", o->chunk, "Prefill chunk: tokens per forward pass")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-r,--repetitions", o->repetitions,
                  cat("Timed runs of each test (default: ", kDefaultRepetitions, ", and 1 for prompts of ",
                      kLongPromptTokens / 1024, "k tokens or more)"))
      ->check(integer_at_least(1));
  app->add_option("-o,--output", o->output, "Output format: md or json")
      ->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  app->add_option("--device", o->device, "Where to run: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  add_weights_flag(app, o->weights);
  app->add_option("--attn", o->policies,
                  "KV policies to measure, a comma list of full, streaming, infllm, ltri; the --attn-* "
                  "parameters apply to each")
      ->delimiter(',')->check(CLI::IsMember({"full", "streaming", "infllm", "ltri"}))->capture_default_str()
      ->group(kAttentionFlagGroup);
  add_attention_parameter_flags(app, o->attention);
  app->add_flag("-v,--verbose", o->verbose, "More detail on stderr");
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace ltri::cli
