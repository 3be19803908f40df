#include "runtime/generator.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "runtime/stop_matcher.hpp"

namespace ltri {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Length: return "length";
    case StopReason::Eos: return "eos";
    case StopReason::StopString: return "stop_string";
    case StopReason::ContextFull: return "context_full";
  }
  return "?";
}

std::vector<int32_t> model_eos_ids(const Tokenizer& tokenizer, const ModelConfig& config) {
  std::vector<int32_t> ids = tokenizer.eos_ids();
  for (int64_t id : config.eos_token_ids) {
    if (id >= 0 && id <= INT32_MAX && std::find(ids.begin(), ids.end(), int32_t(id)) == ids.end()) {
      ids.push_back(int32_t(id));
    }
  }
  return ids;
}

namespace {

// Text of one generated id. Ids the model can produce but the tokenizer does not know (the
// embedding matrix is often padded past the vocabulary) print nothing rather than fail.
std::string piece_of(StreamDecoder& decoder, const Tokenizer& tokenizer, int32_t id) {
  if (id >= tokenizer.vocab_size()) return {};
  return decoder.push(id);
}

}  // namespace

GenerateStats generate(Session& session, int64_t vocab_size, const Tokenizer& tokenizer,
                       std::span<const int32_t> prompt,
                       const GenerateOptions& options, const TextFn& on_text, const ProgressFn& on_prefill) {
  if (prompt.empty()) fail("the prompt is empty (0 tokens): nothing to generate from");
  if (options.n_predict < -1) fail("-n: must be >= -1 (-1 = until end of sequence), got ", options.n_predict);

  if (vocab_size < 1) fail("generate: vocabulary size must be >= 1, got ", vocab_size);
  std::vector<float> logits(static_cast<size_t>(vocab_size));  // (vocab), f32: the last position's logits
  Sampler sampler(vocab_size, options.sampling);
  StreamDecoder decoder(tokenizer, options.skip_special);
  StopMatcher stops(options.stop_strings);
  const auto emit = [&](const std::string& text) {
    if (!text.empty() && on_text) on_text(text);
  };
  const auto is_eos = [&](int32_t id) {
    return std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end();
  };

  GenerateStats stats;
  const Timer total;
  {
    const Timer t;
    session.forward(prompt, logits.data(), nullptr, on_prefill);
    stats.prompt_ms = t.elapsed_ms();
    stats.prompt_tokens = int64_t(prompt.size());
  }

  while (true) {
    if (options.n_predict >= 0 && stats.generated_tokens >= options.n_predict) {
      stats.stop_reason = StopReason::Length;
      break;
    }
    const Timer ts;
    const int32_t id = sampler.sample(logits.data());
    stats.sample_ms += ts.elapsed_ms();
    ++stats.sampled_tokens;
    if (!options.ignore_eos && is_eos(id)) {
      stats.stop_reason = StopReason::Eos;
      break;
    }
    ++stats.generated_tokens;
    emit(stops.push(piece_of(decoder, tokenizer, id)));
    if (stops.stopped()) {
      stats.stop_reason = StopReason::StopString;
      break;
    }
    if (options.n_predict >= 0 && stats.generated_tokens >= options.n_predict) {
      stats.stop_reason = StopReason::Length;  // no forward for a token nobody will sample from
      break;
    }
    if (session.n_past() >= session.max_context()) {
      stats.stop_reason = StopReason::ContextFull;
      break;
    }
    const Timer te;
    session.forward(std::span<const int32_t>(&id, 1), logits.data());
    stats.eval_ms += te.elapsed_ms();
    ++stats.eval_runs;
  }
  if (!stops.stopped()) {
    emit(stops.push(decoder.flush()));
    emit(stops.flush());
  }
  stats.total_ms = total.elapsed_ms();
  stats.kv_bytes = session.kv_bytes();
  stats.kv_host_bytes = session.kv_host_bytes();
  return stats;
}

}  // namespace ltri
