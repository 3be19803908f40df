// encode / decode: the order of HF's TokenizerImpl::encode and ::decode.
//   1. added tokens are cut out of the raw text (non-normalized ones);
//   2. each remaining stretch is normalized, then normalized added tokens are cut out;
//   3. the rest is pre-tokenized into words and each word is BPE'd;
//   4. with add_special_tokens, the post-processor adds BOS etc.
#include <algorithm>

#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

void encode_words(const Tokenizer::Impl& impl, std::string text, bool at_origin, std::vector<int32_t>& ids) {
  if (!impl.pre_tokenizer) {
    impl.model->tokenize(text, ids);
    return;
  }
  impl.pre_tokenizer->pre_tokenize({std::move(text), at_origin},
                                   [&](Piece&& word) { impl.model->tokenize(word.text, ids); });
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& impl = *impl_;
  // Invalid UTF-8 becomes U+FFFD: the regex engine needs valid text, and HF only ever sees
  // (valid) Python strings.
  const std::string valid = utf8::to_valid_utf8(text);
  const bool skip_special = !options.parse_special;
  std::vector<int32_t> ids;
  ids.reserve(valid.size() / 3 + 4);

  std::vector<TextSegment> raw_segments;
  std::vector<TextSegment> normalized_segments;
  impl.raw_matcher.split(valid, skip_special, raw_segments);
  for (const TextSegment& raw : raw_segments) {
    if (raw.begin == raw.end) continue;
    if (raw.token >= 0) {
      ids.push_back(impl.added[static_cast<size_t>(raw.token)].id);
      continue;
    }
    std::string piece = valid.substr(raw.begin, raw.end - raw.begin);
    if (impl.normalizer) impl.normalizer->normalize(piece);
    const bool at_origin = raw.begin == 0;
    if (impl.normalized_matcher.empty()) {
      if (!piece.empty()) encode_words(impl, std::move(piece), at_origin, ids);
      continue;
    }
    impl.normalized_matcher.split(piece, skip_special, normalized_segments);
    for (const TextSegment& seg : normalized_segments) {
      if (seg.begin == seg.end) continue;
      if (seg.token >= 0) {
        ids.push_back(impl.added[static_cast<size_t>(seg.token)].id);
      } else {
        encode_words(impl, piece.substr(seg.begin, seg.end - seg.begin), at_origin && seg.begin == 0, ids);
      }
    }
  }
  if (options.add_special_tokens && impl.post_processor) impl.post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& impl = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const AddedToken* added = impl.added_token(id);
    if (added && skip_special && added->special) continue;
    // Unknown ids are skipped, as HF skips them.
    if (const std::string* text = impl.token_text(id)) tokens.push_back(*text);
  }
  std::string out;
  if (impl.decoder) {
    impl.decoder->decode_chain(tokens);
    for (const std::string& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* text = impl_->token_text(id);
  return text ? *text : std::string();
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  const auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = impl_->added_token(id);
  return t && t->special;
}

int32_t Tokenizer::bos_id() const {
  if (!impl_->bos_token.empty()) {
    const int32_t id = token_to_id(impl_->bos_token);
    if (id >= 0) return id;
  }
  if (impl_->post_processor) {
    const std::vector<int32_t> lead = impl_->post_processor->leading_ids();
    if (!lead.empty()) return lead.front();
  }
  for (const char* name : {"<|begin_of_text|>", "<s>"}) {
    const int32_t id = token_to_id(name);
    if (id >= 0 && is_special(id)) return id;
  }
  return -1;
}

std::vector<int32_t> Tokenizer::eos_ids() const {
  std::vector<int32_t> ids;
  const auto add = [&](int32_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (!impl_->eos_token.empty()) add(token_to_id(impl_->eos_token));
  // Chat models end a turn with these even where the config names another EOS.
  for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "</s>"}) {
    const int32_t id = token_to_id(name);
    if (is_special(id)) add(id);
  }
  return ids;
}

}  // namespace ltri
