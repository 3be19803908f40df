#include "bench_report.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "runtime/model_info.hpp"

namespace ltri::cli {

namespace {

std::string rate_text(const BenchTest& t) {
  char text[64];
  if (t.samples_ts.size() > 1) {
    std::snprintf(text, sizeof text, "%.2f ± %.2f", t.avg_ts, t.stddev_ts);
  } else {
    std::snprintf(text, sizeof text, "%.2f", t.avg_ts);
  }
  return text;
}

std::string ttft_text(const BenchTest& t) {
  if (t.samples_ttft_ms.empty()) return "-";
  char text[32];
  if (t.avg_ttft_ms >= 1000.0) {
    std::snprintf(text, sizeof text, "%.2f s", t.avg_ttft_ms / 1000.0);
  } else {
    std::snprintf(text, sizeof text, "%.1f ms", t.avg_ttft_ms);
  }
  return text;
}

std::string bytes_text(double bytes) { return bytes > 0.0 ? format_bytes(bytes) : "-"; }

}  // namespace

std::string bench_markdown(const BenchSetup& s, const std::vector<BenchTest>& tests) {
  const std::string backend = s.backend == "CPU" ? cat("CPU (", s.threads, s.threads == 1 ? " thread)" : " threads)") : s.backend;
  std::string out;
  out += "| model | size | params | backend | policy | test | t/s | ttft | peak dev | peak host | h2d |\n";
  out += "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const BenchTest& t : tests) {
    out += cat("| ", s.model, " | ", format_bytes(double(s.weight_bytes)), " | ", format_param_count(s.params), " | ",
               backend, " | ", t.policy, " | ", t.name(), " | ", rate_text(t), " | ", ttft_text(t), " | ",
               bytes_text(double(t.memory.peak_device_bytes)), " | ", bytes_text(double(t.memory.peak_host_bytes)),
               " | ", bytes_text(double(t.memory.h2d_bytes)), " |\n");
  }
  out += "\nttft: prefill + first token. peak dev: backend memory (weights, KV, activations); peak host: "
         "process RSS; both the most during the test. h2d: host->device bytes in the test (pp: the "
         "prefill, tg: the whole decode run).\n";
  return out;
}

std::string bench_json(const BenchSetup& s, const BenchOptions& o, const std::vector<BenchTest>& tests) {
  const AttentionOptions& a = o.attention;
  nlohmann::json doc = {{"engine", "ltri"},
                        {"model", s.model},
                        {"architecture", s.architecture},
                        {"random_weights", s.random_weights},
                        {"params", s.params},
                        {"weight_bytes", s.weight_bytes},
                        {"backend", s.backend},
                        {"threads", s.threads},
                        {"n_batch", o.chunk},
                        {"repetitions", o.repetitions},  // 0: the default (3, or 1 from 32k tokens)
                        {"load_ms", s.load_ms},
                        {"peak_rss_bytes", s.peak_rss_bytes},
                        {"attention",
                         {{"n_init", a.n_init},
                          {"n_local", a.n_local},
                          {"budget", a.budget},
                          {"placement", a.placement},
                          {"host_kv", a.host_kv},
                          {"index_dtype", a.index_dtype},
                          {"async_store", a.async_store},
                          {"block_size", a.block_size},
                          {"span_min", a.span_min},
                          {"span_max", a.span_max},
                          {"span_cache_tokens", a.span_cache_tokens},
                          {"lambda", a.lambda},
                          {"decode_retrieval", a.decode_retrieval},
                          {"decode_band_batch", a.decode_band_batch}}},
                        {"tests", nlohmann::json::array()}};
  for (const BenchTest& t : tests) {
    nlohmann::json row = {{"test", t.name()},
                          {"policy", t.policy},
                          {"n_prompt", t.n_prompt},
                          {"n_gen", t.n_gen},
                          {"n_depth", t.n_depth},
                          {"samples_ms", t.samples_ms},
                          {"samples_ts", t.samples_ts},
                          {"avg_ts", t.avg_ts},
                          {"stddev_ts", t.stddev_ts},
                          {"ttft_ms", nullptr},
                          {"samples_ttft_ms", t.samples_ttft_ms},
                          {"h2d_bytes", t.memory.h2d_bytes},
                          {"d2h_bytes", t.memory.d2h_bytes},
                          {"peak_device_bytes", t.memory.peak_device_bytes},
                          {"peak_host_bytes", t.memory.peak_host_bytes},
                          {"peak_host_scope", t.memory.host_peak_is_per_phase ? "test" : "process"},
                          {"kv_bytes", t.memory.kv_bytes},
                          {"kv_host_bytes", t.memory.kv_host_bytes}};
    if (!t.samples_ttft_ms.empty()) row["ttft_ms"] = t.avg_ttft_ms;
    doc["tests"].push_back(std::move(row));
  }
  return doc.dump(2) + "\n";
}

}  // namespace ltri::cli
