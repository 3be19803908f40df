#include "report_markdown.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"
#include "length_list.hpp"
#include "task_registry.hpp"

namespace ltri::eval {

namespace {

std::string row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const std::string& c : cells) out += " " + c + " |";
  return out + "\n";
}

std::string rule(size_t columns) {
  std::string out = "|---|";
  for (size_t i = 1; i < columns; ++i) out += "---:|";
  return out + "\n";
}

std::string fixed(double value, int decimals) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

std::string placement_label(const std::string& question_placement) {
  if (question_placement == "after_context") return "question after the context (RULER / InfiniteBench placement)";
  return "question before and after the context (InfLLM's variant: easier for retrieval methods, not comparable "
         "with RULER / InfiniteBench figures)";
}

std::string markdown_policy_table(const EvalReport& report) {
  const std::vector<std::string>& policies = report.config.policies;
  std::vector<std::string> head{"length \\ policy"};
  head.insert(head.end(), policies.begin(), policies.end());
  std::string out = row(head) + rule(head.size());
  std::vector<double> sum(policies.size(), 0.0);
  std::vector<int64_t> n(policies.size(), 0);
  const auto mean = [](double s, int64_t count) { return count == 0 ? std::string("-") : fixed(100.0 * s / double(count), 1); };
  for (int64_t length : report.config.lengths) {
    std::vector<std::string> line{format_length(length)};
    for (size_t p = 0; p < policies.size(); ++p) {
      double s = 0;
      int64_t count = 0;
      for (const SampleResult& r : report.samples) {
        if (r.policy != policies[p] || r.length != length) continue;
        s += r.score;
        ++count;
      }
      sum[p] += s;
      n[p] += count;
      line.push_back(mean(s, count));
    }
    out += row(line);
  }
  std::vector<std::string> line{"avg"};
  for (size_t p = 0; p < policies.size(); ++p) line.push_back(mean(sum[p], n[p]));
  return out + row(line);
}

std::string markdown_speed_memory_table(const EvalReport& report) {
  std::string out = row({"length", "policy", "samples", "prefill tok/s", "peak RSS MiB", "KV MiB", "host KV MiB"}) + rule(7);
  for (int64_t length : report.config.lengths) {
    for (const std::string& policy : report.config.policies) {
      double tokens = 0, prefill_s = 0;
      size_t rss = 0, kv = 0, host = 0;
      int64_t count = 0;
      for (const SampleResult& r : report.samples) {
        if (r.policy != policy || r.length != length) continue;
        tokens += double(r.tokens);
        prefill_s += r.prefill_ms / 1000.0;
        rss = std::max(rss, r.peak_rss_bytes);
        kv = std::max(kv, r.kv_bytes);
        host = std::max(host, r.kv_host_bytes);
        ++count;
      }
      if (count == 0) continue;
      out += row({format_length(length), policy, cat(count), prefill_s > 0 ? fixed(tokens / prefill_s, 0) : "-",
                  fixed(double(rss) / kMiB, 1), fixed(double(kv) / kMiB, 1), fixed(double(host) / kMiB, 1)});
    }
  }
  return out;
}

std::string markdown_report(const EvalReport& report) {
  const EvalConfig& c = report.config;
  std::string out = "# ltri eval report\n\n";
  out += cat("Model `", c.model_dir, "` (", c.architecture, ", max_position_embeddings ", c.max_position_embeddings,
             "); ", c.samples, " sample(s) per cell, seed ", c.seed, ", ", c.prompt_template, " template, ",
             placement_label(c.question_placement), ", greedy decoding, device ", c.device, ", ", c.threads,
             " thread(s), prefill chunk ", c.chunk, ". Scores are percentages (RULER string_match_all, InfiniteBench "
             "first_number / exact_word, see docs/eval.md).\n\n");
  out += "## Accuracy (%) by policy, tasks and depths averaged\n\n" + markdown_policy_table(report);
  for (const std::string& policy : c.policies) {
    const EvalReport mine = samples_of_policy(report, policy);
    out += cat("\n## ", policy, ": accuracy (%) by task and length, depths averaged\n\n", markdown_task_table(mine));
    for (const std::string& task : c.tasks) {
      if (!task_has_depth(task)) continue;
      out += cat("\n### ", policy, ", ", task, ": accuracy (%) by depth\n\n", markdown_depth_table(mine, task));
    }
  }
  out += "\n## Prefill speed and memory\n\n" + markdown_speed_memory_table(report);
  return out;
}

}  // namespace ltri::eval
