#include "analysis/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "analysis/attention_probe.hpp"
#include "analysis/json_layout.hpp"
#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

SegmentationWindow band_from_square_map(const float* map, const float* row_max, int64_t n, int64_t width) {
  if (n < 1 || width < 1) fail("segmentation window: bad size n ", n, ", width ", width);
  SegmentationWindow w;
  w.n = n;
  w.width = width;
  w.band.assign(size_t(n * width), 0.0f);
  w.row_max.assign(row_max, row_max + n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < width && i - d >= 0; ++d) w.band[size_t(i * width + d)] = map[i * n + (i - d)];
  }
  return w;
}

double needle_f1(const std::vector<Span>& spans, int64_t needle_begin, int64_t needle_end) {
  const int64_t needle = needle_end - needle_begin;
  if (needle <= 0) return 0.0;
  double best = 0.0;
  for (const Span& s : spans) {
    const int64_t overlap = std::min(s.start + s.length, needle_end) - std::max(s.start, needle_begin);
    if (overlap > 0) best = std::max(best, 2.0 * double(overlap) / double(s.length + needle));
  }
  return best;
}

ThetaScore evaluate_theta(const std::vector<SegmentationWindow>& windows, SpanParams params) {
  ThetaScore score;
  score.theta = params.theta;
  int64_t n_spans = 0, span_tokens = 0;
  for (const SegmentationWindow& w : windows) {
    const std::vector<Span> spans = find_spans(w.view(), params);
    score.f1 += needle_f1(spans, w.needle_begin, w.needle_end);
    n_spans += int64_t(spans.size());
    for (const Span& s : spans) span_tokens += s.length;
  }
  if (!windows.empty()) score.f1 /= double(windows.size());
  if (n_spans > 0) score.mean_span_len = double(span_tokens) / double(n_spans);
  return score;
}

ThetaScore best_theta(const std::vector<SegmentationWindow>& windows, const SpanParams& params,
                      const std::vector<double>& thetas) {
  if (thetas.empty()) fail("calibration: no θ candidates");
  ThetaScore best;
  best.f1 = -1.0;
  for (double theta : thetas) {
    SpanParams p = params;
    p.theta = float(theta);
    const ThetaScore s = evaluate_theta(windows, p);
    if (s.f1 > best.f1) best = s;
  }
  return best;
}

std::vector<double> random_thetas(int64_t trials, uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(lo, hi);
  std::vector<double> thetas;
  for (int64_t t = 0; t < trials; ++t) thetas.push_back(std::round(uniform(rng) * 1e4) / 1e4);
  return thetas;
}

std::vector<SegmentationWindow> needle_windows(const Model& model, const NeedlePrompt& p,
                                               const std::vector<int>& map_heads, int64_t window,
                                               int64_t width, int64_t n_sink, RowScale scale) {
  const ModelConfig& c = model.config();
  const int64_t n_prompt = int64_t(p.prompt.size());
  const int64_t n = std::min(window, n_prompt);
  const int64_t centre = (p.needle_begin + p.needle_end) / 2;
  const int64_t begin = std::clamp<int64_t>(centre - n / 2, 0, n_prompt - n);
  ProbeSettings settings;
  settings.row_begin = begin;
  settings.row_end = begin + n;
  settings.col_begin = begin;
  settings.col_end = begin + n;
  settings.map_heads = map_heads;
  settings.row_max_from = n_sink;
  settings.scale_band = scale == RowScale::Band ? width : 0;
  AttentionProbe probe(c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim, settings);
  SessionOptions options;
  options.max_context = n_prompt;
  options.observer = &probe;
  const std::unique_ptr<Session> session = model.new_session(options);
  // Only rows up to the window's end matter; the rest of the prompt is not run.
  std::vector<float> logits(size_t(c.vocab_size));
  session->forward(std::span<const int32_t>(p.prompt.data(), size_t(begin + n)), logits.data());

  std::vector<SegmentationWindow> windows;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    SegmentationWindow w = band_from_square_map(probe.map(l).data(), probe.row_max(l).data(), n, std::min(width, n));
    w.needle_begin = p.needle_begin - begin;
    w.needle_end = p.needle_end - begin;
    windows.push_back(std::move(w));
  }
  return windows;
}

void write_calibration_file(const std::string& path, const CalibrationFile& c) {
  auto rounded = [](const std::vector<double>& v, double scale) {
    std::vector<double> r;
    for (double x : v) r.push_back(std::round(x * scale) / scale);
    return r;
  };
  nlohmann::ordered_json j;
  j["format"] = "ltri-calibration-1";
  j["theta"] = rounded(c.theta, 1e4);
  j["phi"] = c.phi;
  j["span_min"] = c.span_min;
  j["span_max"] = c.span_max;
  j["f1"] = rounded(c.f1, 1e4);
  j["mean_span_len"] = rounded(c.mean_span_len, 1e2);
  j["segmentation_heads"] = c.segmentation_heads;
  if (!c.heads.empty()) j["heads"] = c.heads;
  j["row_scale"] = c.row_scale;
  j["samples"] = c.samples;
  j["trials"] = c.trials;
  j["window"] = c.window;
  j["n_sink"] = c.n_sink;
  j["lengths"] = c.lengths;
  j["command"] = c.command;
  write_json_file(path, j);
}

CalibrationFile read_calibration_file(const std::string& path) {
  nlohmann::json j = read_json_object(path, "ltri-calibration-1");
  CalibrationFile c;
  auto numbers = [&](const char* name, bool required) {
    std::vector<double> v;
    if (!j.contains(name)) {
      if (required) fail(path, ": field '", name, "' is missing");
      return v;
    }
    if (!j[name].is_array()) fail(path, ": field '", name, "' must be a list of numbers");
    for (const auto& x : j[name]) {
      if (!x.is_number() || !std::isfinite(x.get<double>())) fail(path, ": field '", name, "' must be a list of numbers");
      v.push_back(x.get<double>());
    }
    return v;
  };
  c.theta = numbers("theta", true);
  if (c.theta.empty()) fail(path, ": field 'theta' is empty");
  for (double t : c.theta) {
    if (!(t >= 0.0 && t <= 1.0)) fail(path, ": field 'theta' holds ", t, ", outside [0, 1]");
  }
  c.f1 = numbers("f1", false);
  c.mean_span_len = numbers("mean_span_len", false);
  if (j.contains("phi") && j["phi"].is_number()) c.phi = j["phi"].get<double>();
  if (j.contains("span_min") && j["span_min"].is_number_integer()) c.span_min = j["span_min"].get<int64_t>();
  if (j.contains("span_max") && j["span_max"].is_number_integer()) c.span_max = j["span_max"].get<int64_t>();
  if (j.contains("segmentation_heads") && j["segmentation_heads"].is_string()) {
    c.segmentation_heads = j["segmentation_heads"].get<std::string>();
  }
  if (j.contains("row_scale") && j["row_scale"].is_string()) c.row_scale = j["row_scale"].get<std::string>();
  if (j.contains("heads") && j["heads"].is_array()) {
    for (const auto& h : j["heads"]) {
      if (h.is_number_integer()) c.heads.push_back(h.get<int>());
    }
  }
  return c;
}

}  // namespace ltri
