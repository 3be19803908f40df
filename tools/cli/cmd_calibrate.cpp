// ltri calibrate: per-layer triangle threshold θ by random search (src/analysis/calibration.hpp).
// Runs needle prompts under full attention, keeps each layer's segmentation band around the
// needle, and picks per layer the θ whose spans best match the needle (F1). Writes the
// per-model calibration file (default <model dir>/ltri_calibration.json).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "analysis/attention_probe.hpp"
#include "analysis/calibration.hpp"
#include "analysis/needle_prompts.hpp"
#include "analysis/retrieval_heads.hpp"
#include "analysis_common.hpp"
#include "cli_common.hpp"
#include "core/error.hpp"
#include "kv/attention_options.hpp"
#include "runtime/engine.hpp"

namespace ltri::cli {

namespace {

struct CalibrateOptions {
  std::string model_dir;
  std::string output;
  int64_t samples = 8;
  std::vector<int64_t> lengths = {1024, 2048};
  int64_t trials = 64;
  int64_t seed = 2;
  int64_t window = 512;
  int64_t span_min = 4;
  int64_t span_max = 256;
  double phi = 0.3;
  int64_t n_sink = AttentionOptions{}.n_init;
  std::string segmentation = "mean";
  std::string row_scale = "band";
  std::string heads_file;
  std::string values = "mixed";
  std::string haystack;
  int threads = 0;
};

int run_calibrate(const CalibrateOptions& o) {
  if (o.span_max < o.span_min) fail("--span-max (", o.span_max, ") must be >= --span-min (", o.span_min, ")");
  const std::string dir = model_dir_from_flag(o.model_dir);
  const Haystack haystack = Haystack::load(o.haystack.empty() ? default_haystack_path() : o.haystack);
  ModelLoadOptions load;
  load.threads = o.threads;
  const Engine engine = Engine::load(dir, load);
  const ModelConfig& c = engine.model().config();
  check_lengths(o.lengths, c.max_position_embeddings, "--lengths");
  const std::string output =
      o.output.empty() ? (std::filesystem::path(dir) / "ltri_calibration.json").string() : o.output;

  // Which heads feed each layer's map: the mean of the heads by default (what the ltri policy
  // segments with; on the demo model it also scores a higher F1 than the retrieval head, see
  // docs/analysis.md), or each layer's best retrieval head (auto: when a heads file exists).
  const std::string heads_path =
      o.heads_file.empty() ? (std::filesystem::path(dir) / "ltri_heads.json").string() : o.heads_file;
  std::error_code ec;
  const bool use_retrieval =
      o.segmentation == "retrieval" || (o.segmentation == "auto" && std::filesystem::exists(heads_path, ec));
  std::vector<int> map_heads(size_t(c.num_hidden_layers), AttentionProbe::kMeanOfHeads);
  std::vector<int> heads_used;
  if (use_retrieval) {
    const HeadsFile heads = read_heads_file(heads_path);
    if (heads.n_layers != c.num_hidden_layers || heads.n_heads != c.num_attention_heads) {
      fail(heads_path, ": heads file is for ", heads.n_layers, " layers x ", heads.n_heads, " heads, the model has ",
           c.num_hidden_layers, " x ", c.num_attention_heads);
    }
    // A layer without a retrieval head (best score below the file's threshold) keeps the mean:
    // its "best" head would be an arbitrary one.
    heads_used = best_head_per_layer(heads);
    for (size_t l = 0; l < heads_used.size(); ++l) {
      if (heads.scores[l][size_t(heads_used[l])] < heads.threshold) heads_used[l] = AttentionProbe::kMeanOfHeads;
    }
    map_heads = heads_used;
  }

  std::vector<std::vector<SegmentationWindow>> per_layer(size_t(c.num_hidden_layers));
  std::mt19937_64 rng(uint64_t(o.seed));
  int64_t done = 0;
  const int64_t total = o.samples * int64_t(o.lengths.size());
  for (int64_t length : o.lengths) {
    for (int64_t i = 0; i < o.samples; ++i) {
      const double depth = (double(i) + 0.5) / double(o.samples);
      const NeedlePrompt p =
          make_needle_prompt(engine.tokenizer(), haystack, length, depth, needle_value_kind(o.values, i), rng);
      std::vector<SegmentationWindow> windows =
          needle_windows(engine.model(), p, map_heads, o.window, o.span_max, o.n_sink,
                         o.row_scale == "band" ? RowScale::Band : RowScale::Row);
      for (size_t l = 0; l < windows.size(); ++l) per_layer[l].push_back(std::move(windows[l]));
      std::fprintf(stderr, "calibrate: sample %lld/%lld: %zu tokens, needle at tokens [%lld, %lld)\n",
                   static_cast<long long>(++done), static_cast<long long>(total), p.prompt.size(),
                   static_cast<long long>(p.needle_begin), static_cast<long long>(p.needle_end));
    }
  }

  SpanParams params;
  params.phi = float(o.phi);
  params.span_min = o.span_min;
  params.span_max = o.span_max;
  const std::vector<double> thetas = random_thetas(o.trials, uint64_t(o.seed));
  CalibrationFile cal;
  cal.phi = o.phi;
  cal.span_min = o.span_min;
  cal.span_max = o.span_max;
  cal.segmentation_heads = use_retrieval ? "retrieval" : "mean";
  cal.heads = heads_used;
  cal.row_scale = o.row_scale;
  cal.samples = o.samples;
  cal.trials = o.trials;
  cal.window = o.window;
  cal.n_sink = o.n_sink;
  cal.lengths = o.lengths;
  cal.command = cat("ltri calibrate -m ", dir, " --samples ", o.samples, " --lengths ", join_numbers(o.lengths),
                    " --trials ", o.trials, " --seed ", o.seed, " --window ", o.window, " --segmentation ",
                    cal.segmentation_heads, " --row-scale ", o.row_scale, " --sink ", o.n_sink, " --values ", o.values);
  std::string table = cat("layer  heads      theta   F1     mean span   (F1 at theta 0.6, span)\n");
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const ThetaScore best = best_theta(per_layer[size_t(l)], params, thetas);
    SpanParams fixed = params;
    fixed.theta = 0.6f;
    const ThetaScore at_default = evaluate_theta(per_layer[size_t(l)], fixed);
    cal.theta.push_back(best.theta);
    cal.f1.push_back(best.f1);
    cal.mean_span_len.push_back(best.mean_span_len);
    char line[160];
    const int h = map_heads[size_t(l)];
    const std::string heads = h >= 0 ? cat("head ", h) : std::string("mean");
    std::snprintf(line, sizeof line, "%5lld  %-9s  %.4f  %.3f  %9.1f   (%.3f, %.1f)\n", static_cast<long long>(l),
                  heads.c_str(), best.theta, best.f1, best.mean_span_len, at_default.f1, at_default.mean_span_len);
    table += line;
  }
  write_calibration_file(output, cal);
  write_stdout(table);
  std::fprintf(stderr, "calibrate: %lld windows of %lld tokens, %lld θ trials, segmentation from %s; wrote %s\n",
               static_cast<long long>(total), static_cast<long long>(o.window), static_cast<long long>(o.trials),
               use_retrieval ? "each layer's best retrieval head (else the mean)" : "the mean of heads", output.c_str());
  return 0;
}

}  // namespace

