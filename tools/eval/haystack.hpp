#pragma once
// Haystacks: the filler text needles are hidden in, as a sequence of units (a prose sentence,
// one block of noise lines, one distractor needle) that needles are inserted between. A
// haystack of a given length is the first n units of an endless stream, plus the first words
// of unit n to land on the requested token count (prompt_fit.hpp).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eval_rng.hpp"

namespace ltri::eval {

// InfiniteBench / Landmark passkey noise; RULER's "noise" haystack (niah_single_1) is the same.
constexpr const char* kNoiseBlock =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

struct HaystackUnit {
  std::string text;      // no leading or trailing whitespace
  char separator = ' ';  // the whitespace that follows it: ' ' or '\n' (a paragraph end)
};

// Units made on demand, in order, and kept: unit i is the same however often it is asked for.
class UnitStream {
 public:
  // `make(i)` is called once for each i = 0, 1, 2, ... in that order.
  using Maker = std::function<HaystackUnit(size_t index)>;
  // `distinct_units`: how many units come before the source starts repeating itself
  // (SIZE_MAX for a source that never repeats or where repeating is its nature, like noise).
  UnitStream(Maker make, size_t distinct_units);

  const HaystackUnit& at(size_t index);
  size_t distinct_units() const { return distinct_units_; }

 private:
  Maker make_;
  size_t distinct_units_;
  std::vector<HaystackUnit> units_;
};

// Noise blocks, repeated, each followed by `separator` (' ' as the passkey format joins them;
// '\n' as InfiniteBench's number_string and RULER's vt write one block a line).
UnitStream noise_units(char separator = ' ');

// A prose text cut into sentences once, to draw haystacks from.
class ProseText {
 public:
  // `path`: a text file, or a directory whose *.txt files are read in name order and joined.
  // Throws ltri::Error naming the path if it is missing, unreadable or holds no sentences.
  static ProseText load(const std::string& path);
  // From text in memory; `source` names it in errors.
  static ProseText from_text(std::string_view text, const std::string& source);

  const std::vector<HaystackUnit>& sentences() const { return sentences_; }
  // Indices of the sentences that begin a paragraph (a haystack starts at one of them).
  const std::vector<size_t>& paragraph_starts() const { return paragraph_starts_; }
  const std::string& source() const { return source_; }

 private:
  std::vector<HaystackUnit> sentences_;
  std::vector<size_t> paragraph_starts_;
  std::string source_;
};

// Splits text into sentences: a unit ends after '.', '!' or '?' (and any closing quotes or
// brackets) followed by whitespace, or at a line end (paragraphs are one line each in
// data/heldout). Titles ("Mr.", "Mrs.", "Dr.", "St.") and single-letter initials do not end a
// sentence. Runs of whitespace collapse to the unit's one separator.
std::vector<HaystackUnit> split_sentences(std::string_view text);

// The sentences of `prose` from a random paragraph start; past the end of the text the stream
// wraps to its beginning (the text repeats), which UnitStream::distinct_units() tells.
UnitStream prose_units(const ProseText& prose, EvalRng& rng);

// A needle placed before unit `boundary` (0: at the start; n: after the last unit).
struct PlacedNeedle {
  std::string text;
  size_t boundary = 0;
};

// The haystack text: `units` joined by their separators, needles inserted at their boundaries
// (needles at one boundary in the order given). A needle takes the separator of the unit
// before it, so a needle after a paragraph end stands on its own line. `needle_offsets`, when
// given, receives the byte offset of each needle in the text (in the order of `needles`).
std::string render_haystack(const std::vector<HaystackUnit>& units, const std::vector<PlacedNeedle>& needles,
                            std::vector<size_t>* needle_offsets = nullptr);

// The boundary whose token offset is nearest to depth * total: `offsets` holds the tokens
// before each boundary (offsets[0] = 0, offsets.back() = total), non-decreasing.
size_t boundary_at_depth(const std::vector<int64_t>& offsets, double depth);

}  // namespace ltri::eval
