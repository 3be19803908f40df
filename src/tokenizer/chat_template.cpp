// Built-in chat templates, written to give the same text as the Jinja templates these models
// ship (the Hub's templates are not interpreted). Each ends with the header that asks the
// assistant to answer (add_generation_prompt=True).
//
// Llama-3 (Meta-Llama-3-*-Instruct tokenizer_config.json):
//   <|begin_of_text|> then per message
//   <|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>
//   then <|start_header_id|>assistant<|end_header_id|>\n\n
// Llama-2 chat (also what Mistral-Instruct's template gives for user/assistant turns):
//   <s>[INST] {user.strip()} [/INST] {assistant.strip()} </s><s>[INST] ... [/INST]
//   with a leading system message folded into the first user turn as
//   <<SYS>>\n{system}\n<</SYS>>\n\n{user}
// ChatML (Qwen2 and others):
//   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

// Python's str.strip() (what Jinja's trim and .strip() call): Unicode White_Space plus the
// separators U+001C..U+001F, which Python also counts as space.
bool python_space(char32_t c) { return utf8::is_white_space(c) || (c >= 0x1C && c <= 0x1F); }

std::string python_strip(const std::string& s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end) {
    const size_t n = utf8::valid_sequence_length(s, begin);
    if (n == 0) break;
    size_t len = 0;
    if (!python_space(utf8::decode_at(s, begin, &len))) break;
    begin += n;
  }
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (utf8::valid_sequence_length(s, start) != end - start) break;
    size_t len = 0;
    if (!python_space(utf8::decode_at(s, start, &len))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string llama3_prompt(const std::vector<ChatMessage>& messages) {
  std::string out = "<|begin_of_text|>";
  for (const ChatMessage& m : messages) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + python_strip(m.content) + "<|eot_id|>";
  }
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string llama2_prompt(const std::vector<ChatMessage>& messages) {
  size_t first = 0;
  bool have_system = false;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    have_system = true;
    first = 1;
  }
  std::string out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    std::string content = m.content;
    if (i == first && have_system) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
    if (m.role == "user") {
      out += "<s>[INST] " + python_strip(content) + " [/INST]";
    } else if (m.role == "assistant") {
      out += ' ';
      out += python_strip(content);
      out += " </s>";
    } else if (m.role == "system") {
      out += "<<SYS>>\n" + python_strip(content) + "\n<</SYS>>\n\n";
    }
  }
  return out;
}

std::string chatml_prompt(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace

ChatFormat detect_chat_format(const Tokenizer& tokenizer) {
  const std::string& chat_template = tokenizer.chat_template();
  if (chat_template.find("<|start_header_id|>") != std::string::npos) return ChatFormat::Llama3;
  if (chat_template.find("<|im_start|>") != std::string::npos) return ChatFormat::ChatML;
  if (chat_template.find("[INST]") != std::string::npos) return ChatFormat::Llama2;
  if (tokenizer.token_to_id("<|start_header_id|>") >= 0) return ChatFormat::Llama3;
  if (tokenizer.token_to_id("<|im_start|>") >= 0) return ChatFormat::ChatML;
  return ChatFormat::Llama2;
}

std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages) {
  switch (format) {
    case ChatFormat::Llama3: return llama3_prompt(messages);
    case ChatFormat::Llama2: return llama2_prompt(messages);
    case ChatFormat::ChatML: return chatml_prompt(messages);
  }
  return llama2_prompt(messages);
}

}  // namespace ltri
