// ltri run: load a model, run a prompt through it and stream the generated text to stdout.
// Progress and the timing block (llama.cpp's wording) go to stderr.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <omp.h>

#include "attention_flags.hpp"
#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/memory_stats.hpp"
#include "io/model_config.hpp"
#include "runtime/engine.hpp"
#include "runtime/generator.hpp"
#include "runtime/model_info.hpp"
#include "runtime/progress.hpp"
#include "runtime/report.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri::cli {

namespace {

struct RunOptions {
  std::string model_dir;
  std::string prompt;
  std::string prompt_file;
  int64_t n_predict = 128;
  int64_t context = 0;
  int64_t chunk = 512;
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  int64_t seed = -1;  // < 0: a random seed
  int threads = 0;
  bool chat = false;
  std::string system;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool no_special = false;
  std::string device = "cpu";
  std::string weights = "auto";
  AttentionOptions attention;
  bool verbose = false;
  bool quiet = false;
};

// The token ids of the prompt: as typed (BOS etc. added by the tokenizer's post-processor), or
// wrapped in the model family's chat template, which writes its own BOS text.
std::vector<int32_t> prompt_ids(const Tokenizer& tokenizer, const std::string& text, const RunOptions& o) {
  EncodeOptions encode;
  if (!o.chat) {
    encode.add_special_tokens = true;
    encode.parse_special = !o.no_special;
    return tokenizer.encode(text, encode);
  }
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  messages.push_back({"user", text});
  encode.add_special_tokens = false;
  encode.parse_special = true;  // the template's own <|start_header_id|> etc.
  return tokenizer.encode(apply_chat_template(detect_chat_format(tokenizer), messages), encode);
}

std::string ids_text(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += cat(out.empty() ? "" : " ", id);
  return out.empty() ? "(none)" : out;
}

int run_generation(const RunOptions& o, bool prompt_given, bool file_given) {
  // Default: nothing on stderr before the timing block, so a failure is one "error:" line.
  set_log_level(o.quiet ? LogLevel::Quiet : o.verbose ? LogLevel::Debug : LogLevel::Info);
  if (o.chat && o.no_special) {
    // The template's turn markers are special tokens written as text: they must be parsed.
    fail("--no-special cannot be combined with --chat (the chat template is made of special tokens)");
  }
  const Device device = parse_device(o.device);
  const uint64_t seed = o.seed >= 0 ? uint64_t(o.seed) : uint64_t(std::random_device{}());
  const std::string text = prompt_text(o.prompt, o.prompt_file, prompt_given, file_given);
  const std::string dir = model_dir_from_flag(o.model_dir);

  ModelLoadOptions load;
  load.device = device;
  load.threads = o.threads;
  load.weights = parse_weight_precision(o.weights);
  const Engine engine = Engine::load(dir, load);
  const Tokenizer& tokenizer = engine.tokenizer();
  const ModelConfig& config = engine.model().config();

  const std::vector<int32_t> prompt = prompt_ids(tokenizer, text, o);
  SessionOptions session_options;
  session_options.max_context = o.context;
  session_options.chunk = o.chunk;
  session_options.attention = o.attention;
  const std::unique_ptr<Session> session = engine.model().new_session(session_options);
  // Streaming policies keep positions window-relative: only `full` runs past the trained range.
  if (o.attention.policy == "full" && session->max_context() > config.max_position_embeddings) {
    log_warn(cat("-c ", session->max_context(), " is beyond the model's max_position_embeddings (",
                 config.max_position_embeddings, "); quality may fall past that length"));
  }

  GenerateOptions gen;
  gen.n_predict = o.n_predict;
  gen.sampling = {o.temperature, o.top_k, o.top_p, seed};
  gen.stop_strings = o.stop;
  gen.eos_ids = engine.eos_ids();
  gen.ignore_eos = o.ignore_eos;
  gen.skip_special = o.no_special;

  log_debug(cat("model: ", dir, " (", architecture_name(config.architecture), ", ",
                format_param_count(count_parameters(config)), " params, ", config.num_hidden_layers,
                " layers, vocab ", config.vocab_size, ", ", format_bytes(double(engine.model().weight_bytes())),
                " f32 weights)"));
  log_debug(cat("run: ", prompt.size(), " prompt tokens, context ", session->max_context(), ", chunk ",
                o.chunk, ", device ", o.device, ", threads ", omp_get_max_threads(), ", attention ",
                o.attention.policy, ", ",
                o.temperature <= 0.0f ? std::string("greedy")
                                      : cat("temp ", o.temperature, ", top-k ", o.top_k, ", top-p ", o.top_p),
                ", seed ", seed));
  log_debug(cat("prompt ids: ", ids_text(prompt)));
  log_debug(cat("end-of-sequence ids: ", ids_text(gen.eos_ids), o.ignore_eos ? " (ignored)" : ""));

  PrefillProgress progress(log_level() >= LogLevel::Info ? stderr : nullptr, stream_is_tty(stderr));
  progress.start(int64_t(prompt.size()));
  bool prefill_done = false;
  auto end_prefill = [&] {
    if (!prefill_done) progress.finish();
    prefill_done = true;
  };
  char last_char = '\n';
  const GenerateStats stats = generate(
      *session, config.vocab_size, tokenizer, prompt, gen,
      [&](std::string_view piece) {
        end_prefill();
        write_stdout(piece);
        last_char = piece.back();
      },
      [&](int64_t done, int64_t) { progress.update(done); });
  end_prefill();

  // On a terminal the report must not start on the last line of the generated text.
  if (log_level() >= LogLevel::Info && last_char != '\n' && stream_is_tty(stdout)) std::fputc('\n', stderr);
  if (stats.stop_reason == StopReason::ContextFull) {
    log_info(cat("stopped: the context of ", session->max_context(), " tokens is full (-c)"));
  }
  log_debug(cat("stop: ", stop_reason_name(stats.stop_reason), " after ", stats.generated_tokens,
                " tokens; sampling ", stats.sample_ms, " ms"));
  if (log_level() >= LogLevel::Info) {
    std::fputs(format_timings(engine.load_ms(), stats, peak_rss_bytes()).c_str(), stderr);
  }
  return 0;
}

}  // namespace

