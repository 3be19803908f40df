#include "eval_runner.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/memory_stats.hpp"
#include "runtime/generator.hpp"
#include "scoring.hpp"
#include "task.hpp"

namespace ltri::eval {

bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool ok = std::fputs("5", f) >= 0;  // "5": reset the peak resident set size
  return std::fclose(f) == 0 && ok;
}

namespace {

// Debugging aid (LTRI_TRACE_NEEDLE=1): the token range of the sample's first target needle (the
// sentence holding its first expected value: "One of the special magic ..." or "The pass key
// is ...") goes to stderr and, through LTRI_TRACE_TOKENS, to the ltri policy's trace
// (kv/ltri_trace.hpp), which reads it when the session runs.
void trace_needle(const Engine& engine, const EvalSample& sample) {
  if (std::getenv("LTRI_TRACE_NEEDLE") == nullptr || sample.expected.empty()) return;
  const std::string& text = sample.prompt;
  const size_t value = text.find(sample.expected[0]);
  if (value == std::string::npos) return;
  size_t begin = text.rfind("One of the special magic", value);
  if (begin == std::string::npos) begin = text.rfind("The pass key is", value);
  const size_t end = text.find('.', value);
  if (begin == std::string::npos || end == std::string::npos) return;
  // Tokens of the prompt up to a character (BOS included), as the model receives them.
  const auto tokens_before = [&](size_t chars) { return int64_t(engine.tokenizer().encode(text.substr(0, chars)).size()); };
  const int64_t first = tokens_before(begin) - 1;  // the space before the needle joins its first word
  const int64_t last = tokens_before(end + 1);
  std::fprintf(stderr, "trace needle: tokens [%lld, %lld) of %zu: %s\n", (long long)first, (long long)last,
               sample.ids.size(), text.substr(begin, end + 1 - begin).c_str());
  const std::string range = std::to_string(first) + "," + std::to_string(last) + "," + std::to_string(sample.ids.size());
  setenv("LTRI_TRACE_TOKENS", range.c_str(), 1);
}

// Debugging aid (LTRI_TRACE_PROMPT=FILE): the sample's prompt text, as given to the tokenizer, is
// written to FILE (each sample overwrites it), to rerun or cut the exact prompt elsewhere.
void dump_prompt(const EvalSample& sample) {
  const char* path = std::getenv("LTRI_TRACE_PROMPT");
  if (path == nullptr || *path == '\0') return;
  std::FILE* f = std::fopen(path, "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "warning: LTRI_TRACE_PROMPT %s: cannot write\n", path);
    return;
  }
  std::fwrite(sample.prompt.data(), 1, sample.prompt.size(), f);
  std::fclose(f);
}

}  // namespace

SampleResult run_sample(const Engine& engine, const EvalSample& sample, const RunSettings& settings, int64_t index) {
  trace_needle(engine, sample);
  dump_prompt(sample);
  const int64_t max_new = settings.max_new_tokens > 0 ? settings.max_new_tokens
                          : sample.max_new_tokens > 0 ? sample.max_new_tokens
                                                      : default_max_new_tokens(sample.expected);
  const int64_t prompt_tokens = int64_t(sample.ids.size());

  SessionOptions options;
  options.chunk = settings.chunk;
  options.attention = settings.attention;
  options.max_context = settings.context > 0 ? settings.context
                                             : std::max(sample.requested_tokens, prompt_tokens) + max_new;
  reset_peak_rss();
  const std::unique_ptr<Session> session = engine.model().new_session(options);

  GenerateOptions gen;
  gen.n_predict = max_new;
  gen.sampling.temperature = 0.0f;  // greedy, as the benchmarks score
  gen.eos_ids = engine.eos_ids();
  gen.skip_special = true;
  std::string output;
  const GenerateStats stats = generate(*session, engine.model().config().vocab_size, engine.tokenizer(), sample.ids,
                                       gen, [&](std::string_view piece) { output += piece; });

  SampleResult r;
  r.policy = settings.attention.policy;
  r.task = sample.task;
  r.length = sample.requested_tokens;
  r.tokens = prompt_tokens;
  r.depth = sample.depth;
  r.needle_depths = sample.needle_depths;
  r.index = index;
  r.expected = sample.expected;
  r.output = output;
  r.scoring = scoring_name(sample.scoring);
  r.score = score_output(sample.scoring, output, sample.expected);
  r.correct = r.score >= 1.0;
  r.prefill_ms = stats.prompt_ms;
  r.decode_ms = stats.total_ms - stats.prompt_ms;
  r.generated_tokens = stats.generated_tokens;
  r.stop_reason = stop_reason_name(stats.stop_reason);
  r.context = session->max_context();
  r.peak_rss_bytes = peak_rss_bytes();
  r.kv_bytes = stats.kv_bytes;
  r.kv_host_bytes = stats.kv_host_bytes;
  r.haystack_repeated = sample.haystack_repeated;
  return r;
}

}  // namespace ltri::eval
