// ltri eval passkey|niah: builds long-context retrieval tasks in the model's own tokens, runs
// each (length, depth, sample) through a fresh session with greedy decoding, scores it as the
// benchmark does, and reports: progress on stderr, Markdown tables on stdout, every sample in
// JSON (-o). The tasks, formats and scoring are in tools/eval/ and docs/eval.md.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <omp.h>

#include "attention_flags.hpp"
#include "cmd_eval_report.hpp"
#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "eval/eval_report.hpp"
#include "eval/eval_runner.hpp"
#include "eval/length_list.hpp"
#include "eval/progress.hpp"
#include "eval/task_registry.hpp"
#include "io/model_config.hpp"
#include "runtime/engine.hpp"
#include "runtime/model_info.hpp"

#ifndef LTRI_DEFAULT_HAYSTACK
#define LTRI_DEFAULT_HAYSTACK ""
#endif

namespace ltri::cli {

namespace {

using namespace ltri::eval;

struct EvalOptions {
  std::string model_dir;
  std::string lengths = "4k";
  int64_t depths = 11;
  int64_t samples = 1;
  std::string tasks = "niah_single_2";  // niah only
  int64_t chunk = 512;
  int threads = 0;
  int64_t n_predict = 0;
  int64_t context = 0;
  int64_t seed = 20261122;
  std::string output;
  std::string haystack;
  std::string words = kDefaultWordsFile;
  bool chat = false;
  std::string device = "cpu";
  AttentionOptions attention;
  std::string question = "after";  // question placement: after | both (InfLLM's variant)
  bool quiet = false;
};

std::vector<std::string> split_tasks(const std::string& list) {
  std::vector<std::string> tasks;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string name = list.substr(start, end - start);
    if (name == "all") {
      for (const NiahSpec& s : niah_specs()) tasks.push_back(s.name);
    } else if (std::find(tasks.begin(), tasks.end(), name) == tasks.end()) {
      tasks.push_back(name);
    }
    start = end + 1;
  }
  return tasks;
}

// CLI11 validators: bad values are usage errors (exit 2) named after the flag.
CLI::Validator length_list_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          parse_lengths(value);
        } catch (const Error& e) {
          std::string message = e.what();
          const std::string prefix = "--lengths: ";
          return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
        }
        return {};
      },
      "LENGTHS");
}

CLI::Validator niah_task_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        for (const std::string& task : split_tasks(value)) {
          if (task == "passkey") return "passkey has its own command: ltri eval passkey";
          try {
            find_niah_spec(task);
          } catch (const Error&) {
            return cat("unknown task '", task, "' (one of: ", niah_task_names(), ", all)");
          }
        }
        return {};
      },
      "TASKS");
}

// Fails now, before any model is loaded, if the results file cannot be written.
void check_output_writable(const std::string& path, const EvalReport& empty_report) {
  if (path.empty()) return;
  write_report(empty_report, path);
}

