// ltri eval report: runs every (task, length, depth, sample) of the grid under each KV policy
// asked for, one fresh session per sample, and writes ONE results file (-o, rewritten after
// every sample), a Markdown summary (stdout and <stem>.md) and pictures (<stem>_*.png). A rerun
// with the same flags and -o continues from the samples already in the file; a file made with
// other settings is refused. Progress (samples done / total, ETA) goes to stderr.
#include "cmd_eval_report.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attention_flags.hpp"
#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/timer.hpp"
#include "eval/eval_report.hpp"
#include "eval/eval_runner.hpp"
#include "eval/length_list.hpp"
#include "eval/plot_report.hpp"
#include "eval/progress.hpp"
#include "eval/report_grid.hpp"
#include "eval/report_markdown.hpp"
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

struct ReportOptions {
  std::string model_dir;
  std::string policies = "full,streaming,infllm,ltri";
  std::string lengths = "4k";
  std::string tasks = "all";
  int64_t depths = 5;
  int64_t samples = 1;
  int64_t seed = 20261122;
  std::string question = "after";
  std::string output = "eval_report.json";
  std::string haystack;
  std::string words = kDefaultWordsFile;
  int64_t chunk = 512;
  int threads = 0;
  int64_t n_predict = 0;
  int64_t context = 0;
  bool chat = false;
  std::string device = "cpu";
  AttentionOptions attention;  // the --attn-* parameters shared by every policy
  bool no_pictures = false;
  std::string imports;  // results files of other parts of the grid, comma-separated
  bool no_run = false;  // only write the Markdown and pictures of what is done
  std::string part;     // "I/N": this process runs every N-th cell of the grid, from the I-th
  bool quiet = false;
};

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(start, end - start);
    if (!item.empty() && std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
    start = end + 1;
  }
  return items;
}

std::vector<std::string> parse_tasks(const std::string& list) {
  std::vector<std::string> tasks;
  for (const std::string& t : split_list(list)) {
    const std::vector<std::string> add = t == "all" ? all_tasks() : std::vector<std::string>{t};
    for (const std::string& a : add) {
      check_task_name(a);
      if (std::find(tasks.begin(), tasks.end(), a) == tasks.end()) tasks.push_back(a);
    }
  }
  if (tasks.empty()) fail("--tasks: no task given");
  return tasks;
}

// "3/8" -> {3, 8}: part 3 of 8 (1 <= I <= N).
std::pair<int64_t, int64_t> parse_part(const std::string& text) {
  const size_t slash = text.find('/');
  int64_t i = 0, n = 0;
  try {
    size_t used_i = 0, used_n = 0;
    if (slash != std::string::npos) {
      i = std::stoll(text.substr(0, slash), &used_i);
      n = std::stoll(text.substr(slash + 1), &used_n);
    }
    if (slash == std::string::npos || used_i != slash || used_n != text.size() - slash - 1) i = n = 0;
  } catch (const std::exception&) {
    i = n = 0;
  }
  if (n < 1 || i < 1 || i > n) fail("--part: expected I/N with 1 <= I <= N, like 3/8, got '", text, "'");
  return {i, n};
}

std::vector<std::string> parse_policies(const std::string& list) {
  const std::vector<std::string> policies = split_list(list);
  if (policies.empty()) fail("--attn: no policy given");
  for (const std::string& p : policies) {
    if (p != "full" && p != "streaming" && p != "infllm" && p != "ltri") {
      fail("--attn: unknown policy '", p, "' (one of: full, streaming, infllm, ltri)");
    }
  }
  return policies;
}

// A CLI11 validator from a parser that throws ltri::Error "--flag: message".
template <class Parse>
CLI::Validator validator_from(Parse parse, const std::string& flag, const std::string& name) {
  return CLI::Validator(
      [parse, flag](std::string& value) -> std::string {
        try {
          parse(value);
        } catch (const Error& e) {
          const std::string message = e.what();
          const std::string prefix = flag + ": ";
          return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
        }
        return {};
      },
      name);
}

// <dir>/<stem> of the results file, to name the Markdown file and the pictures after it.
std::string output_stem(const std::string& json_path) {
  std::filesystem::path p(json_path);
  if (p.extension() == ".json") p.replace_extension();
  return p.string();
}

