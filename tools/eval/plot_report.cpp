#include "plot_report.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "length_list.hpp"
#include "report_markdown.hpp"
#include "task_registry.hpp"

namespace ltri::eval {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

std::vector<int64_t> sorted_lengths(const EvalConfig& c) {
  std::vector<int64_t> lengths = c.lengths;
  std::sort(lengths.begin(), lengths.end());
  return lengths;
}

// A chart over the report's lengths with one series per policy from `value(policy, length)`.
LineChart length_chart(const EvalReport& report, const std::string& title, const std::string& y_label,
                       const std::function<double(const std::string&, int64_t)>& value) {
  LineChart chart;
  chart.title = title;
  chart.x_label = "context length (tokens)";
  chart.y_label = y_label;
  for (int64_t length : sorted_lengths(report.config)) chart.x_ticks.push_back(double(length));
  chart.x_tick_label = [](double x) { return format_length(int64_t(std::llround(x))); };
  for (size_t p = 0; p < report.config.policies.size(); ++p) {
    const std::string& policy = report.config.policies[p];
    Series s{policy, {}, {}, series_color(p), false};
    for (int64_t length : sorted_lengths(report.config)) {
      s.x.push_back(double(length));
      s.y.push_back(value(policy, length));
    }
    chart.series.push_back(std::move(s));
  }
  return chart;
}

std::string harness_note(const EvalConfig& c) {
  return c.question_placement == "after_context" ? "" : " [InfLLM variant: question before and after]";
}

void save(const RgbImage& image, const std::string& path, std::vector<std::string>& written) {
  write_png(path, image);
  written.push_back(path);
}

}  // namespace

HeatMap depth_heatmap(const EvalReport& report, const std::string& policy) {
  const EvalConfig& c = report.config;
  HeatMap map;
  std::string tasks;
  for (const std::string& t : c.tasks) {
    if (task_has_depth(t)) tasks += (tasks.empty() ? "" : ", ") + t;
  }
  if (tasks.size() > 60) tasks = cat(std::count(tasks.begin(), tasks.end(), ',') + 1, " tasks");
  map.title = cat(policy, ": accuracy by depth and length (", tasks, ")", harness_note(c));
  map.x_label = "context length (tokens)";
  map.y_label = "needle depth";
  map.scale_label = "accuracy %";
  const std::vector<int64_t> lengths = sorted_lengths(c);
  for (int64_t length : lengths) map.x_labels.push_back(format_length(length));
  for (double d : c.depths) map.y_labels.push_back(format_depth(d));
  for (double d : c.depths) {
    for (int64_t length : lengths) {
      double sum = 0;
      int64_t n = 0;
      for (const SampleResult& s : report.samples) {
        if (s.policy != policy || s.length != length || std::fabs(s.depth - d) > 1e-9) continue;
        sum += s.score;
        ++n;
      }
      map.values.push_back(n == 0 ? NAN : 100.0 * sum / double(n));
    }
  }
  return map;
}

LineChart accuracy_chart(const EvalReport& report) {
  LineChart chart = length_chart(report, "Accuracy vs context length" + harness_note(report.config),
                                 "accuracy % (all tasks)", [&](const std::string& policy, int64_t length) {
                                   double sum = 0;
                                   int64_t n = 0;
                                   for (const SampleResult& s : report.samples) {
                                     if (s.policy != policy || s.length != length) continue;
                                     sum += s.score;
                                     ++n;
                                   }
                                   return n == 0 ? NAN : 100.0 * sum / double(n);
                                 });
  chart.y_max = 100.0;
  return chart;
}

std::vector<std::string> write_report_pictures(const EvalReport& report, const std::string& stem) {
  std::vector<std::string> written;
  const EvalConfig& c = report.config;
  const bool any_depth = std::any_of(c.tasks.begin(), c.tasks.end(), [](const std::string& t) { return task_has_depth(t); });
  if (any_depth) {
    for (const std::string& policy : c.policies) {
      save(render_heatmap(depth_heatmap(report, policy)), stem + "_heatmap_" + policy + ".png", written);
    }
  }
  save(render_line_chart(accuracy_chart(report)), stem + "_accuracy.png", written);

  const auto samples_at = [&](const std::string& policy, int64_t length) {
    std::vector<const SampleResult*> out;
    for (const SampleResult& s : report.samples) {
      if (s.policy == policy && s.length == length) out.push_back(&s);
    }
    return out;
  };
  save(render_line_chart(length_chart(report, "Prefill speed vs context length", "prefill tokens/s",
                                      [&](const std::string& policy, int64_t length) {
                                        double tokens = 0, seconds = 0;
                                        for (const SampleResult* s : samples_at(policy, length)) {
                                          tokens += double(s->tokens);
                                          seconds += s->prefill_ms / 1000.0;
                                        }
                                        return seconds > 0 ? tokens / seconds : NAN;
                                      })),
       stem + "_prefill.png", written);

  // Memory: peak RSS per policy (solid) and the KV cache plus host KV store (dashed).
  const auto largest = [&](const std::string& policy, int64_t length, auto field) {
    double most = NAN;
    for (const SampleResult* s : samples_at(policy, length)) {
      const double v = double(field(*s)) / kMiB;
      most = std::isnan(most) ? v : std::max(most, v);
    }
    return most;
  };
  LineChart memory = length_chart(report, "Memory vs context length", "MiB", [&](const std::string& policy, int64_t length) {
    return largest(policy, length, [](const SampleResult& s) { return s.peak_rss_bytes; });
  });
  const LineChart kv = length_chart(report, "", "", [&](const std::string& policy, int64_t length) {
    return largest(policy, length, [](const SampleResult& s) { return s.kv_bytes + s.kv_host_bytes; });
  });
  for (Series& s : memory.series) s.name += " peak RSS";
  for (Series s : kv.series) {
    s.name += " KV + host KV";
    s.dashed = true;
    memory.series.push_back(std::move(s));
  }
  save(render_line_chart(memory), stem + "_memory.png", written);
  return written;
}

}  // namespace ltri::eval
