#include "eval_report.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "core/error.hpp"
#include "length_list.hpp"

namespace ltri::eval {

using nlohmann::json;

namespace {

json attention_to_json(const AttentionOptions& a) {
  return {{"policy", a.policy},
          {"n_init", a.n_init},
          {"n_local", a.n_local},
          {"budget", a.budget},
          {"placement", a.placement},
          {"host_kv", a.host_kv},
          {"index_dtype", a.index_dtype},
          {"async_store", a.async_store},
          {"block_size", a.block_size},
          {"block_repr", a.block_repr},
          {"span_min", a.span_min},
          {"span_max", a.span_max},
          {"theta", a.theta},
          {"phi", a.phi},
          {"index", a.index},
          {"index_static", a.index_static},
          {"lambda", a.lambda},
          {"index_max", a.index_max},
          {"score_heads", a.score_heads},
          {"seg_heads", a.seg_heads},
          {"voting", a.voting},
          {"persist", a.persist},
          {"decode_retrieval", a.decode_retrieval},
          {"retrieval_query", a.retrieval_query},
          {"query_block", a.query_block},
          {"question_tokens", a.question_tokens},
          {"question_chunk", a.question_chunk},
          {"span_cache_tokens", a.span_cache_tokens},
          {"decode_band_batch", a.decode_band_batch},
          {"heads_file", a.heads_file},
          {"calibration_file", a.calibration_file}};
}

// Reads json[key] into `out`, naming the field (with its path) when it is missing or mistyped.
// As read(), for a field added in version 2: absent from version 1 files, where `out` keeps
// its default.
template <class T>
void read_v2(const json& object, const std::string& path, const char* key, T& out, int version);

template <class T>
void read(const json& object, const std::string& path, const char* key, T& out) {
  const auto it = object.find(key);
  if (it == object.end()) fail("eval results: field '", path, key, "' is missing");
  try {
    out = it->template get<T>();
  } catch (const json::exception&) {
    fail("eval results: field '", path, key, "' has the wrong type (", it->type_name(), ")");
  }
}

template <class T>
void read_v2(const json& object, const std::string& path, const char* key, T& out, int version) {
  if (version < 2 && object.find(key) == object.end()) return;
  read(object, path, key, out);
}

const json& object_at(const json& parent, const std::string& path, const char* key) {
  const auto it = parent.find(key);
  if (it == parent.end() || !it->is_object()) fail("eval results: field '", path, key, "' must be an object");
  return *it;
}

AttentionOptions attention_from_json(const json& j, int version) {
  AttentionOptions a;
  const std::string p = "config.attention.";
  read(j, p, "policy", a.policy);
  read(j, p, "n_init", a.n_init);
  read(j, p, "n_local", a.n_local);
  read(j, p, "budget", a.budget);
  read(j, p, "placement", a.placement);
  if (version >= 5) read(j, p, "host_kv", a.host_kv);  // before: always f32
  // Before version 7 the index was always f32: what "auto" gives with an f32 store (so such a
  // file resumes under the default flags), and "f32" beside a bf16 or int8 store.
  a.index_dtype = a.host_kv == "f32" ? "auto" : "f32";
  if (version >= 7) read(j, p, "index_dtype", a.index_dtype);
  a.async_store = "off";  // before version 6 the store step always ran on the calling thread
  if (version >= 6) read(j, p, "async_store", a.async_store);
  read(j, p, "block_size", a.block_size);
  read(j, p, "block_repr", a.block_repr);
  read(j, p, "span_min", a.span_min);
  read(j, p, "span_max", a.span_max);
  read(j, p, "theta", a.theta);
  read(j, p, "phi", a.phi);
  read(j, p, "index", a.index);
  read(j, p, "index_static", a.index_static);
  read(j, p, "lambda", a.lambda);
  read(j, p, "index_max", a.index_max);
  read(j, p, "score_heads", a.score_heads);
  // Before version 3 the segmentation map always came from the scoring heads.
  a.seg_heads = a.score_heads;
  if (version >= 3) read(j, p, "seg_heads", a.seg_heads);
  read(j, p, "voting", a.voting);
  read(j, p, "persist", a.persist);
  if (version >= 4) read(j, p, "decode_retrieval", a.decode_retrieval);  // before: always on
  read_v2(j, p, "retrieval_query", a.retrieval_query, version);
  read_v2(j, p, "query_block", a.query_block, version);
  a.question_tokens = 0;  // before version 8 the whole last chunk scored the persistent set
  if (version >= 8) read(j, p, "question_tokens", a.question_tokens);
  a.question_chunk = false;  // before version 9 the question shared the prompt's last chunk
  if (version >= 9) read(j, p, "question_chunk", a.question_chunk);
  read(j, p, "span_cache_tokens", a.span_cache_tokens);
  a.decode_band_batch = 1;  // before version 10 every decode step ran its own band
  if (version >= 10) read(j, p, "decode_band_batch", a.decode_band_batch);
  read(j, p, "heads_file", a.heads_file);
  read(j, p, "calibration_file", a.calibration_file);
  return a;
}

}  // namespace

json config_to_json(const EvalConfig& c) {
  return {{"command", c.command},
                 {"tasks", c.tasks},
                 {"policies", c.policies},
                 {"model", {{"dir", c.model_dir},
                            {"architecture", c.architecture},
                            {"max_position_embeddings", c.max_position_embeddings}}},
                 {"attention", attention_to_json(c.attention)},
                 {"lengths", c.lengths},
                 {"depths", c.depths},
                 {"samples", c.samples},
                 {"seed", c.seed},
                 {"template", c.prompt_template},
                 {"question_placement", c.question_placement},
                 {"chunk", c.chunk},
                 {"threads", c.threads},
                 {"max_new_tokens", c.max_new_tokens},
                 {"context", c.context},
                 {"haystack", c.haystack},
                 {"words", c.words},
                 {"device", c.device},
                 {"decoding", "greedy"}};
}

json report_to_json(const EvalReport& report) {
  const json config = config_to_json(report.config);
  json samples = json::array();
  for (const SampleResult& s : report.samples) {
    samples.push_back({{"policy", s.policy},
                       {"task", s.task},
                       {"length", s.length},
                       {"tokens", s.tokens},
                       {"depth", s.depth},
                       {"needle_depths", s.needle_depths},
                       {"index", s.index},
                       {"expected", s.expected},
                       {"output", s.output},
                       {"scoring", s.scoring},
                       {"score", s.score},
                       {"correct", s.correct},
                       {"prefill_ms", s.prefill_ms},
                       {"decode_ms", s.decode_ms},
                       {"generated_tokens", s.generated_tokens},
                       {"stop_reason", s.stop_reason},
                       {"context", s.context},
                       {"peak_rss_bytes", s.peak_rss_bytes},
                       {"kv_bytes", s.kv_bytes},
                       {"kv_host_bytes", s.kv_host_bytes},
                       {"haystack_repeated", s.haystack_repeated}});
  }
  return {{"format", "ltri-eval"}, {"version", 10}, {"config", config}, {"samples", samples}, {"wall_s", report.wall_s}};
}

EvalReport report_from_json(const json& j) {
  if (!j.is_object() || j.value("format", "") != "ltri-eval") {
    fail("eval results: not an ltri eval file (no \"format\": \"ltri-eval\")");
  }
  int version = 0;
  read(j, "", "version", version);
  if (version < 1 || version > 10) fail("eval results: version ", version, " is not one this build reads (1 to 10)");
  EvalReport r;
  const json& c = object_at(j, "", "config");
  const json& model = object_at(c, "config.", "model");
  EvalConfig& cfg = r.config;
  read(c, "config.", "command", cfg.command);
  read(c, "config.", "tasks", cfg.tasks);
  read_v2(c, "config.", "policies", cfg.policies, version);
  read(model, "config.model.", "dir", cfg.model_dir);
  read(model, "config.model.", "architecture", cfg.architecture);
  read(model, "config.model.", "max_position_embeddings", cfg.max_position_embeddings);
  cfg.attention = attention_from_json(object_at(c, "config.", "attention"), version);
  if (version < 2) cfg.policies = {cfg.attention.policy};
  read(c, "config.", "lengths", cfg.lengths);
  read(c, "config.", "depths", cfg.depths);
  read(c, "config.", "samples", cfg.samples);
  read(c, "config.", "seed", cfg.seed);
  read(c, "config.", "template", cfg.prompt_template);
  read(c, "config.", "question_placement", cfg.question_placement);
  read(c, "config.", "chunk", cfg.chunk);
  read(c, "config.", "threads", cfg.threads);
  read(c, "config.", "max_new_tokens", cfg.max_new_tokens);
  read(c, "config.", "context", cfg.context);
  read(c, "config.", "haystack", cfg.haystack);
  read(c, "config.", "words", cfg.words);
  read(c, "config.", "device", cfg.device);
  const auto samples = j.find("samples");
  if (samples == j.end() || !samples->is_array()) fail("eval results: field 'samples' must be an array");
  for (size_t i = 0; i < samples->size(); ++i) {
    const json& e = (*samples)[i];
    const std::string p = cat("samples[", i, "].");
    if (!e.is_object()) fail("eval results: '", p.substr(0, p.size() - 1), "' must be an object");
    SampleResult s;
    s.policy = cfg.attention.policy;
    read_v2(e, p, "policy", s.policy, version);
    read(e, p, "task", s.task);
    read(e, p, "length", s.length);
    read(e, p, "tokens", s.tokens);
    read(e, p, "depth", s.depth);
    read(e, p, "needle_depths", s.needle_depths);
    read(e, p, "index", s.index);
    read(e, p, "expected", s.expected);
    read(e, p, "output", s.output);
    read(e, p, "scoring", s.scoring);
    read(e, p, "score", s.score);
    read(e, p, "correct", s.correct);
    read(e, p, "prefill_ms", s.prefill_ms);
    read(e, p, "decode_ms", s.decode_ms);
    read(e, p, "generated_tokens", s.generated_tokens);
    read(e, p, "stop_reason", s.stop_reason);
    read(e, p, "context", s.context);
    read(e, p, "peak_rss_bytes", s.peak_rss_bytes);
    read(e, p, "kv_bytes", s.kv_bytes);
    read_v2(e, p, "kv_host_bytes", s.kv_host_bytes, version);
    read(e, p, "haystack_repeated", s.haystack_repeated);
    r.samples.push_back(std::move(s));
  }
  read(j, "", "wall_s", r.wall_s);
  return r;
}

EvalReport read_report(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) fail(path, ": cannot read the results file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  try {
    return report_from_json(j);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

EvalReport samples_of_policy(const EvalReport& report, const std::string& policy) {
  EvalReport out;
  out.config = report.config;
  out.wall_s = report.wall_s;
  for (const SampleResult& s : report.samples) {
    if (s.policy == policy) out.samples.push_back(s);
  }
  return out;
}

void write_report(const EvalReport& report, const std::string& path) {
  // Invalid UTF-8 in generated text is written as U+FFFD rather than failing the whole run.
  const std::string text = report_to_json(report).dump(1, ' ', false, json::error_handler_t::replace) + "\n";
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail(path, ": cannot write the results (", std::strerror(errno), ")");
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    fail(path, ": cannot write the results (", std::strerror(errno), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail(path, ": cannot write the results (", std::strerror(err), ")");
  }
}

std::string format_depth(double depth) {
  const double percent = depth * 100.0;
  char text[32];
  if (std::fabs(percent - std::round(percent)) < 1e-9) {
    std::snprintf(text, sizeof text, "%.0f%%", percent);
  } else {
    std::snprintf(text, sizeof text, "%.1f%%", percent);
  }
  return text;
}

namespace {

// Mean score (%) of samples; "-" when there are none.
struct Mean {
  double sum = 0;
  int64_t n = 0;
  void add(double score) {
    sum += score;
    ++n;
  }
  std::string text() const {
    if (n == 0) return "-";
    char out[32];
    std::snprintf(out, sizeof out, "%.1f", 100.0 * sum / double(n));
    return out;
  }
};

std::string table_row(const std::vector<std::string>& cells) {
  std::string row = "|";
  for (const std::string& c : cells) row += " " + c + " |";
  return row + "\n";
}

std::string header_rows(const std::string& first, const std::vector<std::string>& columns) {
  std::vector<std::string> head{first};
  head.insert(head.end(), columns.begin(), columns.end());
  head.push_back("avg");
  std::string rule = "|---|";
  for (size_t i = 0; i <= columns.size(); ++i) rule += "---:|";
  return table_row(head) + rule + "\n";
}

bool same_depth(double a, double b) { return std::fabs(a - b) < 1e-9; }

}  // namespace

std::string markdown_depth_table(const EvalReport& report, const std::string& task) {
  const std::vector<double>& depths = report.config.depths;
  std::vector<std::string> columns;
  for (double d : depths) columns.push_back(format_depth(d));
  std::string out = header_rows("length \\ depth", columns);
  std::vector<Mean> column_means(depths.size());
  Mean all;
  for (int64_t length : report.config.lengths) {
    std::vector<Mean> cells(depths.size());
    Mean row;
    for (const SampleResult& s : report.samples) {
      if (s.task != task || s.length != length) continue;
      for (size_t i = 0; i < depths.size(); ++i) {
        if (!same_depth(s.depth, depths[i])) continue;
        cells[i].add(s.score);
        column_means[i].add(s.score);
      }
      row.add(s.score);
      all.add(s.score);
    }
    std::vector<std::string> line{format_length(length)};
    for (const Mean& m : cells) line.push_back(m.text());
    line.push_back(row.text());
    out += table_row(line);
  }
  std::vector<std::string> line{"avg"};
  for (const Mean& m : column_means) line.push_back(m.text());
  line.push_back(all.text());
  return out + table_row(line);
}

std::string markdown_task_table(const EvalReport& report) {
  const std::vector<std::string>& tasks = report.config.tasks;
  std::string out = header_rows("length \\ task", tasks);
  std::vector<Mean> column_means(tasks.size());
  Mean all;
  for (int64_t length : report.config.lengths) {
    std::vector<Mean> cells(tasks.size());
    Mean row;
    for (const SampleResult& s : report.samples) {
      if (s.length != length) continue;
      const auto t = std::find(tasks.begin(), tasks.end(), s.task);
      if (t == tasks.end()) continue;
      cells[size_t(t - tasks.begin())].add(s.score);
      column_means[size_t(t - tasks.begin())].add(s.score);
      row.add(s.score);
      all.add(s.score);
    }
    std::vector<std::string> line{format_length(length)};
    for (const Mean& m : cells) line.push_back(m.text());
    line.push_back(row.text());
    out += table_row(line);
  }
  std::vector<std::string> line{"avg"};
  for (const Mean& m : column_means) line.push_back(m.text());
  line.push_back(all.text());
  return out + table_row(line);
}

}  // namespace ltri::eval