int run_eval(const std::string& command, const EvalOptions& o) {
  set_log_level(o.quiet ? LogLevel::Quiet : LogLevel::Info);
  const Timer wall;
  const Device device = parse_device(o.device);
  const std::vector<int64_t> lengths = parse_lengths(o.lengths);
  const std::vector<double> depths = depth_grid(o.depths);
  if (o.samples < 1) fail("--samples: must be >= 1, got ", o.samples);
  const std::vector<std::string> tasks = command == "passkey" ? std::vector<std::string>{"passkey"} : split_tasks(o.tasks);
  for (const std::string& t : tasks) check_task_name(t);

  EvalReport report;
  EvalConfig& config = report.config;
  config.command = command;
  config.tasks = tasks;
  config.policies = {o.attention.policy};
  config.attention = o.attention;
  config.lengths = lengths;
  config.depths = depths;
  config.samples = o.samples;
  config.seed = uint64_t(o.seed);
  config.chunk = o.chunk;
  config.max_new_tokens = o.n_predict;
  config.context = o.context;
  config.device = o.device;
  const QuestionPlacement placement = parse_question_placement(o.question);
  config.question_placement = question_placement_name(placement);
  check_output_writable(o.output, report);

  // Task sources first: a missing haystack or word list fails before gigabytes of weights load.
  const bool need_prose = std::any_of(tasks.begin(), tasks.end(), [](const std::string& t) { return task_needs_prose(t); });
  const bool need_words = std::any_of(tasks.begin(), tasks.end(), [](const std::string& t) { return task_needs_words(t); });
  std::optional<ProseText> prose;
  std::optional<WordList> words;
  if (need_prose) {
    config.haystack = o.haystack.empty() ? std::string(LTRI_DEFAULT_HAYSTACK) : o.haystack;
    if (config.haystack.empty()) fail("--haystack: no default haystack in this build; give --haystack FILE");
    prose = ProseText::load(config.haystack);
  }
  if (need_words) {
    config.words = o.words;
    words = WordList::load(o.words);
  }

  ModelLoadOptions load;
  load.device = device;
  load.threads = o.threads;
  const Engine engine = Engine::load(model_dir_from_flag(o.model_dir), load);
  const ModelConfig& model_config = engine.model().config();
  config.model_dir = engine.model_dir();
  config.architecture = architecture_name(model_config.architecture);
  config.max_position_embeddings = model_config.max_position_embeddings;
  config.threads = omp_get_max_threads();
  const PromptFormat format = o.chat ? PromptFormat::chat(engine.tokenizer()) : PromptFormat::plain(engine.tokenizer());
  config.prompt_template = format.name();

  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  if (o.attention.policy == "full" && longest > model_config.max_position_embeddings) {
    log_warn(cat("--lengths ", format_length(longest), " is beyond the model's max_position_embeddings (",
                 model_config.max_position_embeddings, "): full attention runs past its trained length, accuracy may fall"));
  }

  RunSettings settings;
  settings.chunk = o.chunk;
  settings.attention = o.attention;
  settings.max_new_tokens = o.n_predict;
  settings.context = o.context;
  const TaskSources sources{prose ? &*prose : nullptr, words ? &*words : nullptr};

  const int64_t total = int64_t(tasks.size() * lengths.size() * depths.size()) * o.samples;
  int64_t total_tokens = 0;  // of all samples, for the ETA: time is assumed to grow with length
  for (int64_t length : lengths) total_tokens += length * int64_t(tasks.size() * depths.size()) * o.samples;
  int64_t done = 0, done_tokens = 0;
  bool warned_repeat = false;
  const Timer run_timer;
  for (int64_t length : lengths) {
    for (const std::string& task : tasks) {
      for (double depth : depths) {
        for (int64_t index = 0; index < o.samples; ++index) {
          const EvalSample sample = make_sample(task, sources, format, uint64_t(o.seed), length, depth, index, placement);
          if (sample.haystack_repeated && !warned_repeat) {
            log_warn(cat(config.haystack, ": the text ran out at ", format_length(length),
                         " tokens; the haystack repeats it from the beginning"));
            warned_repeat = true;
          }
          report.samples.push_back(run_sample(engine, sample, settings, index));
          const SampleResult& r = report.samples.back();
          ++done;
          done_tokens += length;
          report.wall_s = wall.elapsed_ms() / 1000.0;
          if (!o.output.empty()) write_report(report, o.output);
          const double elapsed_s = run_timer.elapsed_ms() / 1000.0;
          const double eta_s = elapsed_s / double(done_tokens) * double(total_tokens - done_tokens);
          log_info(cat("eval [", done, "/", total, "] ", task, " ", format_length(length), " depth ",
                       format_depth(depth), " #", index, ": ", r.tokens, " tokens, ",
                       r.correct ? "correct" : r.score > 0 ? "partial" : "wrong", " (\"", one_line(r.output),
                       "\"), prefill ", int64_t(r.prefill_ms), " ms, decode ", int64_t(r.decode_ms), " ms",
                       done < total ? cat(", ETA ", format_seconds(eta_s)) : std::string()));
        }
      }
    }
  }
  report.wall_s = wall.elapsed_ms() / 1000.0;
  if (!o.output.empty()) write_report(report, o.output);

  std::string tables;
  for (const std::string& task : tasks) {
    tables += cat("\n", task, ": accuracy (%), ", o.attention.policy, " attention, ", o.samples,
                  " sample(s) per cell, seed ", o.seed, ", ", format.name(), " template, ",
                  placement == QuestionPlacement::AfterContext ? "question after the context"
                                                               : "question before and after the context (InfLLM variant)",
                  "\n\n");
    tables += markdown_depth_table(report, task);
  }
  if (tasks.size() > 1) {
    tables += cat("\nall tasks: accuracy (%) by length, depths averaged\n\n", markdown_task_table(report));
  }
  write_stdout(tables.substr(1));
  log_info(cat("eval: ", total, " samples in ", format_seconds(report.wall_s),
               o.output.empty() ? std::string() : cat("; results in ", o.output)));
  return 0;
}

