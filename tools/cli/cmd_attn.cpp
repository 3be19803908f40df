// ltri attn: a PNG of one layer's attention map over tokens [T0, T1) of a text, with the spans
// span discovery finds on it outlined (src/analysis/attention_picture.hpp for the legend).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "analysis/attention_picture.hpp"
#include "analysis/attention_probe.hpp"
#include "analysis/calibration.hpp"
#include "analysis/png_writer.hpp"
#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "kv/attention_options.hpp"
#include "kv/span_discovery.hpp"
#include "runtime/engine.hpp"

namespace ltri::cli {

namespace {

struct AttnOptions {
  std::string model_dir;
  std::string file;
  int64_t layer = 0;
  int64_t from = 0;
  int64_t to = -1;  // -1: T0 + 256, at most the text's length
  std::string head = "mean";
  std::string output = "attn.png";
  double theta = -1.0;  // < 0: the calibration file's θ for the layer, else 0.6
  int64_t span_min = 4;
  int64_t span_max = 256;
  double phi = 0.3;
  int64_t n_sink = AttentionOptions{}.n_init;
  double gamma = 0.5;
  int64_t size = 1024;
  bool no_spans = false;
  bool print_spans = false;
  std::string row_scale = "band";
  std::vector<int64_t> mark;  // {A, B}: tokens [A, B) marked
  int threads = 0;
};

int parse_head(const std::string& text, int64_t n_heads) {
  if (text == "mean") return AttentionProbe::kMeanOfHeads;
  char* end = nullptr;
  const long h = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || h < 0 || h >= n_heads) {
    fail("--head: expected 'mean' or a head in [0, ", n_heads, "), got '", text, "'");
  }
  return int(h);
}

int run_attn(const AttnOptions& o) {
  if (o.to >= 0 && o.from >= o.to) fail("--from ", o.from, " must be below --to ", o.to);
  const std::string text = read_text_file(o.file);
  const std::string dir = model_dir_from_flag(o.model_dir);
  ModelLoadOptions load;
  load.threads = o.threads;
  const Engine engine = Engine::load(dir, load);
  const ModelConfig& c = engine.model().config();
  if (o.layer < 0 || o.layer >= c.num_hidden_layers) {
    fail("--layer: ", o.layer, " is out of range, the model has layers 0..", c.num_hidden_layers - 1);
  }
  const int head = parse_head(o.head, c.num_attention_heads);
  const std::vector<int32_t> tokens = engine.tokenizer().encode(text);
  const int64_t n_tokens = int64_t(tokens.size());
  const int64_t to = o.to >= 0 ? o.to : std::min(n_tokens, o.from + 256);
  if (o.from >= n_tokens) fail("--from ", o.from, " is beyond the ", n_tokens, " tokens of ", o.file);
  if (to > n_tokens) fail("--to ", to, " is beyond the ", n_tokens, " tokens of ", o.file);
  if (to > c.max_position_embeddings) {
    fail("--to ", to, " is beyond the model's max_position_embeddings (", c.max_position_embeddings, ")");
  }
  const int64_t n = to - o.from;

  // θ: the flag, else the layer's calibrated value, else the spec's default.
  double theta = o.theta;
  std::string theta_source = "--theta";
  const std::string cal_path = (std::filesystem::path(dir) / "ltri_calibration.json").string();
  std::error_code ec;
  if (theta < 0.0 && std::filesystem::exists(cal_path, ec)) {
    const CalibrationFile cal = read_calibration_file(cal_path);
    if (o.layer < int64_t(cal.theta.size())) {
      theta = cal.theta[size_t(o.layer)];
      theta_source = cal_path;
    }
  }
  if (theta < 0.0) {
    theta = 0.6;
    theta_source = "default";
  }

  ProbeSettings settings;
  settings.row_begin = o.from;
  settings.row_end = to;
  settings.col_begin = o.from;
  settings.col_end = to;
  settings.map_heads.assign(size_t(c.num_hidden_layers), AttentionProbe::kNoMap);
  settings.map_heads[size_t(o.layer)] = head;
  settings.row_max_from = o.n_sink;
  settings.scale_band = o.row_scale == "band" ? o.span_max : 0;
  AttentionProbe probe(c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim, settings);
  SessionOptions options;
  options.max_context = to;
  options.observer = &probe;
  const std::unique_ptr<Session> session = engine.model().new_session(options);
  std::vector<float> logits(size_t(c.vocab_size));
  session->forward(std::span<const int32_t>(tokens.data(), size_t(to)), logits.data());

  const std::vector<float>& map = probe.map(o.layer);
  const std::vector<float>& row_max = probe.row_max(o.layer);
  std::vector<Span> spans;
  if (!o.no_spans) {
    SpanParams params;
    params.theta = float(theta);
    params.phi = float(o.phi);
    params.span_min = o.span_min;
    params.span_max = o.span_max;
    const SegmentationWindow w = band_from_square_map(map.data(), row_max.data(), n, std::min(o.span_max, n));
    spans = find_spans(w.view(), params);
  }
  PictureOptions picture;
  picture.target_px = o.size;
  picture.gamma = o.gamma;
  if (!o.mark.empty()) {
    if (o.mark.size() != 2 || o.mark[0] >= o.mark[1]) fail("--mark: expected A,B with A < B, got ", o.mark.size(), " numbers");
    picture.mark_begin = std::clamp<int64_t>(o.mark[0] - o.from, 0, n);
    picture.mark_end = std::clamp<int64_t>(o.mark[1] - o.from, 0, n);
  }
  const RgbImage image = render_attention(map.data(), row_max.data(), n, spans, picture);
  write_png(o.output, image);

  int64_t triangles = 0;
  for (const Span& s : spans) triangles += s.score > 0.0f ? 1 : 0;
  std::fprintf(stderr, "attn: layer %lld, %s, tokens [%lld, %lld): %zu spans (%lld triangles, mean length %.1f) at theta %.4f (%s); wrote %s (%lld x %lld px)\n",
               static_cast<long long>(o.layer), head < 0 ? "mean of heads" : cat("head ", head).c_str(),
               static_cast<long long>(o.from), static_cast<long long>(to), spans.size(), static_cast<long long>(triangles),
               spans.empty() ? 0.0 : double(n) / double(spans.size()), theta, theta_source.c_str(), o.output.c_str(),
               static_cast<long long>(image.width), static_cast<long long>(image.height));
  if (o.print_spans) {
    for (const Span& s : spans) {
      std::printf("%lld %lld %s %.3f\n", static_cast<long long>(o.from + s.start),
                  static_cast<long long>(o.from + s.start + s.length), s.score > 0.0f ? "triangle" : "gap", s.score);
    }
  }
  return 0;
}

}  // namespace

