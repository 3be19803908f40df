#include "kv/policy_files.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

namespace {

using nlohmann::json;

json parse_file(const std::string& path, const char* format) {
  const std::string text = read_text_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {
    fail(path, ": not valid JSON");
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != format) {
    fail(path, ": field 'format' must be \"", format, "\"");
  }
  return j;
}

int64_t shape_field(const json& j, const std::string& path, const char* name, int64_t expected,
                    const char* what) {
  if (!j.contains(name) || !j[name].is_number_integer()) fail(path, ": field '", name, "' must be an integer");
  const int64_t got = j[name].get<int64_t>();
  if (got != expected) fail(path, ": ", name, " is ", got, " but the model has ", expected, " ", what);
  return got;
}

double number_in(const json& v, const std::string& path, const std::string& where, double lo, double hi) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo || v.get<double>() > hi) {
    fail(path, ": ", where, " must be a number in [", lo, ", ", hi, "]");
  }
  return v.get<double>();
}

}  // namespace

int64_t RetrievalHeads::best_head(int64_t layer) const {
  const auto& row = scores[size_t(layer)];
  return int64_t(std::max_element(row.begin(), row.end()) - row.begin());
}

float RetrievalHeads::best_score(int64_t layer) const {
  return scores[size_t(layer)][size_t(best_head(layer))];
}

RetrievalHeads load_retrieval_heads(const std::string& path, int64_t n_layers, int64_t n_heads) {
  const json j = parse_file(path, "ltri-heads-1");
  shape_field(j, path, "n_layers", n_layers, "layers");
  shape_field(j, path, "n_heads", n_heads, "attention heads");
  if (!j.contains("scores") || !j["scores"].is_array() || int64_t(j["scores"].size()) != n_layers) {
    fail(path, ": field 'scores' must be a list of ", n_layers, " lists (one per layer)");
  }
  RetrievalHeads heads;
  for (int64_t l = 0; l < n_layers; ++l) {
    const json& row = j["scores"][size_t(l)];
    if (!row.is_array() || int64_t(row.size()) != n_heads) {
      fail(path, ": scores[", l, "] must be a list of ", n_heads, " numbers (one per head)");
    }
    std::vector<float> layer;
    for (int64_t h = 0; h < n_heads; ++h) {
      layer.push_back(float(number_in(row[size_t(h)], path, cat("scores[", l, "][", h, "]"), 0.0, 1.0)));
    }
    heads.scores.push_back(std::move(layer));
  }
  if (j.contains("threshold")) heads.threshold = number_in(j["threshold"], path, "field 'threshold'", 0.0, 1.0);
  return heads;
}

SpanCalibration load_span_calibration(const std::string& path, int64_t n_layers) {
  const json j = parse_file(path, "ltri-calibration-1");
  if (!j.contains("theta") || !j["theta"].is_array() || int64_t(j["theta"].size()) != n_layers) {
    fail(path, ": field 'theta' must be a list of ", n_layers, " numbers (one per layer)");
  }
  SpanCalibration cal;
  for (int64_t l = 0; l < n_layers; ++l) {
    cal.theta.push_back(number_in(j["theta"][size_t(l)], path, cat("theta[", l, "]"), 0.0, 1.0));
  }
  if (j.contains("phi")) cal.phi = number_in(j["phi"], path, "field 'phi'", 0.0, 1.0);
  for (const char* name : {"span_min", "span_max"}) {
    if (!j.contains(name)) continue;
    if (!j[name].is_number_integer() || j[name].get<int64_t>() < 1) {
      fail(path, ": field '", name, "' must be a positive integer");
    }
    (std::string(name) == "span_min" ? cal.span_min : cal.span_max) = j[name].get<int64_t>();
  }
  if (j.contains("segmentation_heads")) {
    const json& s = j["segmentation_heads"];
    if (!s.is_string() || (s.get<std::string>() != "mean" && s.get<std::string>() != "retrieval")) {
      fail(path, ": field 'segmentation_heads' must be \"mean\" or \"retrieval\"");
    }
    cal.segmentation_heads = s.get<std::string>();
  }
  return cal;
}

}  // namespace ltri