void add_eval_options(CLI::App* app, EvalOptions& o) {
  app->add_option("-m,--model", o.model_dir,
                  "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  app->add_option("--lengths", o.lengths, "Prompt lengths in model tokens: 4k,8k,128k or 4096 (k = 1024)")
      ->check(length_list_validator())->capture_default_str();
  app->add_option("--depths", o.depths, "Needle depths per length, spread over 0..100% of the haystack")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("--samples", o.samples, "Samples per (length, depth) cell")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-s,--seed", o.seed, "Seed of the generated prompts (same seed, same prompts)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-o,--output", o.output, "Write every sample and the configuration to FILE (JSON)");
  app->add_option("-n,--n-predict", o.n_predict, "Tokens to generate per sample (0 = the answer's length plus slack)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-c,--ctx-size", o.context,
                  "Context size in tokens (0 = each prompt's requested length plus the tokens to generate)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-b,--batch-size", o.chunk, "Prefill chunk: prompt tokens per forward pass")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-t,--threads", o.threads, "CPU threads (0 = all cores)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_flag("--chat", o.chat, "Wrap each prompt in the model's chat template (instruction-tuned models)");
  app->add_option("--device", o.device, "Where to run: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  add_attention_flags(app, o.attention);
  app->add_option("--question", o.question,
                  "Question placement: after (the context, as RULER / InfiniteBench) or both (also before it: "
                  "InfLLM's variant, labelled in the outputs)")
      ->check(CLI::IsMember({"after", "both"}))->capture_default_str();
  app->add_flag("-q,--quiet", o.quiet, "Only errors and warnings on stderr (no progress)");
}

}  // namespace

Subcommand add_eval_command(CLI::App& parent) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* app = parent.add_subcommand("eval", "Long-context benchmarks: passkey, niah, and the report grid over every task and policy (see docs/eval.md)");
  app->require_subcommand(1);
  CLI::App* passkey = app->add_subcommand("passkey", "Passkey retrieval (InfiniteBench / Landmark format)");
  add_eval_options(passkey, *o);
  CLI::App* niah = app->add_subcommand("niah", "RULER needle-in-a-haystack tasks");
  add_eval_options(niah, *o);
  niah->add_option("--task", o->tasks, "Tasks, comma-separated: " + niah_task_names() + ", or all")
      ->check(niah_task_validator())->capture_default_str();
  niah->add_option("--haystack", o->haystack, "Prose for the haystack: a text file or a directory of *.txt "
                                               "(default: the repository's data/heldout)");
  niah->add_option("--words", o->words, "Word list for keys, one word a line")->capture_default_str();
  const EvalReportCommand report = add_eval_report_subcommand(app);
  return {app, [o, passkey, report] {
            if (report.app->parsed()) return report.execute();
            return run_eval(passkey->parsed() ? "passkey" : "niah", *o);
          }};
}

}  // namespace ltri::cli