Subcommand add_calibrate_command(CLI::App& parent) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* app = parent.add_subcommand(
      "calibrate", "Calibrate the span threshold theta per layer with needle prompts (writes ltri_calibration.json)");
  app->add_option("-m,--model", o->model_dir, "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  app->add_option("-o,--output", o->output, "Calibration file to write (default: <model dir>/ltri_calibration.json)");
  app->add_option("--samples", o->samples, "Needle prompts per length")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("--lengths", o->lengths, "Prompt lengths in tokens, comma-separated")
      ->delimiter(',')->capture_default_str();
  app->add_option("--trials", o->trials, "Random-search trials of theta in [0.05, 0.95]")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-s,--seed", o->seed, "Seed of the needle prompts and of the search")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("--window", o->window, "Tokens around the needle scored per prompt")
      ->check(integer_at_least(16))->capture_default_str();
  app->add_option("--span-min", o->span_min, "Shortest candidate span")->check(integer_at_least(1))->capture_default_str();
  app->add_option("--span-max", o->span_max, "Longest span (and the band width kept)")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("--phi", o->phi, "NMS IoU limit")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--sink", o->n_sink, "Initial tokens left out of each row's maximum (attention sinks)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("--segmentation", o->segmentation,
                  "Heads feeding each layer's map: mean, retrieval (the layer's best head in the heads file, "
                  "the mean where no head reaches its threshold), or auto (retrieval when the heads file exists)")
      ->check(CLI::IsMember({"auto", "mean", "retrieval"}))->capture_default_str();
  app->add_option("--row-scale", o->row_scale,
                  "Segmentation row scaling: band (each head's row by its max within span-max of the "
                  "diagonal, as the ltri policy does) or row (the map's row by its max over all non-sink columns)")
      ->check(CLI::IsMember({"band", "row"}))->capture_default_str();
  app->add_option("--heads-file", o->heads_file, "Heads file (default: <model dir>/ltri_heads.json)");
  app->add_option("--values", o->values, "Needle values: number (7 digits), uuid, or mixed (alternating)")
      ->check(CLI::IsMember({"number", "uuid", "mixed"}))->capture_default_str();
  app->add_option("--haystack", o->haystack, "Prose file or directory of .txt files (default: data/heldout)");
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")->check(integer_at_least(0))->capture_default_str();
  return {app, [o] { return run_calibrate(*o); }};
}

}  // namespace ltri::cli
