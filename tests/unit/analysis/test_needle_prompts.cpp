// Needle prompts with the bundled model's tokenizer: the recorded token ranges hold the needle
// sentence and its value, the answer repeats the value's ids, and lengths hit their target.
#include <gtest/gtest.h>

#include <random>

#include "analysis/needle_prompts.hpp"
#include "core/error.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

TEST(NeedlePrompts, token_ranges_hold_the_needle_and_its_value) {
  const Tokenizer tokenizer = Tokenizer::load(test::source_dir() + "/models/ltri-demo");
  const Haystack haystack = Haystack::load(test::source_dir() + "/data/heldout/austen_persuasion.txt");
  std::mt19937_64 rng(5);
  for (NeedleValue kind : {NeedleValue::Number, NeedleValue::Uuid}) {
    for (double depth : {0.0, 0.3, 1.0}) {
      const NeedlePrompt p = make_needle_prompt(tokenizer, haystack, 1024, depth, kind, rng);
      const int64_t total = int64_t(p.prompt.size() + p.answer.size());
      EXPECT_NEAR(double(total), 1024.0, 24.0);
      const std::vector<int32_t> needle(p.prompt.begin() + p.needle_begin, p.prompt.begin() + p.needle_end);
      const std::string needle_text = tokenizer.decode(needle);
      EXPECT_NE(needle_text.find("One of the special magic"), std::string::npos) << needle_text;
      EXPECT_NE(needle_text.find(p.key + " is: " + p.value + "."), std::string::npos) << needle_text;
      const std::vector<int32_t> value(p.prompt.begin() + p.value_begin, p.prompt.begin() + p.value_begin + p.value_len);
      EXPECT_EQ(tokenizer.decode(value), " " + p.value);
      EXPECT_GE(p.value_begin, p.needle_begin);
      EXPECT_LE(p.value_begin + p.value_len, p.needle_end);
      const std::vector<int32_t> answer_value(p.answer.begin() + p.answer_value_begin,
                                              p.answer.begin() + p.answer_value_begin + p.value_len);
      EXPECT_EQ(answer_value, value);
      EXPECT_EQ(tokenizer.decode(p.answer), " " + p.value + ".");
      const std::string text = tokenizer.decode(p.prompt, true);
      EXPECT_NE(text.find("What is the special magic"), std::string::npos);
      const std::string tail = "mentioned in the provided text is";
      EXPECT_EQ(text.substr(text.size() - tail.size()), tail);
    }
  }
}

TEST(NeedlePrompts, missing_haystack_is_an_error) {
  EXPECT_THROW(Haystack::load("/nonexistent/heldout"), Error);
}

}  // namespace
}  // namespace ltri