Subcommand add_attn_command(CLI::App& parent) {
  auto o = std::make_shared<AttnOptions>();
  CLI::App* app = parent.add_subcommand("attn", "Draw one layer's attention map with its detected spans (PNG)");
  app->add_option("-m,--model", o->model_dir, "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  app->add_option("-f,--file", o->file, "Text to run (the BOS token is added)")->required();
  app->add_option("--layer", o->layer, "Layer to draw")->required();
  app->add_option("--from", o->from, "First token of the window (T0)")->check(integer_at_least(0))->capture_default_str();
  app->add_option("--to", o->to, "One past the last token (T1; default T0 + 256, at most the text)")
      ->check(integer_at_least(1));
  app->add_option("--head", o->head, "A head index, or mean (of all heads)")->capture_default_str();
  app->add_option("-o,--output", o->output, "PNG file to write")->capture_default_str();
  app->add_option("--theta", o->theta, "Span threshold (default: the layer's value in ltri_calibration.json, else 0.6)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--span-min", o->span_min, "Shortest candidate span")->check(integer_at_least(1))->capture_default_str();
  app->add_option("--span-max", o->span_max, "Longest span")->check(integer_at_least(1))->capture_default_str();
  app->add_option("--phi", o->phi, "NMS IoU limit")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--sink", o->n_sink, "Initial tokens left out of each row's maximum (attention sinks)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("--gamma", o->gamma, "Brightness gamma (< 1 brightens faint cells)")
      ->check(CLI::Range(0.05, 4.0))->capture_default_str();
  app->add_option("--size", o->size, "Picture side in pixels, about")->check(CLI::Range(64, 4096))->capture_default_str();
  app->add_flag("--no-spans", o->no_spans, "Draw the map only");
  app->add_flag("--print-spans", o->print_spans, "Print the spans to stdout: first token, end token, kind, score");
  app->add_option("--row-scale", o->row_scale,
                  "Row scaling: band (each head's row by its max within span-max of the diagonal, as the "
                  "ltri policy does) or row (by the row's max over all non-sink columns)")
      ->check(CLI::IsMember({"band", "row"}))->capture_default_str();
  app->add_option("--mark", o->mark, "A,B: mark tokens [A, B) (e.g. a needle) with magenta bars at the edges")
      ->delimiter(',');
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")->check(integer_at_least(0))->capture_default_str();
  return {app, [o] { return run_attn(*o); }};
}

}  // namespace ltri::cli
