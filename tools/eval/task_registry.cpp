#include "task_registry.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "cwe_task.hpp"
#include "fwe_task.hpp"
#include "kv_retrieval_task.hpp"
#include "number_string_task.hpp"
#include "passkey_task.hpp"
#include "vt_task.hpp"

namespace ltri::eval {

namespace {

bool is_niah(std::string_view task) {
  const std::vector<NiahSpec>& specs = niah_specs();
  return std::any_of(specs.begin(), specs.end(), [&](const NiahSpec& s) { return s.name == task; });
}

}  // namespace

std::vector<std::string> all_tasks() {
  std::vector<std::string> tasks{"passkey"};
  for (const NiahSpec& s : niah_specs()) tasks.push_back(s.name);
  for (const char* t : {"vt", "cwe", "fwe", "number_string", "kv_retrieval"}) tasks.push_back(t);
  return tasks;
}

std::string all_task_names() {
  std::string names;
  for (const std::string& t : all_tasks()) names += (names.empty() ? "" : ", ") + t;
  return names;
}

void check_task_name(std::string_view task) {
  const std::vector<std::string> tasks = all_tasks();
  if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) {
    fail("--task: unknown task '", task, "' (one of: ", all_task_names(), ")");
  }
}

bool task_needs_prose(std::string_view task) { return is_niah(task) && niah_needs_prose(find_niah_spec(task)); }

bool task_needs_words(std::string_view task) {
  return task == "cwe" || (is_niah(task) && niah_needs_words(find_niah_spec(task)));
}

bool task_has_depth(std::string_view task) { return task != "cwe" && task != "fwe"; }

std::vector<double> depth_grid(int64_t count) {
  if (count < 1) fail("--depths: must be >= 1, got ", count);
  if (count == 1) return {0.5};
  std::vector<double> depths;
  for (int64_t i = 0; i < count; ++i) depths.push_back(double(i) / double(count - 1));
  return depths;
}

std::vector<double> task_depths(std::string_view task, const std::vector<double>& grid) {
  return task_has_depth(task) ? grid : std::vector<double>{kNoDepth};
}

EvalSample make_sample(std::string_view task, const TaskSources& sources, const PromptFormat& format,
                       uint64_t seed, int64_t length, double depth, int64_t index, QuestionPlacement placement) {
  check_task_name(task);
  // The depth enters the seed in millionths, so 0.5 from any grid gives the same draw.
  // The placement does not: both placements of a cell ask about the same draw.
  const uint64_t depth_key = uint64_t(std::llround(depth * 1e6));
  EvalRng rng(SeedMixer(seed).add(task).add(uint64_t(length)).add(depth_key).add(uint64_t(index)).seed());
  const auto needs = [&](bool present, const char* what) {
    if (!present) fail(task, ": needs ", what);
  };
  TaskInstance instance = [&]() -> TaskInstance {
    if (task == "passkey") return make_passkey(rng, depth);
    if (task == "vt") return make_vt(rng, depth);
    if (task == "number_string") return make_number_string(rng, depth);
    if (task == "kv_retrieval") return make_kv_retrieval(rng, depth);
    if (task == "fwe") return make_fwe(rng, length);
    if (task == "cwe") {
      needs(sources.words != nullptr, "a word list (--words)");
      return make_cwe(*sources.words, rng, length);
    }
    return make_niah(find_niah_spec(task), {sources.prose, sources.words}, rng, depth);
  }();
  apply_question_placement(instance.parts, placement);
  return fit_prompt(instance, format, length, depth);
}

}  // namespace ltri::eval