Subcommand add_run_command(CLI::App& parent) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* app = parent.add_subcommand("run", "Generate text from a prompt (text on stdout)");
  app->add_option("-m,--model", o->model_dir,
                  "Model directory: config.json, *.safetensors, tokenizer.json "
                  "(default: $LTRI_MODEL_DIR, else the bundled model)");
  CLI::Option* p = app->add_option("-p,--prompt", o->prompt, "Prompt text");
  CLI::Option* f = app->add_option("-f,--file", o->prompt_file, "Read the prompt from FILE");
  p->excludes(f);
  f->excludes(p);
  app->add_option("-n,--n-predict", o->n_predict,
                  "Tokens to generate at most (-1 = until end of sequence or a full context)")
      ->check(integer_at_least(-1))->capture_default_str();
  app->add_option("-c,--ctx-size", o->context, "Context size in tokens (0 = the model's max_position_embeddings)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("-b,--batch-size", o->chunk, "Prefill chunk: prompt tokens per forward pass")
      ->check(integer_at_least(1))->capture_default_str();
  app->add_option("--temp", o->temperature, "Sampling temperature (0 = greedy)")
      ->check(finite_number())->capture_default_str();
  app->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 = all)")
      ->check(integer_at_least(0))->capture_default_str();
  app->add_option("--top-p", o->top_p, "Keep the smallest set of tokens whose probability reaches p")
      ->check(probability_in_open_closed_unit())->capture_default_str();
  app->add_option("-s,--seed", o->seed, "Sampling seed (-1 = random; -v prints the one used)")
      ->check(integer_at_least(-1))->capture_default_str();
  app->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)")
      ->check(integer_at_least(0))->capture_default_str();
  CLI::Option* chat = app->add_flag("--chat", o->chat, "Wrap the prompt in the model's chat template");
  app->add_option("--system", o->system, "System message for --chat")->needs(chat);
  app->add_option("--stop", o->stop, "Stop when the text contains STR (repeatable; STR is not printed)");
  app->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-sequence tokens");
  app->add_flag("--no-special", o->no_special,
                "Special tokens written in the prompt are plain text, and special tokens are left "
                "out of the printed output");
  app->add_option("--device", o->device, "Where to run: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  add_weights_flag(app, o->weights);
  add_attention_flags(app, o->attention);
  CLI::Option* verbose = app->add_flag("-v,--verbose", o->verbose, "More detail on stderr");
  CLI::Option* quiet = app->add_flag("-q,--quiet", o->quiet, "No progress or timings on stderr: only errors and warnings");
  verbose->excludes(quiet);
  quiet->excludes(verbose);
  return {app, [o, p, f] {
            require_prompt(p, f);
            return run_generation(*o, p->count() > 0, f->count() > 0);
          }};
}

}  // namespace ltri::cli
