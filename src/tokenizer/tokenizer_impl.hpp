#pragma once
// Tokenizer::Impl: the loaded pipeline. Built by tokenizer_json.cpp, run by tokenizer.cpp.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/components.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri {

struct Tokenizer::Impl {
  std::string source;  // file name used in messages

  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;        // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;   // may be null: the whole text is one word
  std::unique_ptr<PostProcessor> post_processor; // may be null
  std::unique_ptr<Decoder> decoder;              // may be null: tokens joined with ' '

  std::vector<AddedToken> added;                     // in file order
  std::unordered_map<int32_t, size_t> added_by_id;   // id -> index into `added`
  TokenIdMap added_by_content;                       // content -> id
  AddedTokenMatcher raw_matcher;         // added tokens with normalized=false
  AddedTokenMatcher normalized_matcher;  // added tokens with normalized=true

  // From tokenizer_config.json when present.
  std::string bos_token;
  std::string eos_token;
  std::string chat_template;

  int32_t vocab_size = 0;

  const AddedToken* added_token(int32_t id) const {
    const auto it = added_by_id.find(id);
    return it == added_by_id.end() ? nullptr : &added[it->second];
  }
  // The string decode() hands to the decoder for `id`, or nullptr for an unknown id.
  const std::string* token_text(int32_t id) const {
    if (const AddedToken* t = added_token(id)) return &t->match_text;
    return model->id_to_token(id);
  }
};

}  // namespace ltri