void write_text_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail(path, ": cannot write the report");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) fail(path, ": cannot write the report");
}

int run_report(const ReportOptions& o) {
  set_log_level(o.quiet ? LogLevel::Quiet : LogLevel::Info);
  const Timer wall;
  const Device device = parse_device(o.device);

  EvalReport report;
  EvalConfig& config = report.config;
  config.command = "report";
  config.tasks = parse_tasks(o.tasks);
  config.policies = parse_policies(o.policies);
  config.attention = o.attention;
  config.attention.policy = o.policies;  // the list; each sample names its own
  config.lengths = parse_lengths(o.lengths);
  config.depths = depth_grid(o.depths);
  if (o.samples < 1) fail("--samples: must be >= 1, got ", o.samples);
  config.samples = o.samples;
  config.seed = uint64_t(o.seed);
  const QuestionPlacement placement = parse_question_placement(o.question);
  config.question_placement = question_placement_name(placement);
  config.chunk = o.chunk;
  config.max_new_tokens = o.n_predict;
  config.context = o.context;
  config.device = o.device;

  // An existing results file is continued; a new one is written now, so a path that cannot be
  // written fails before anything loads.
  std::error_code ec;
  std::optional<EvalReport> previous;
  if (std::filesystem::exists(o.output, ec)) {
    previous = read_report(o.output);
  } else {
    write_report(report, o.output);
  }

  const auto needs = [&](bool (*f)(std::string_view)) {
    return std::any_of(config.tasks.begin(), config.tasks.end(), [&](const std::string& t) { return f(t); });
  };
  std::optional<ProseText> prose;
  std::optional<WordList> words;
  if (needs(task_needs_prose)) {
    config.haystack = o.haystack.empty() ? std::string(LTRI_DEFAULT_HAYSTACK) : o.haystack;
    if (config.haystack.empty()) fail("--haystack: no default haystack in this build; give --haystack FILE");
    if (!o.no_run) prose = ProseText::load(config.haystack);
  }
  if (needs(task_needs_words)) {
    config.words = o.words;
    if (!o.no_run) words = WordList::load(o.words);
  }

  std::vector<EvalReport> parts;
  for (const std::string& path : split_list(o.imports)) parts.push_back(read_report(path));
  // A file with no samples (a run that stopped before its first) holds nothing to continue.
  if (previous && previous->samples.empty()) previous.reset();

  // The model: loaded to run samples; with --no-run its description comes from the results.
  std::optional<Engine> engine;
  std::optional<PromptFormat> format;
  if (o.no_run) {
    const EvalConfig* done = previous ? &previous->config : nullptr;
    for (const EvalReport& part : parts) {
      if (done == nullptr && !part.samples.empty()) done = &part.config;
    }
    if (done == nullptr) fail("--no-run: nothing to report: ", o.output, " and the --import files hold no samples");
    config.model_dir = done->model_dir;
    config.architecture = done->architecture;
    config.max_position_embeddings = done->max_position_embeddings;
    config.threads = done->threads;
    config.prompt_template = done->prompt_template;
  } else {
    ModelLoadOptions load;
    load.device = device;
    load.threads = o.threads;
    engine.emplace(Engine::load(model_dir_from_flag(o.model_dir), load));
    const ModelConfig& model_config = engine->model().config();
    config.model_dir = engine->model_dir();
    config.architecture = architecture_name(model_config.architecture);
    config.max_position_embeddings = model_config.max_position_embeddings;
    config.threads = omp_get_max_threads();
    format.emplace(o.chat ? PromptFormat::chat(engine->tokenizer()) : PromptFormat::plain(engine->tokenizer()));
    config.prompt_template = format->name();
  }

  const std::vector<GridCell> cells = grid_cells(config);
  if (previous) {
    check_same_settings(previous->config, config, o.output);
    report.samples = previous->samples;
    report.wall_s = previous->wall_s;
  }
  const std::vector<std::string> import_paths = split_list(o.imports);
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t added = import_samples(report, parts[i], cells, import_paths[i]);
    log_info(cat("report: imported ", added, " samples from ", import_paths[i]));
  }
  if (!parts.empty()) write_report(report, o.output);
  std::vector<GridCell> pending = o.no_run ? std::vector<GridCell>{} : pending_cells(cells, report.samples);
  if (!o.part.empty()) {
    // Cells dealt round-robin over the grid's order, so every part gets short and long prompts.
    const auto [part, n_parts] = parse_part(o.part);
    std::vector<GridCell> mine;
    for (size_t c = size_t(part - 1); c < cells.size(); c += size_t(n_parts)) {
      const GridCell& cell = cells[c];
      if (std::any_of(pending.begin(), pending.end(), [&](const GridCell& p) {
            return p.task == cell.task && p.length == cell.length && p.depth == cell.depth && p.index == cell.index &&
                   p.policy == cell.policy;
          })) {
        mine.push_back(cell);
      }
    }
    pending = std::move(mine);
  }
  if (previous) {
    log_info(cat("report: continuing ", o.output, ": ", cells.size() - pending_cells(cells, report.samples).size(),
                 " of ", cells.size(), " samples already done"));
  }
  const int64_t longest = *std::max_element(config.lengths.begin(), config.lengths.end());
  if (std::count(config.policies.begin(), config.policies.end(), "full") > 0 &&
      longest > config.max_position_embeddings && !pending.empty()) {
    log_warn(cat("--lengths ", format_length(longest), " is beyond the model's max_position_embeddings (",
                 config.max_position_embeddings, "): full attention runs past its trained length"));
  }

  RunSettings settings;
  settings.chunk = o.chunk;
  settings.attention = o.attention;
  settings.max_new_tokens = o.n_predict;
  settings.context = o.context;
  const TaskSources sources{prose ? &*prose : nullptr, words ? &*words : nullptr};

  // Each task's shortest prompt first, so a length too short for a task fails now rather than
  // after the other tasks' samples have run.
  if (!pending.empty()) {
    const int64_t shortest = *std::min_element(config.lengths.begin(), config.lengths.end());
    for (const std::string& task : config.tasks) {
      make_sample(task, sources, *format, config.seed, shortest, task_depths(task, config.depths)[0], 0, placement);
    }
  }

  int64_t total_tokens = 0;
  for (const GridCell& c : pending) total_tokens += c.length;
  EtaClock eta(total_tokens);
  const double wall_before = report.wall_s;
  const Timer run_timer;
  std::optional<EvalSample> sample;  // the prompt of the current (task, length, depth, index)
  bool warned_repeat = false;
  for (size_t i = 0; i < pending.size(); ++i) {
    const GridCell& cell = pending[i];
    if (!sample || sample->task != cell.task || sample->requested_tokens != cell.length ||
        sample->depth != cell.depth || i == 0 || pending[i - 1].index != cell.index) {
      sample = make_sample(cell.task, sources, *format, config.seed, cell.length, cell.depth, cell.index, placement);
      if (sample->haystack_repeated && !warned_repeat) {
        log_warn(cat(config.haystack, ": the text ran out at ", format_length(cell.length),
                     " tokens; the haystack repeats it from the beginning"));
        warned_repeat = true;
      }
    }
    settings.attention.policy = cell.policy;
    report.samples.push_back(run_sample(*engine, *sample, settings, cell.index));
    const SampleResult& r = report.samples.back();
    report.wall_s = wall_before + wall.elapsed_ms() / 1000.0;
    write_report(report, o.output);
    eta.add(cell.length, run_timer.elapsed_ms() / 1000.0);
    // A part counts its own cells.
    const size_t total = o.part.empty() ? cells.size() : pending.size();
    const size_t done = total - pending.size() + i + 1;
    log_info(cat("report [", done, "/", total, "] ", cell.policy, " ", cell.task, " ",
                 format_length(cell.length), cell.depth == kNoDepth ? std::string() : " depth " + format_depth(cell.depth),
                 " #", cell.index, ": ", r.tokens, " tokens, ",
                 r.correct ? "correct" : r.score > 0 ? "partial" : "wrong", " (\"", one_line(r.output), "\"), prefill ",
                 int64_t(r.prefill_ms), " ms (", int64_t(double(r.tokens) / std::max(r.prefill_ms, 1e-3) * 1000.0),
                 " tok/s)", i + 1 < pending.size() ? cat(", ETA ", format_seconds(eta.remaining_s())) : std::string()));
  }
  report.wall_s = wall_before + wall.elapsed_ms() / 1000.0;
  write_report(report, o.output);

  const std::string stem = output_stem(o.output);
  const std::string markdown = markdown_report(report);
  write_text_file(stem + ".md", markdown);
  std::vector<std::string> written{o.output, stem + ".md"};
  if (!o.no_pictures) {
    for (const std::string& path : write_report_pictures(report, stem)) written.push_back(path);
  }
  write_stdout(markdown);
  std::string files;
  for (const std::string& w : written) files += (files.empty() ? "" : ", ") + w;
  log_info(cat("report: ", cells.size(), " samples (", pending.size(), " run now) in ",
               format_seconds(wall.elapsed_ms() / 1000.0), "; wrote ", files));
  return 0;
}

}  // namespace

