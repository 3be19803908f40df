// Parity with Hugging Face `tokenizers` on the real Llama-3 and Llama-2 tokenizer.json files:
// ids and decodes for every hard string (tests/fixtures/tokenizer/hard_strings.json) and the
// prose sample must equal tests/fixtures/tokenizer/goldens_<name>.json, which
// tests/reference/make_tokenizer_goldens.py writes with HF.
#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "real_tokenizers.hpp"

namespace ltri {
namespace {

using nlohmann::json;

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;               // encode(text), add_special_tokens=True
  std::vector<int32_t> ids_no_special;    // add_special_tokens=False
  std::vector<int32_t> ids_literal;       // encode_special_tokens=True, no special tokens added
  std::string decoded;                    // decode(ids)
  std::string decoded_no_special;         // decode(ids_no_special)
  std::string decoded_skip_special;       // decode(ids, skip_special_tokens=True)
};

std::vector<GoldenCase> load_goldens(const std::string& name) {
  const json goldens = test::read_json_fixture("tokenizer/goldens_" + name + ".json");
  std::vector<GoldenCase> cases;
  for (const json& c : goldens.at("cases")) {
    cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>(),
                     c.at("ids_no_special").get<std::vector<int32_t>>(),
                     c.at("ids_literal_special").get<std::vector<int32_t>>(), c.at("decoded").get<std::string>(),
                     c.at("decoded_no_special").get<std::string>(),
                     c.at("decoded_skip_special").get<std::string>()});
  }
  return cases;
}

std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < ids.size() && i < 40; ++i) out << (i ? ", " : "") << ids[i];
  if (ids.size() > 40) out << ", ... (" << ids.size() << " ids)";
  out << "]";
  return out.str();
}

std::string quoted(const std::string& text) {
  return "'" + (text.size() > 80 ? text.substr(0, 80) + "..." : text) + "'";
}

class HfGoldens : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    tokenizer_ = test::real_tokenizer(GetParam());
    ASSERT_NE(tokenizer_, nullptr);
    cases_ = load_goldens(GetParam());
    ASSERT_FALSE(cases_.empty());
  }
  const Tokenizer* tokenizer_ = nullptr;
  std::vector<GoldenCase> cases_;
};

TEST_P(HfGoldens, goldens_cover_every_hard_string_and_the_prose) {
  const json hard = test::read_json_fixture("tokenizer/hard_strings.json");
  ASSERT_EQ(cases_.size(), hard.size() + 1) << "goldens are stale: re-run tests/reference/make_tokenizer_goldens.py";
  for (size_t i = 0; i < hard.size(); ++i) {
    EXPECT_EQ(cases_[i].text, hard[i].get<std::string>()) << "goldens are stale at case " << i;
  }
  EXPECT_EQ(cases_.back().text, read_text_file(test::fixtures_dir() + "/tokenizer/prose_10k.txt"));
}

TEST_P(HfGoldens, encode_with_special_tokens_matches_hf_ids) {
  int mismatches = 0;
  for (const GoldenCase& c : cases_) {
    const std::vector<int32_t> ids = tokenizer_->encode(c.text);
    if (ids != c.ids) {
      ++mismatches;
      ADD_FAILURE() << quoted(c.text) << "\n  ltri: " << show(ids) << "\n  HF:   " << show(c.ids);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases_.size() << " strings";
}

TEST_P(HfGoldens, encode_without_special_tokens_matches_hf_ids) {
  EncodeOptions options;
  options.add_special_tokens = false;
  for (const GoldenCase& c : cases_) {
    EXPECT_EQ(tokenizer_->encode(c.text, options), c.ids_no_special) << quoted(c.text);
  }
}

TEST_P(HfGoldens, special_tokens_stay_text_without_parse_special_like_hf_encode_special_tokens) {
  EncodeOptions options;
  options.add_special_tokens = false;
  options.parse_special = false;
  for (const GoldenCase& c : cases_) {
    EXPECT_EQ(tokenizer_->encode(c.text, options), c.ids_literal) << quoted(c.text);
  }
}

TEST_P(HfGoldens, decode_matches_hf) {
  for (const GoldenCase& c : cases_) {
    EXPECT_EQ(tokenizer_->decode(c.ids), c.decoded) << quoted(c.text);
    EXPECT_EQ(tokenizer_->decode(c.ids_no_special), c.decoded_no_special) << quoted(c.text);
    EXPECT_EQ(tokenizer_->decode(c.ids, /*skip_special=*/true), c.decoded_skip_special) << quoted(c.text);
  }
}

TEST_P(HfGoldens, decode_of_encode_returns_the_text_wherever_hf_round_trips) {
  EncodeOptions options;
  options.add_special_tokens = false;
  int round_trips = 0;
  for (const GoldenCase& c : cases_) {
    if (c.decoded_no_special != c.text) continue;  // HF itself does not round-trip this one
    ++round_trips;
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(c.text, options)), c.text);
  }
  // Most strings round-trip in both tokenizers; a handful (Llama-2's leading-space strip of
  // text starting with a space) do not in HF either.
  EXPECT_GT(round_trips, static_cast<int>(cases_.size()) * 3 / 4);
}

TEST_P(HfGoldens, stream_decoder_pieces_concatenate_to_decode) {
  for (const GoldenCase& c : cases_) {
    for (bool skip : {false, true}) {
      StreamDecoder stream(*tokenizer_, skip);
      std::string streamed;
      for (int32_t id : c.ids) streamed += stream.push(id);
      streamed += stream.flush();
      EXPECT_EQ(streamed, tokenizer_->decode(c.ids, skip)) << quoted(c.text) << " skip_special=" << skip;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, HfGoldens, ::testing::Values("llama3", "llama2"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ltri
