// A broken or unsupported tokenizer.json is refused with one ltri::Error line that names the
// file and what is wrong, never a crash or a silently different tokenization.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "tiny_tokenizers.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

using test::bpe_model;
using test::json;
using test::tokenizer_doc;

// The message of the ltri::Error that loading `text` throws ("" if it loads).
std::string load_error(const std::string& text) {
  try {
    Tokenizer::from_json(text, "models/x/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json good_doc() { return tokenizer_doc(bpe_model({"a", "b", "ab"}, {"a b"})); }

void expect_error(const json& doc, const std::string& fragment) {
  const std::string message = load_error(doc.dump());
  EXPECT_NE(message.find("models/x/tokenizer.json"), std::string::npos) << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
}

TEST(BadTokenizerJson, the_good_document_loads) { EXPECT_EQ(load_error(good_doc().dump()), ""); }

TEST(BadTokenizerJson, broken_json_is_refused_with_the_file_name) {
  for (const char* text : {"", "{", "{\"model\": ", "[1, 2", "{\"model\": {\"type\": \"BPE\",}}", "\xff\xfe"}) {
    const std::string message = load_error(text);
    EXPECT_NE(message.find("models/x/tokenizer.json: not valid JSON"), std::string::npos) << message;
  }
}

TEST(BadTokenizerJson, missing_model_or_vocab_or_merges_is_refused) {
  json doc = good_doc();
  doc.erase("model");
  expect_error(doc, "model: missing");
  doc = good_doc();
  doc["model"].erase("vocab");
  expect_error(doc, "model.vocab: missing");
  doc = good_doc();
  doc["model"].erase("merges");
  expect_error(doc, "model.merges: missing");
  expect_error(json::array({1, 2}), "expected an object, got array");
}

TEST(BadTokenizerJson, unsupported_component_types_are_named) {
  json doc = good_doc();
  doc["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(doc, "pre_tokenizer: type 'Whitespace' is not supported");
  doc = good_doc();
  doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFKC"}}})}};
  expect_error(doc, "normalizer.normalizers[0]: type 'NFKC' is not supported");
  doc = good_doc();
  doc["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  expect_error(doc, "decoder: type 'WordPiece' is not supported");
  doc = good_doc();
  doc["model"]["type"] = "Unigram";
  expect_error(doc, "model: type 'Unigram' is not supported");
  doc = good_doc();
  doc["model"]["dropout"] = 0.1;
  expect_error(doc, "model.dropout: BPE dropout is not supported");
}

TEST(BadTokenizerJson, merges_naming_unknown_tokens_are_refused) {
  json doc = good_doc();
  doc["model"]["merges"] = json::array({"a b", "a c"});
  expect_error(doc, "model.merges[1]: token 'c' is not in the vocab");
  doc["model"]["merges"] = json::array({"b a"});
  expect_error(doc, "model.merges[0]: merged token 'ba' is not in the vocab");
  doc["model"]["merges"] = json::array({"a  b"});
  expect_error(doc, "model.merges[0]: expected \"left right\"");
  doc["model"]["merges"] = json::array({json::array({"a", 1})});
  expect_error(doc, "model.merges[0]: expected a string");
}

TEST(BadTokenizerJson, duplicate_and_out_of_range_ids_are_refused) {
  json doc = good_doc();
  doc["model"]["vocab"]["ab"] = 0;
  expect_error(doc, "both have id 0");
  doc = good_doc();
  doc["model"]["vocab"]["ab"] = -3;
  expect_error(doc, "model.vocab.ab: id -3 is out of range");
  doc = good_doc();
  doc["model"]["vocab"]["ab"] = "two";
  expect_error(doc, "model.vocab.ab: expected an integer, got string");
  doc = good_doc();
  doc["added_tokens"] = json::array({test::added_token(5, "<s>", true), test::added_token(5, "</s>", true)});
  expect_error(doc, "added_tokens[1]: id 5 is already used by added token '<s>'");
  doc = good_doc();
  doc["added_tokens"] = json::array({test::added_token(0, "<s>", true)});
  expect_error(doc, "'<s>' has id 0, which the vocab gives to 'a'");
}

TEST(BadTokenizerJson, post_processor_ids_outside_the_vocabulary_are_refused) {
  json doc = good_doc();
  doc["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                   {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                           {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", json::array({7})}, {"tokens", json::array({"<s>"})}}}}}};
  expect_error(doc, "post_processor: special token id 7 is not in the vocabulary");
  doc["post_processor"]["special_tokens"]["<s>"]["ids"] = json::array({2});
  EXPECT_EQ(load_error(doc.dump()), "");
  EXPECT_EQ(Tokenizer::from_json(doc.dump(), "x").encode("ab"), (std::vector<int32_t>{2, 2}));
}

TEST(BadTokenizerJson, a_regex_that_does_not_compile_is_named) {
  json doc = good_doc();
  doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}},
                          {"behavior", "Isolated"}, {"invert", false}};
  expect_error(doc, "pre_tokenizer.pattern.Regex: regex '(unclosed' does not compile");
}

TEST(BadTokenizerJson, load_names_a_missing_file_and_a_broken_config) {
  const std::filesystem::path dir = std::filesystem::path(test::scratch_path("ltri_tok_bad_config"));
  std::filesystem::create_directories(dir);
  try {
    Tokenizer::load((dir / "nope.json").string());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.json"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "tokenizer.json") << good_doc().dump();
  std::ofstream(dir / "tokenizer_config.json") << "{\"eos_token\": 3}";
  try {
    Tokenizer::load(dir.string());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: eos_token: expected a string"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ltri
