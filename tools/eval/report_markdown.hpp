#pragma once
// The Markdown summary of an `ltri eval report` grid: the harness in one paragraph, accuracy
// by policy and length, a task x length table per policy (with averages), the depth x length
// tables of the tasks that have a depth, and prefill speed and memory by policy and length.
#include <string>

#include "eval_report.hpp"

namespace ltri::eval {

std::string markdown_report(const EvalReport& report);

// Accuracy (%), a row per length and a column per policy, tasks and depths averaged.
std::string markdown_policy_table(const EvalReport& report);

// Per length and policy: prefill tokens/s (all prompt tokens over all prefill time), the
// largest peak RSS, KV cache and host KV store of its samples, in MiB.
std::string markdown_speed_memory_table(const EvalReport& report);

// "question after the context (RULER / InfiniteBench placement)" or the InfLLM label.
std::string placement_label(const std::string& question_placement);

}  // namespace ltri::eval
