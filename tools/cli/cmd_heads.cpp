// ltri heads: retrieval-head detection (Wu et al. 2024; src/analysis/retrieval_heads.hpp).
// Runs needle prompts under full attention, teacher-forces the answer and scores each head by
// how often its top-1 attention lands on the needle token being copied. Writes the per-model
// heads file (default <model dir>/ltri_heads.json) and prints the layer x head table.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "analysis/needle_prompts.hpp"
#include "analysis/retrieval_heads.hpp"
#include "analysis_common.hpp"
#include "cli_common.hpp"
#include "core/error.hpp"
#include "runtime/engine.hpp"

namespace ltri::cli {

namespace {

struct HeadsOptions {
  std::string model_dir;
  std::string output;
  int64_t samples = 8;
  std::vector<int64_t> lengths = {1024, 2048};
  double threshold = 0.1;
  int64_t seed = 1;
  std::string values = "mixed";
  std::string haystack;
  int threads = 0;
};

int run_heads(const HeadsOptions& o) {
  const std::string dir = model_dir_from_flag(o.model_dir);
  const Haystack haystack = Haystack::load(o.haystack.empty() ? default_haystack_path() : o.haystack);
  ModelLoadOptions load;
  load.threads = o.threads;
  const Engine engine = Engine::load(dir, load);
  const ModelConfig& c = engine.model().config();
  check_lengths(o.lengths, c.max_position_embeddings, "--lengths");
  const std::string output = o.output.empty() ? (std::filesystem::path(dir) / "ltri_heads.json").string() : o.output;

  RetrievalHeadCounter counter(c.num_hidden_layers, c.num_attention_heads);
  std::mt19937_64 rng(uint64_t(o.seed));
  int64_t value_steps = 0, copy_steps = 0, done = 0;
  const int64_t total = o.samples * int64_t(o.lengths.size());
  for (int64_t length : o.lengths) {
    for (int64_t i = 0; i < o.samples; ++i) {
      const double depth = (double(i) + 0.5) / double(o.samples);
      const NeedleValue kind = needle_value_kind(o.values, i);
      const NeedlePrompt p = make_needle_prompt(engine.tokenizer(), haystack, length, depth, kind, rng);
      const NeedleRunStats s = score_needle_prompt(engine.model(), engine.tokenizer(), p, counter);
      value_steps += s.value_steps;
      copy_steps += s.copy_steps;
      std::fprintf(stderr, "heads: sample %lld/%lld: %zu tokens, depth %.2f, %s: model copied %lld/%lld value tokens\n",
                   static_cast<long long>(++done), static_cast<long long>(total), p.prompt.size() + p.answer.size(),
                   depth, kind == NeedleValue::Number ? "number" : "uuid", static_cast<long long>(s.copy_steps),
                   static_cast<long long>(s.value_steps));
    }
  }
  if (copy_steps == 0) fail("heads: the model copied no needle token in ", total, " prompts; no head can be scored");

  HeadsFile heads;
  heads.model = std::filesystem::path(dir).filename().string();
  heads.n_layers = c.num_hidden_layers;
  heads.n_heads = c.num_attention_heads;
  heads.scores = counter.scores();
  heads.threshold = o.threshold;
  heads.samples = o.samples;
  heads.lengths = o.lengths;
  heads.copy_steps = copy_steps;
  heads.value_steps = value_steps;
  heads.command = cat("ltri heads -m ", dir, " --samples ", o.samples, " --lengths ", join_numbers(o.lengths),
                      " --threshold ", o.threshold, " --seed ", o.seed, " --values ", o.values);
  write_heads_file(output, heads);

  write_stdout(cat("retrieval scores (hits / ", copy_steps, " copied needle tokens; * = retrieval head, >= ",
                   o.threshold, ")\n"));
  write_stdout(format_heads_table(heads));
  std::fprintf(stderr, "heads: the model copied %lld of %lld needle value tokens; wrote %s\n",
               static_cast<long long>(copy_steps), static_cast<long long>(value_steps), output.c_str());
  return 0;
}

}  // namespace

Subcommand add_heads_command(CLI::App& parent) {
  auto o = std::make_shared<HeadsOptions>();
  CLI::App* app = parent.add_subcommand("heads", "Detect retrieval heads with needle prompts (writes ltri_heads.json)");
  app->add_option("-m,--model", o->model_dir, "Model directory (default: $LTRI_MODEL_DIR, else the bundled model)");
  app->add_option("-o,--output", o->output, "Heads file to write (default: <model dir>/ltri_heads.json)");
  app->add_option("--samples", o->samples, "Needle prompts per length")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("--lengths", o->lengths, "Prompt lengths in tokens, comma-separated")
      ->delimiter(',')->capture_default_str();
  app->add_option("--threshold", o->threshold, "Score at which a head counts as a retrieval head")
      ->check(probability_in_open_closed_unit())->capture_default_str();
  app->add_option("-s,--seed", o->seed, "Seed of the needle prompts")->check(integer_at_least(0))->capture_default_str();
  app->add_option("--values", o->values, "Needle values: number (7 digits), uuid, or mixed (alternating)")
      ->check(CLI::IsMember({"number", "uuid", "mixed"}))->capture_default_str();
  app->add_option("--haystack", o->haystack, "Prose file or directory of .txt files (default: data/heldout)");
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")->check(integer_at_least(0))->capture_default_str();
  return {app, [o] { return run_heads(*o); }};
}

}  // namespace ltri::cli
