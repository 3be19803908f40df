// Pre-tokenizers, normalizers and decoders on their own, with the expected outputs of HF's unit
// tests (tokenizers/src/pre_tokenizers/split.rs "basic", metaspace.rs "non_legacy_meta_space"
// and "decode").
#include <gtest/gtest.h>

#include "tokenizer/components.hpp"

namespace ltri {
namespace {

using nlohmann::json;

const JsonPath kPath("test.json", "stage");

std::vector<std::string> pre_tokenize(const json& spec, std::vector<Piece> pieces) {
  const auto pre_tokenizer = make_pre_tokenizer(spec, kPath);
  std::vector<std::string> out;
  for (Piece& p : pieces) pre_tokenizer->pre_tokenize(std::move(p), [&](Piece&& word) { out.push_back(word.text); });
  return out;
}

std::vector<std::string> split_words(const std::string& behavior) {
  // HF's test splits on the inverted "words" regex, so the matches are the gaps.
  const json spec = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+|[^\\w\\s]+"}}}, {"behavior", behavior},
                     {"invert", true}};
  return pre_tokenize(spec, {{"How are you doing?", true}});
}

TEST(PipelineStages, split_behaviors_cut_like_hf) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_words("Removed"), (V{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(split_words("Isolated"), (V{"How", " ", "are", " ", "you", " ", "doing", "?"}));
  EXPECT_EQ(split_words("MergedWithPrevious"), (V{"How ", "are ", "you ", "doing", "?"}));
  EXPECT_EQ(split_words("MergedWithNext"), (V{"How", " are", " you", " doing", "?"}));
  EXPECT_EQ(split_words("Contiguous"), (V{"How", " ", "are", " ", "you", " ", "doing?"}));
}

TEST(PipelineStages, metaspace_first_prepends_only_at_the_start_of_the_text) {
  const json first = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
  EXPECT_EQ(pre_tokenize(first, {{"Hey my friend ", true}, {"<s>", false}, {"how\u2581are you", false}}),
            (std::vector<std::string>{"\u2581Hey\u2581my\u2581friend\u2581", "<s>", "how\u2581are\u2581you"}));
  const json always = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(pre_tokenize(always, {{"Hey  friend!", false}}),
            (std::vector<std::string>{"\u2581Hey", "\u2581", "\u2581friend!"}));
}

TEST(PipelineStages, byte_level_pre_tokenizer_maps_bytes_and_can_add_a_prefix_space) {
  const json spec = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(pre_tokenize(spec, {{"Hello my friend, how's it?", true}}),
            (std::vector<std::string>{"\u0120Hello", "\u0120my", "\u0120friend", ",", "\u0120how", "'s", "\u0120it",
                                      "?"}));
}

std::string decode(const json& spec, std::vector<std::string> tokens) {
  make_decoder(spec, kPath)->decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

TEST(PipelineStages, metaspace_decoder_drops_the_prepended_space_of_the_first_token) {
  const std::vector<std::string> tokens = {"\u2581Hey", "\u2581friend!"};
  EXPECT_EQ(decode({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}}, tokens),
            "Hey friend!");
  EXPECT_EQ(decode({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "never"}}, tokens),
            " Hey friend!");
}

TEST(PipelineStages, strip_decoder_cuts_per_token_and_sequence_order_matters) {
  const json strip = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}};
  EXPECT_EQ(decode(strip, {"  a ", " b", "c"}), " ab" "c");
  const json fuse_then_strip = {{"type", "Sequence"},
                                {"decoders", json::array({{{"type", "Fuse"}}, {{"type", "Strip"}, {"content", " "},
                                                                                {"start", 1}, {"stop", 0}}})}};
  EXPECT_EQ(decode(fuse_then_strip, {" a", " b"}), "a b");
}

TEST(PipelineStages, normalizers_prepend_only_to_non_empty_text) {
  const json spec = {{"type", "Sequence"},
                     {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\u2581"}},
                                                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}})}};
  const auto normalizer = make_normalizer(spec, kPath);
  std::string text = "Hello  world ";
  normalizer->normalize(text);
  EXPECT_EQ(text, "\u2581Hello\u2581\u2581world\u2581");
  std::string empty;
  normalizer->normalize(empty);
  EXPECT_EQ(empty, "");
}

}  // namespace
}  // namespace ltri
