// Haystack units: sentence splitting, needle insertion, depth -> boundary, word list split.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "eval/haystack.hpp"
#include "eval/word_list.hpp"

namespace ltri::eval {
namespace {

std::vector<std::string> texts(const std::vector<HaystackUnit>& units) {
  std::vector<std::string> out;
  for (const HaystackUnit& u : units) out.push_back(u.text);
  return out;
}

TEST(Sentences, SplitAtSentenceEndsAndLinesButNotTitles) {
  const std::string text =
      "Mr. Woodhouse was ill. \"Are you?\" said Emma. J. Smith came  in!\n"
      "CHAPTER II\n"
      "It was over (at last.) The end";
  const std::vector<HaystackUnit> units = split_sentences(text);
  EXPECT_EQ(texts(units), (std::vector<std::string>{"Mr. Woodhouse was ill.", "\"Are you?\"", "said Emma.",
                                                    "J. Smith came  in!", "CHAPTER II", "It was over (at last.)",
                                                    "The end"}));
  EXPECT_EQ(units[0].separator, ' ');
  EXPECT_EQ(units[3].separator, '\n');  // the paragraph ends there
  EXPECT_EQ(units[4].separator, '\n');
  EXPECT_EQ(units[5].separator, ' ');
  EXPECT_EQ(units[6].separator, '\n');  // the text's end closes its last paragraph
}

TEST(Sentences, ProseKnowsItsParagraphStartsAndRefusesEmptyText) {
  const ProseText prose = ProseText::from_text("A b. C d.\nE f.\n\nG h. I j.", "mem");
  EXPECT_EQ(prose.sentences().size(), 5u);
  EXPECT_EQ(prose.paragraph_starts(), (std::vector<size_t>{0, 2, 3}));
  EXPECT_THROW(ProseText::from_text(" \n\n ", "empty.txt"), Error);
  try {
    ProseText::load("/nonexistent/haystack.txt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/haystack.txt: haystack file not found");
  }
}

TEST(Sentences, ProseStreamWrapsAroundAndSaysWhereItRepeats) {
  const ProseText prose = ProseText::from_text("A a.\nB b.\nC c.\n", "mem");
  EvalRng rng(7);
  UnitStream units = prose_units(prose, rng);
  EXPECT_EQ(units.distinct_units(), 3u);
  const std::string first = units.at(0).text;
  EXPECT_EQ(units.at(3).text, first);
  EXPECT_NE(units.at(1).text, first);
}

TEST(Render, NeedlesGoBetweenUnitsAndTakeTheSeparatorBeforeThem) {
  const std::vector<HaystackUnit> units = {{"A.", ' '}, {"B.", '\n'}, {"C.", ' '}};
  EXPECT_EQ(render_haystack(units, {}), "A. B.\nC.");
  std::vector<size_t> offsets;
  EXPECT_EQ(render_haystack(units, {{"N1.", 1}, {"N2.", 2}, {"N3.", 0}, {"N4.", 3}}, &offsets),
            "N3. A. N1. B.\nN2.\nC. N4.");
  EXPECT_EQ(offsets, (std::vector<size_t>{7, 14, 0, 21}));
  EXPECT_EQ(render_haystack(units, {{"X.", 2}, {"Y.", 2}}), "A. B.\nX.\nY.\nC.");  // order kept
  EXPECT_EQ(render_haystack({}, {{"X.", 0}}), "X.");
}

TEST(Render, DepthPicksTheNearestBoundaryByTokens) {
  const std::vector<int64_t> offsets = {0, 10, 30, 100};
  EXPECT_EQ(boundary_at_depth(offsets, 0.0), 0u);
  EXPECT_EQ(boundary_at_depth(offsets, 0.04), 0u);   // 4 tokens: nearer 0 than 10
  EXPECT_EQ(boundary_at_depth(offsets, 0.06), 1u);
  EXPECT_EQ(boundary_at_depth(offsets, 0.5), 2u);    // 50: nearer 30 than 100
  EXPECT_EQ(boundary_at_depth(offsets, 0.7), 3u);
  EXPECT_EQ(boundary_at_depth(offsets, 1.0), 3u);
}

TEST(Words, Crc32MatchesZlibAndSplitsLikeTasksPy) {
  EXPECT_EQ(crc32("hello"), 907060870u);  // python3 -c "import zlib; print(zlib.crc32(b'hello'))"
  EXPECT_EQ(crc32(""), 0u);
  // "abdomens" and "abductor" fall in the held-out tenth (zlib.crc32 % 10 == 0), "apple" does not.
  const WordList words = WordList::from_text("apple\nabdomens\nabductor\nAbc\nab\nx-ray\napple\n", "mem");
  EXPECT_EQ(words.heldout(), (std::vector<std::string>{"abdomens", "abductor"}));
  EXPECT_EQ(words.train(), (std::vector<std::string>{"apple"}));
  EXPECT_THROW(WordList::from_text("apple\n", "few"), Error);
}

}  // namespace
}  // namespace ltri::eval
