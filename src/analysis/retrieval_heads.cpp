#include "analysis/retrieval_heads.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/json_layout.hpp"
#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

RetrievalHeadCounter::RetrievalHeadCounter(int64_t n_layers, int64_t n_heads)
    : n_layers_(n_layers), n_heads_(n_heads), hits_(size_t(n_layers * n_heads), 0) {}

void RetrievalHeadCounter::add_copy_step(const AttentionProbe& probe, int64_t row,
                                         const std::vector<int32_t>& tokens, int64_t value_begin,
                                         int64_t value_end, int32_t copied) {
  ++copy_steps_;
  for (int64_t l = 0; l < n_layers_; ++l) {
    for (int64_t h = 0; h < n_heads_; ++h) {
      const int64_t c = probe.top1(row, l, h);
      if (c >= value_begin && c < value_end && c < int64_t(tokens.size()) && tokens[size_t(c)] == copied) {
        ++hits_[size_t(l * n_heads_ + h)];
      }
    }
  }
}

std::vector<std::vector<double>> RetrievalHeadCounter::scores() const {
  std::vector<std::vector<double>> s(size_t(n_layers_), std::vector<double>(size_t(n_heads_), 0.0));
  if (copy_steps_ == 0) return s;
  for (int64_t l = 0; l < n_layers_; ++l) {
    for (int64_t h = 0; h < n_heads_; ++h) {
      s[size_t(l)][size_t(h)] = double(hits_[size_t(l * n_heads_ + h)]) / double(copy_steps_);
    }
  }
  return s;
}

namespace {

// A value token is evidence of copying when its text has a letter or digit; the bare " " that
// byte-level BPE splits off before a number is not.
bool is_content_token(const Tokenizer& tokenizer, int32_t id) {
  const std::string text = tokenizer.decode({id});
  return std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
}

int32_t argmax(const std::vector<float>& logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace

NeedleRunStats score_needle_prompt(const Model& model, const Tokenizer& tokenizer,
                                   const NeedlePrompt& p, RetrievalHeadCounter& counter) {
  const ModelConfig& c = model.config();
  const int64_t n_prompt = int64_t(p.prompt.size());
  ProbeSettings settings;
  settings.row_begin = n_prompt - 1;  // only the rows that predict answer tokens
  settings.keep_top1 = true;
  AttentionProbe probe(c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim, settings);
  SessionOptions options;
  options.max_context = n_prompt + int64_t(p.answer.size());
  options.observer = &probe;  // attention stays "full"
  const std::unique_ptr<Session> session = model.new_session(options);

  std::vector<int32_t> tokens = p.prompt;
  std::vector<float> logits(size_t(c.vocab_size));
  session->forward(p.prompt, logits.data());
  NeedleRunStats stats;
  for (size_t j = 0; j < p.answer.size(); ++j) {
    const int32_t expected = p.answer[j];
    const int64_t row = n_prompt - 1 + int64_t(j);
    const bool in_value = int64_t(j) >= p.answer_value_begin && int64_t(j) < p.answer_value_begin + p.value_len;
    if (in_value && is_content_token(tokenizer, expected)) {
      ++stats.value_steps;
      if (argmax(logits) == expected) {
        ++stats.copy_steps;
        counter.add_copy_step(probe, row, tokens, p.value_begin, p.value_begin + p.value_len, expected);
      }
    }
    if (j + 1 < p.answer.size()) {
      tokens.push_back(expected);  // teacher forcing: feed the needle's token, right or wrong
      session->forward(std::span<const int32_t>(&expected, 1), logits.data());
    }
  }
  return stats;
}

void write_heads_file(const std::string& path, const HeadsFile& h) {
  nlohmann::ordered_json j;
  j["format"] = "ltri-heads-1";
  j["model"] = h.model;
  j["n_layers"] = h.n_layers;
  j["n_heads"] = h.n_heads;
  nlohmann::ordered_json scores = nlohmann::ordered_json::array();
  for (const auto& layer : h.scores) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (double s : layer) row.push_back(std::round(s * 1e4) / 1e4);
    scores.push_back(row);
  }
  j["scores"] = scores;
  j["threshold"] = h.threshold;
  j["samples"] = h.samples;
  j["lengths"] = h.lengths;
  j["command"] = h.command;
  j["copy_steps"] = h.copy_steps;
  j["value_steps"] = h.value_steps;
  write_json_file(path, j);
}

HeadsFile read_heads_file(const std::string& path) {
  nlohmann::json j = read_json_object(path, "ltri-heads-1");
  HeadsFile h;
  auto integer = [&](const char* name) {
    if (!j.contains(name) || !j[name].is_number_integer() || j[name].get<int64_t>() < 1) {
      fail(path, ": field '", name, "' must be a positive integer");
    }
    return j[name].get<int64_t>();
  };
  h.n_layers = integer("n_layers");
  h.n_heads = integer("n_heads");
  if (!j.contains("scores") || !j["scores"].is_array() || int64_t(j["scores"].size()) != h.n_layers) {
    fail(path, ": field 'scores' must be a list of n_layers (", h.n_layers, ") lists");
  }
  for (const auto& layer : j["scores"]) {
    if (!layer.is_array() || int64_t(layer.size()) != h.n_heads) {
      fail(path, ": field 'scores' must hold lists of n_heads (", h.n_heads, ") numbers");
    }
    std::vector<double> row;
    for (const auto& s : layer) {
      if (!s.is_number() || !(s.get<double>() >= 0.0 && s.get<double>() <= 1.0)) {
        fail(path, ": field 'scores' holds a value outside [0, 1]");
      }
      row.push_back(s.get<double>());
    }
    h.scores.push_back(std::move(row));
  }
  if (j.contains("model") && j["model"].is_string()) h.model = j["model"].get<std::string>();
  if (j.contains("threshold") && j["threshold"].is_number()) h.threshold = j["threshold"].get<double>();
  if (j.contains("samples") && j["samples"].is_number_integer()) h.samples = j["samples"].get<int64_t>();
  if (j.contains("command") && j["command"].is_string()) h.command = j["command"].get<std::string>();
  return h;
}

std::vector<int> best_head_per_layer(const HeadsFile& h) {
  std::vector<int> best;
  for (const auto& layer : h.scores) {
    best.push_back(int(std::max_element(layer.begin(), layer.end()) - layer.begin()));
  }
  return best;
}

std::string format_heads_table(const HeadsFile& h) {
  std::string out = "layer";
  for (int64_t head = 0; head < h.n_heads; ++head) out += cat("  head ", head);
  out += "\n";
  char cell[32];
  for (int64_t l = 0; l < int64_t(h.scores.size()); ++l) {
    std::snprintf(cell, sizeof cell, "%5lld", static_cast<long long>(l));
    out += cell;
    for (double s : h.scores[size_t(l)]) {
      std::snprintf(cell, sizeof cell, "  %5.3f%s", s, s >= h.threshold ? "*" : " ");
      out += cell;
    }
    out += "\n";
  }
  return out;
}

}  // namespace ltri
