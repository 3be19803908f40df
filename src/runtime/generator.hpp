#pragma once
// The generation loop: prefill the prompt, then sample and feed one token at a time, streaming
// the text as it becomes printable. Stops at n_predict, an end-of-sequence token, a stop string
// or a full context, and reports where the time went.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.hpp"
#include "runtime/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri {

struct GenerateOptions {
  int64_t n_predict = 128;  // tokens to generate; -1: until EOS, a stop string or a full context
  SamplingParams sampling;
  std::vector<std::string> stop_strings;  // end generation where one appears; never printed
  std::vector<int32_t> eos_ids;           // tokens that end generation (not printed)
  bool ignore_eos = false;                // keep going through eos_ids (they are then printed)
  bool skip_special = false;              // leave special tokens out of the printed text
};

enum class StopReason { Length, Eos, StopString, ContextFull };
const char* stop_reason_name(StopReason reason);  // "length", "eos", "stop_string", "context_full"

struct GenerateStats {
  int64_t prompt_tokens = 0;
  double prompt_ms = 0;      // prefill: one forward over the prompt (in chunks)
  int64_t eval_runs = 0;     // single-token forwards after the prefill
  double eval_ms = 0;
  int64_t sampled_tokens = 0;  // tokens drawn, the final EOS included
  double sample_ms = 0;
  int64_t generated_tokens = 0;  // tokens that became text (EOS excluded)
  double total_ms = 0;           // prefill through the last token
  StopReason stop_reason = StopReason::Length;
  size_t kv_bytes = 0;       // the session's KV cache at the end (backend memory)
  size_t kv_host_bytes = 0;  // evicted KV the streaming policies keep in host memory
};

using TextFn = std::function<void(std::string_view piece)>;

// Runs `prompt` through `session` (from its current position) and generates after it;
// `vocab_size` is the width of a logits row (the model config's vocab_size). Text
// goes to `on_text` in pieces that never split a UTF-8 character; `on_prefill` sees the
// prefill's progress. Throws ltri::Error for an empty prompt, a prompt over the session's
// context, or bad sampling parameters.
GenerateStats generate(Session& session, int64_t vocab_size, const Tokenizer& tokenizer,
                       std::span<const int32_t> prompt,
                       const GenerateOptions& options, const TextFn& on_text,
                       const ProgressFn& on_prefill = {});

// The end-of-sequence ids of a model: the tokenizer's (tokenizer_config.json eos_token and the
// end-of-turn specials) and config.json's eos_token_id, without repeats.
std::vector<int32_t> model_eos_ids(const Tokenizer& tokenizer, const ModelConfig& config);

}  // namespace ltri
