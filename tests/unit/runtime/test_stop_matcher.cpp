// StopMatcher: stop strings found across streamed pieces; text that may begin a stop string is
// held back and released once it cannot; the text before a stop is emitted, the stop never.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/stop_matcher.hpp"

namespace ltri {
namespace {

// Feeds the pieces; returns everything released (push results, then flush).
std::string stream(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += m.push(p);
  return out + m.flush();
}

// The expected output for `text` with `stops`: everything before the earliest occurrence.
std::string cut_at_first_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t first = std::string::npos;
  for (const std::string& s : stops) {
    if (!s.empty()) first = std::min(first, text.find(s));
  }
  return first == std::string::npos ? text : text.substr(0, first);
}

TEST(StopMatcher, without_stop_strings_everything_passes_at_once) {
  StopMatcher m({});
  EXPECT_EQ(m.push("Hello"), "Hello");
  EXPECT_EQ(m.push(", world"), ", world");
  EXPECT_EQ(m.flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, empty_stop_strings_are_ignored) {
  StopMatcher m({"", ""});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, stop_inside_one_piece_emits_the_text_before_it) {
  StopMatcher m({"User:"});
  EXPECT_EQ(m.push("fine.\nUser: and more"), "fine.\n");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "User:");
  EXPECT_EQ(m.push("later text"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, stop_split_across_pieces_is_held_back_then_never_printed) {
  StopMatcher m({"\n\nUser:"});
  EXPECT_EQ(m.push("The answer is 4."), "The answer is 4.");
  EXPECT_EQ(m.push("\n"), "");          // could start the stop string
  EXPECT_EQ(m.push("\nUs"), "");        // still could
  EXPECT_EQ(m.push("er: next"), "");    // it did: nothing of it comes out
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, partial_prefix_is_released_when_it_turns_out_not_to_be_a_stop) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.push("a </"), "a ");
  EXPECT_EQ(m.push("b>"), "</b>");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("x<"), "x");
  EXPECT_EQ(m.flush(), "<");  // the end of generation releases what was held
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, held_back_text_is_the_longest_possible_start) {
  StopMatcher m({"abab"});
  EXPECT_EQ(m.push("xaba"), "x");  // "aba" could still become "abab"
  EXPECT_EQ(m.push("c"), "abac");
  EXPECT_EQ(m.push("ababab"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, earliest_of_several_stops_wins) {
  StopMatcher m({"END", "\n"});
  EXPECT_EQ(m.push("one END two\nthree"), "one ");
  EXPECT_EQ(m.matched(), "END");
  StopMatcher n({"END", "\n"});
  EXPECT_EQ(n.push("one\ntwo END"), "one");
  EXPECT_EQ(n.matched(), "\n");
}

TEST(StopMatcher, every_split_of_a_text_gives_the_same_output) {
  // Each way of cutting the text into 1- to 3-byte pieces: the output must equal the text up to
  // the earliest stop, however the pieces fall.
  const std::string text = "Q: 2+2?\nA: 4\n\nQ: next";
  const std::vector<std::vector<std::string>> stop_sets = {{"\n\nQ:"}, {"A: 4"}, {"zzz"}, {"?\n", "2+"}};
  for (const auto& stops : stop_sets) {
    for (size_t piece = 1; piece <= 3; ++piece) {
      for (size_t offset = 0; offset < piece; ++offset) {
        std::vector<std::string> pieces;
        if (offset) pieces.push_back(text.substr(0, offset));
        for (size_t i = offset; i < text.size(); i += piece) pieces.push_back(text.substr(i, piece));
        StopMatcher m(stops);
        EXPECT_EQ(stream(m, pieces), cut_at_first_stop(text, stops))
            << "piece " << piece << " offset " << offset << " stops[0] '" << stops[0] << "'";
      }
    }
  }
}

TEST(StopMatcher, utf8_stop_strings_split_mid_character) {
  // "→" is E2 86 92: pieces that cut inside the character still match.
  StopMatcher m({"→ end"});
  std::string out;
  out += m.push("a \xE2");
  out += m.push("\x86");
  out += m.push("\x92 en");
  out += m.push("d!");
  EXPECT_EQ(out, "a ");
  EXPECT_TRUE(m.stopped());
}

}  // namespace
}  // namespace ltri