EvalReportCommand add_eval_report_subcommand(CLI::App* eval) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* app = eval->add_subcommand(
      "report", "Task x length x depth x policy grid: one JSON, a Markdown summary, PNG pictures; resumable");
  app->add_option("-m,--model", o->model_dir, "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  add_attention_flags(app, o->attention);
  // --attn takes a list here: the policies of the grid.
  app->remove_option(app->get_option("--attn"));
  app->add_option("--attn", o->policies, "KV policies to compare, comma-separated: full,streaming,infllm,ltri")
      ->check(validator_from([](const std::string& v) { parse_policies(v); }, "--attn", "POLICIES"))
      ->capture_default_str();
  app->add_option("--lengths", o->lengths, "Prompt lengths in model tokens: 4k,8k,128k or 4096 (k = 1024)")
      ->check(validator_from([](const std::string& v) { parse_lengths(v); }, "--lengths", "LENGTHS"))
      ->capture_default_str();
  app->add_option("--tasks,--task", o->tasks, "Tasks, comma-separated: " + all_task_names() + ", or all")
      ->check(validator_from([](const std::string& v) { parse_tasks(v); }, "--task", "TASKS"))
      ->capture_default_str();
  app->add_option("--depths", o->depths, "Needle depths per length, spread over 0..100% of the haystack")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("--samples", o->samples, "Samples per (task, length, depth, policy) cell")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-s,--seed", o->seed, "Seed of the generated prompts")->check(integer_at_least(0))->capture_default_str();
  app->add_option("--question", o->question,
                  "Question placement: after (the context, as RULER / InfiniteBench) or both (also before it: "
                  "InfLLM's variant, labelled in the outputs)")
      ->check(CLI::IsMember({"after", "both"}))->capture_default_str();
  app->add_option("-o,--output", o->output,
                  "Results JSON; an existing one made with the same flags is continued. The Markdown and pictures "
                  "are named after it")
      ->capture_default_str();
  app->add_option("--haystack", o->haystack, "Prose for the haystack: a text file or a directory of *.txt "
                                             "(default: the repository's data/heldout)");
  app->add_option("--words", o->words, "Word list for keys and cwe, one word a line")->capture_default_str();
  app->add_option("-n,--n-predict", o->n_predict, "Tokens to generate per sample (0 = the answer's length plus slack)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-c,--ctx-size", o->context, "Context size in tokens (0 = each prompt's length plus the new tokens)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-b,--batch-size", o->chunk, "Prefill chunk: prompt tokens per forward pass")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")->check(integer_at_least(0))->capture_default_str();
  app->add_flag("--chat", o->chat, "Wrap each prompt in the model's chat template (instruction-tuned models)");
  app->add_option("--device", o->device, "Where to run: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app->add_flag("--no-pictures", o->no_pictures, "Skip the PNG pictures");
  app->add_option("--import", o->imports,
                  "Results files of other runs of parts of this grid (other tasks, lengths, depths or policies; "
                  "everything else the same), comma-separated: their samples count as done");
  app->add_option("--part", o->part,
                  "I/N: run only every N-th cell of the grid from the I-th (N processes or machines share one grid; "
                  "merge their files with --import)")
      ->check(validator_from([](const std::string& v) { parse_part(v); }, "--part", "I/N"));
  app->add_flag("--no-run", o->no_run,
                "Run nothing: write the Markdown and pictures of the samples done (in -o and --import); no model "
                "is loaded");
  app->add_flag("-q,--quiet", o->quiet, "Only errors and warnings on stderr (no progress)");
  return {app, [o] { return run_report(*o); }};
}

}  // namespace ltri::cli
