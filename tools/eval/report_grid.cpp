#include "report_grid.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "task_registry.hpp"

namespace ltri::eval {

std::vector<GridCell> grid_cells(const EvalConfig& config) {
  std::vector<int64_t> lengths = config.lengths;
  std::stable_sort(lengths.begin(), lengths.end());
  std::vector<GridCell> cells;
  for (int64_t length : lengths) {
    for (const std::string& task : config.tasks) {
      for (double depth : task_depths(task, config.depths)) {
        for (int64_t index = 0; index < config.samples; ++index) {
          for (const std::string& policy : config.policies) cells.push_back({task, length, depth, index, policy});
        }
      }
    }
  }
  return cells;
}

bool is_sample_of(const SampleResult& result, const GridCell& cell) {
  return result.policy == cell.policy && result.task == cell.task && result.length == cell.length &&
         std::fabs(result.depth - cell.depth) < 1e-9 && result.index == cell.index;
}

std::vector<GridCell> pending_cells(const std::vector<GridCell>& cells, const std::vector<SampleResult>& done) {
  std::vector<GridCell> pending;
  for (const GridCell& cell : cells) {
    const bool found = std::any_of(done.begin(), done.end(), [&](const SampleResult& r) { return is_sample_of(r, cell); });
    if (!found) pending.push_back(cell);
  }
  return pending;
}

namespace {

// The first path where a and b differ ("attention.n_local"), or "" if they are equal.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : b.items()) {
      const std::string sub = path.empty() ? key : path + "." + key;
      if (!a.contains(key)) return sub;
      const std::string d = first_difference(a[key], value, sub);
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : a.items()) {
      if (!b.contains(key)) return path.empty() ? key : path + "." + key;
    }
    return "";
  }
  return a == b ? "" : path;
}

const nlohmann::json* at_path(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* node = &j;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('.', start);
    if (end == std::string::npos) end = path.size();
    const std::string key = path.substr(start, end - start);
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
    start = end + 1;
  }
  return node;
}

}  // namespace

namespace {

// "seed: 20261122 in the file, 5 now" for the first field (but the thread count) where the two
// settings differ, or "" when they agree.
std::string settings_difference(const EvalConfig& previous, const EvalConfig& current) {
  nlohmann::json a = config_to_json(previous), b = config_to_json(current);
  a.erase("threads");
  b.erase("threads");
  const std::string diff = first_difference(a, b, "");
  if (diff.empty()) return "";
  const nlohmann::json* was = at_path(a, diff);
  const nlohmann::json* now = at_path(b, diff);
  return cat(diff, ": ", was ? was->dump() : "absent", " in the file, ", now ? now->dump() : "absent", " now");
}

}  // namespace

void check_same_settings(const EvalConfig& previous, const EvalConfig& current, const std::string& path) {
  const std::string diff = settings_difference(previous, current);
  if (diff.empty()) return;
  fail(path, ": made with different settings, cannot continue it (", diff, "); give another -o or the file's settings");
}

int64_t import_samples(EvalReport& report, const EvalReport& part, const std::vector<GridCell>& cells,
                       const std::string& path) {
  // A part stopped before its first sample was written before its model loaded: nothing in it.
  if (part.samples.empty()) return 0;
  // The grid's shape may differ between parts; what each sample ran with may not.
  EvalConfig a = part.config, b = report.config;
  a.tasks = b.tasks;
  a.policies = b.policies;
  a.attention.policy = b.attention.policy;
  a.lengths = b.lengths;
  a.depths = b.depths;
  a.samples = b.samples;
  // A part without prose or word tasks names no haystack or word list.
  if (a.haystack.empty() || b.haystack.empty()) a.haystack = b.haystack;
  if (a.words.empty() || b.words.empty()) a.words = b.words;
  const std::string diff = settings_difference(a, b);
  if (!diff.empty()) fail(path, ": made with different settings, cannot import it (", diff, ")");

  int64_t added = 0;
  for (const SampleResult& r : part.samples) {
    const auto is_cell = [&](const GridCell& c) { return is_sample_of(r, c); };
    const auto cell = std::find_if(cells.begin(), cells.end(), is_cell);
    if (cell == cells.end()) continue;
    const bool have = std::any_of(report.samples.begin(), report.samples.end(),
                                  [&](const SampleResult& s) { return is_sample_of(s, *cell); });
    if (have) continue;
    report.samples.push_back(r);
    ++added;
  }
  report.wall_s += part.wall_s;
  return added;
}

}  // namespace ltri::eval
