#pragma once
// How a task's prompt becomes text and token ids: plain (the text is encoded with the
// tokenizer's post-processor, which adds BOS, exactly as `ltri run -p` does), or wrapped in
// the model family's chat template (as `ltri run --chat`), with the answer prefix opening the
// assistant's turn. Token counts used to size a prompt come from here, so the length measured
// is the length the model is given.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "task.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri::eval {

class PromptFormat {
 public:
  // `tokenizer` must outlive the format.
  static PromptFormat plain(const Tokenizer& tokenizer);
  static PromptFormat chat(const Tokenizer& tokenizer);

  bool is_chat() const { return chat_; }
  const char* name() const;  // "plain" or "chat:llama3" / "chat:llama2" / "chat:chatml"

  // The prompt text for `parts` around `haystack`.
  std::string render(const PromptParts& parts, std::string_view haystack) const;
  // The text that precedes the haystack in render()'s output.
  std::string text_before_haystack(const PromptParts& parts) const;
  // Token ids of a rendered prompt, as the model receives them.
  std::vector<int32_t> encode(std::string_view prompt) const;
  int64_t count(std::string_view prompt) const { return int64_t(encode(prompt).size()); }
  // Tokens of a piece of haystack text on its own (no BOS, special tokens not parsed).
  int64_t count_piece(std::string_view text) const;

  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  PromptFormat(const Tokenizer& tokenizer, bool chat, ChatFormat format)
      : tokenizer_(&tokenizer), chat_(chat), format_(format) {}

  const Tokenizer* tokenizer_;
  bool chat_;
  ChatFormat format_;
};

}  // namespace ltri::eval
