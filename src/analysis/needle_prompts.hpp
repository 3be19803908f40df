#pragma once
// Needle-in-a-haystack prompts for the analysis tools (ltri heads, ltri calibrate), in the
// RULER niah_single phrasing the bundled model was trained on (tools/train_demo/tasks.py):
//
//   Some special magic numbers are hidden within the following text. ...
//   <prose> One of the special magic numbers for <key> is: <value>. <prose>
//   What is the special magic number for <key> mentioned in the provided text? The special
//   magic number for <key> mentioned in the provided text is            -> answer " <value>."
//
// The prompt is tokenized piece by piece (text before the needle, the needle's lead-in, the
// value, the rest), so the token ranges of the needle sentence and of its value are known
// exactly; the answer's value tokens are the same ids as the needle's.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace ltri {

// Prose to cut haystacks from: one .txt file, or every .txt file of a directory (sorted).
class Haystack {
 public:
  // Throws ltri::Error naming the path if it is missing, unreadable or holds no text.
  static Haystack load(const std::string& path);
  explicit Haystack(std::string text);
  // About n_chars of text starting at a line start, ending at a sentence end where one is near.
  std::string sample(std::mt19937_64& rng, int64_t n_chars) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

enum class NeedleValue { Number, Uuid };  // 7-digit number (RULER) or a uuid

struct NeedlePrompt {
  std::vector<int32_t> prompt;  // BOS, instructions, haystack with the needle, question
  std::vector<int32_t> answer;  // " <value>.": the continuation the model should produce
  int64_t needle_begin = 0;     // the needle sentence: prompt tokens [needle_begin, needle_end)
  int64_t needle_end = 0;
  int64_t value_begin = 0;      // the value: prompt tokens [value_begin, value_begin + value_len)
  int64_t value_len = 0;
  int64_t answer_value_begin = 0;  // the same tokens in `answer`, from this index
  std::string key;
  std::string value;
};

// A prompt of about target_tokens tokens (prompt + answer) with the needle at relative depth
// `depth` in [0, 1] of the haystack. Deterministic for a given rng state.
NeedlePrompt make_needle_prompt(const Tokenizer& tokenizer, const Haystack& haystack,
                                int64_t target_tokens, double depth, NeedleValue kind,
                                std::mt19937_64& rng);

}  // namespace ltri
