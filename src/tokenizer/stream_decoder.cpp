// StreamDecoder: incremental decode that never emits half a character.
//
// The window holds the ids of the last emitted text (the "prefix", already printed) plus the
// ids pushed since. Each push decodes the window; once its text grows past the prefix and does
// not end in U+FFFD, the growth is emitted and the window slides to the ids just emitted. The
// prefix being decoded together with the new ids is what keeps context-dependent decoder rules
// (the Strip of SentencePiece's leading space, byte-fallback runs, lossy UTF-8 over byte-level
// tokens) the same as in a full decode(), so the pushes concatenate to decode(all ids).
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

// More ids than this behind the prefix without a complete character means the bytes are not
// valid UTF-8 (a character is at most 4 bytes); emit them (as U+FFFD) rather than hold on.
constexpr size_t kMaxHeldIds = 8;

bool ends_unfinished(const std::string& text) {
  return text.size() >= utf8::kReplacement.size() &&
         text.compare(text.size() - utf8::kReplacement.size(), utf8::kReplacement.size(),
                      utf8::kReplacement) == 0;
}

// The part of `text` after what was already emitted as `prefix`.
std::string text_after(const std::string& text, const std::string& prefix) {
  size_t cut = prefix.size();
  if (text.compare(0, prefix.size(), prefix) != 0) {
    // A decoder whose window text does not extend the prefix: skip as many bytes as were
    // emitted (up to a character boundary) rather than repeat text already shown.
    while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
  }
  return cut < text.size() ? text.substr(cut) : std::string();
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  if (prefix_.empty() && !window_.empty()) {
    // Nothing visible yet (e.g. only skipped special tokens): take the window as context.
    std::string text = tokenizer_.decode(window_, skip_special_);
    if (!ends_unfinished(text)) {
      prefix_ = std::move(text);
      prefix_count_ = window_.size();
    }
  }
  window_.push_back(id);
  std::string text = tokenizer_.decode(window_, skip_special_);
  const bool held_too_long = window_.size() - prefix_count_ > kMaxHeldIds;
  if (text.size() <= prefix_.size() || (ends_unfinished(text) && !held_too_long)) return {};

  std::string emitted = text_after(text, prefix_);
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(prefix_count_));
  prefix_ = tokenizer_.decode(window_, skip_special_);
  prefix_count_ = window_.size();
  return emitted;
}

std::string StreamDecoder::flush() {
  const std::string text = tokenizer_.decode(window_, skip_special_);
  std::string emitted = text.size() > prefix_.size() ? text_after(text, prefix_) : std::string();
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(prefix_count_));
  prefix_ = tokenizer_.decode(window_, skip_special_);
  prefix_count_ = window_.size();
  return emitted;
}

}  // namespace ltri
