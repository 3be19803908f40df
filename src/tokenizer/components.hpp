#pragma once
// The pipeline stages of a tokenizer.json, each built from its JSON object by dispatching on
// "type". Anything we do not implement is rejected when the file is loaded, naming the file,
// the field and the type, rather than tokenizing differently from HF.
//
//   text -> added tokens split out -> Normalizer -> PreTokenizer -> model (BPE) -> PostProcessor
//   ids  -> tokens -> Decoder -> text
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_fields.hpp"
#include "tokenizer/pattern.hpp"

namespace ltri {

// A stretch of text on its way to the model. `at_origin` records whether it starts at byte 0 of
// the caller's text (Metaspace's prepend_scheme "first" only prepends there).
struct Piece {
  std::string text;
  bool at_origin = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// Receives pre-tokens one at a time, in order.
using PieceSink = std::function<void(Piece&&)>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Cuts `piece` into pre-tokens and hands each to `sink`; empty ones are dropped, as HF drops
  // them. Stages of a Sequence run depth first, so a long text never needs a list of all its
  // pre-tokens.
  virtual void pre_tokenize(Piece piece, const PieceSink& sink) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence (called only for add_special_tokens).
  virtual void process(std::vector<int32_t>& ids) const = 0;
  // The ids placed before the sequence (e.g. {bos}); used to find the BOS id.
  virtual std::vector<int32_t> leading_ids() const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Factories: `json` is the component object, `path` its location for error messages.
// A null JSON value means "no such stage" and gives nullptr.
std::unique_ptr<Normalizer> make_normalizer(const Json& json, const JsonPath& path);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& json, const JsonPath& path);
std::unique_ptr<PostProcessor> make_post_processor(const Json& json, const JsonPath& path);
std::unique_ptr<Decoder> make_decoder(const Json& json, const JsonPath& path);
// {"String": "..."} or {"Regex": "..."} (Split, Replace).
Pattern make_pattern(const Json& json, const JsonPath& path);

}  // namespace ltri
