#include "prompt_format.hpp"

namespace ltri::eval {

PromptFormat PromptFormat::plain(const Tokenizer& tokenizer) {
  return PromptFormat(tokenizer, false, ChatFormat::Llama3);
}

PromptFormat PromptFormat::chat(const Tokenizer& tokenizer) {
  return PromptFormat(tokenizer, true, detect_chat_format(tokenizer));
}

const char* PromptFormat::name() const {
  if (!chat_) return "plain";
  switch (format_) {
    case ChatFormat::Llama3: return "chat:llama3";
    case ChatFormat::Llama2: return "chat:llama2";
    case ChatFormat::ChatML: return "chat:chatml";
  }
  return "chat";
}

namespace {

// A marker that cannot occur in task text, to find where the template puts the user's text.
constexpr std::string_view kSlot = "\x01\x02ltri-eval-slot\x02\x01";

}  // namespace

std::string PromptFormat::render(const PromptParts& parts, std::string_view haystack) const {
  std::string body = parts.before;
  body += haystack;
  body += parts.after;
  body += parts.question;
  if (!chat_) return body + parts.answer_separator + parts.answer_prefix;
  return apply_chat_template(format_, {{"user", body}}) + parts.answer_prefix;
}

std::string PromptFormat::text_before_haystack(const PromptParts& parts) const {
  if (!chat_) return parts.before;
  const std::string wrapped = apply_chat_template(format_, {{"user", std::string(kSlot)}});
  return wrapped.substr(0, wrapped.find(kSlot)) + parts.before;
}

std::vector<int32_t> PromptFormat::encode(std::string_view prompt) const {
  EncodeOptions options;
  // Plain: the post-processor adds BOS (ltri run -p). Chat: the template writes its own BOS
  // text and turn markers, which must be parsed as special tokens (ltri run --chat).
  options.add_special_tokens = !chat_;
  options.parse_special = true;
  return tokenizer_->encode(prompt, options);
}

int64_t PromptFormat::count_piece(std::string_view text) const {
  EncodeOptions options;
  options.add_special_tokens = false;
  options.parse_special = false;
  return int64_t(tokenizer_->encode(text, options).size());
}

}  // namespace ltri::eval
