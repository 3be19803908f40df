#pragma once
// tokenizer.json (Hugging Face `tokenizers` format) -> ids, identical to HF for the models we
// support: byte-level BPE with a regex pre-tokenizer (Llama-3, Qwen2, GPT-2 style) and
// SentencePiece-style BPE with Metaspace / Replace+Prepend normalizers and byte fallback
// (Llama-2, Mistral). Added and special tokens are matched in the text when asked.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ltri {

struct EncodeOptions {
  // Apply the tokenizer's post-processor (e.g. prepend <|begin_of_text|> / <s>), as HF's
  // encode(text, add_special_tokens=True) does.
  bool add_special_tokens = true;
  // Recognise added tokens written in the text ("<|eot_id|>") as single ids. HF does this for
  // every added token; turning it off encodes the characters of *special* added tokens as plain
  // text, exactly as HF's encode_special_tokens=True does (non-special added tokens, which the
  // Llama files do not have, are still recognised).
  bool parse_special = true;
};

class Tokenizer {
 public:
  // Loads <path> (a tokenizer.json file, or a directory holding one; tokenizer_config.json next
  // to it is read for bos/eos/chat-template names when present). Throws ltri::Error naming the
  // file and the field on any defect.
  static Tokenizer load(const std::string& path);
  // From JSON text; `source` names it in errors (used by the fuzz target).
  static Tokenizer from_json(const std::string& json_text, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Concatenated text of the ids; special tokens are written out unless skip_special.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t vocab_size() const;           // largest id + 1, added tokens included
  std::string id_to_token(int32_t id) const;  // the raw vocab string ("Ġthe", "▁the", "<0x0A>")
  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  bool is_special(int32_t id) const;
  int32_t bos_id() const;  // -1 if unknown
  std::vector<int32_t> eos_ids() const;  // from tokenizer_config.json / added tokens; may be empty
  // tokenizer_config.json's chat_template (its "default" entry when it is a list); empty if none.
  const std::string& chat_template() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class StreamDecoder;
};

// Turns ids into text one id at a time, holding back bytes until they form whole UTF-8
// characters, so a streamed piece never splits a character (byte-level BPE and byte fallback
// both emit partial characters).
//
// It decodes a short window of recent ids and emits what the newest id added to the window's
// text, once that text no longer ends in U+FFFD (an unfinished character), as HF's
// DecodeStream does; decoding a window rather than single ids keeps decoder rules that look
// at neighbours (SentencePiece's leading-space strip, byte-fallback runs) as in decode().
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  // Text that became complete with this id (may be empty).
  std::string push(int32_t id);
  // Whatever is still held back (invalid bytes come out as U+FFFD).
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> window_;  // ids since the one before the last emitted text
  std::string prefix_;           // decode of window_[0, prefix_count_): text already emitted
  size_t prefix_count_ = 0;
};

// Built-in chat templates (the Jinja templates of the Hub are not interpreted).
enum class ChatFormat { Llama3, Llama2, ChatML };
struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};
// Picks a format from the tokenizer's vocabulary / tokenizer_config.json chat_template
// (<|start_header_id|> -> Llama3, <|im_start|> -> ChatML, else Llama2).
ChatFormat detect_chat_format(const Tokenizer& tokenizer);
// The prompt text (special tokens written out, to be encoded with parse_special) that asks the
// assistant to answer the last user message. Includes the BOS text where the format has one in
// its template, so encode it with add_special_tokens=false.
std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages);

}  // namespace ltri
