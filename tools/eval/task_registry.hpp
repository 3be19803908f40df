#pragma once
// Every task by name, and the one entry point that draws a sample: a task, a length, a depth
// and a sample index give the same prompt for the same seed on every machine, whatever other
// cells are run.
//
// | task            | benchmark     | scoring          | depth | sources          |
// |-----------------|---------------|------------------|-------|------------------|
// | passkey         | InfiniteBench | first_number     | yes   | -                |
// | niah_*          | RULER         | string_match_all | yes   | words, prose (*) |
// | vt              | RULER         | string_match_all | yes   | -                |
// | cwe             | RULER         | string_match_all | no    | words            |
// | fwe             | RULER         | string_match_all | no    | -                |
// | number_string   | InfiniteBench | first_number     | yes   | -                |
// | kv_retrieval    | InfiniteBench | exact_word       | yes   | -                |
// (*) niah_single_1, multikey_2/3 need no prose; multikey_3 needs no words.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "haystack.hpp"
#include "niah_task.hpp"
#include "prompt_fit.hpp"
#include "prompt_format.hpp"
#include "word_list.hpp"

namespace ltri::eval {

// Throws ltri::Error "--task: unknown task 'x' (one of: passkey, niah_single_1, ...)".
void check_task_name(std::string_view task);
std::string all_task_names();
// Every task name in order; "all" in a --tasks list means these.
std::vector<std::string> all_tasks();
bool task_needs_prose(std::string_view task);
bool task_needs_words(std::string_view task);
// False for tasks whose answer is spread over the whole context (cwe, fwe).
bool task_has_depth(std::string_view task);

struct TaskSources {
  const ProseText* prose = nullptr;
  const WordList* words = nullptr;
};

// `count` depths spread evenly over [0, 1]: 1 -> {0.5}, 2 -> {0, 1}, 11 -> {0, 0.1, ..., 1}.
std::vector<double> depth_grid(int64_t count);
// The depths a task is run at: `grid` for tasks with a depth, {kNoDepth} for the others.
std::vector<double> task_depths(std::string_view task, const std::vector<double>& grid);

// The sample of (task, length, depth, index) for `seed`, sized to `length` tokens, with the
// question placed as `placement` says.
EvalSample make_sample(std::string_view task, const TaskSources& sources, const PromptFormat& format,
                       uint64_t seed, int64_t length, double depth, int64_t index,
                       QuestionPlacement placement = QuestionPlacement::AfterContext);

}  // namespace ltri::eval
