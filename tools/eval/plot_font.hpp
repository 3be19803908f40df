#pragma once
// A built-in 5x7 bitmap font for the labels of the report's pictures (titles, axes, legends),
// so drawing text needs no font library. Printable ASCII only; anything else draws as '?'.
// A glyph is 5 columns by 7 rows; the cell is 9 rows high so g, p, q, y can descend 2 rows
// below the baseline (row 6), and characters advance 6 pixels (one blank column between).
#include <cstdint>

namespace ltri::eval {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 9;   // cell rows: 7 above and on the baseline, 2 of descender
constexpr int kGlyphAdvance = 6;  // pixels from one character to the next, at scale 1

// The 7 drawn rows of `c` (bit 4 = leftmost column).
const uint8_t* glyph_rows(char c);
// Whether `c` sits 2 rows lower (g, p, q, y).
bool glyph_descends(char c);
// Whether pixel (column, row) of the 5x9 cell of `c` is ink.
bool glyph_pixel(char c, int column, int row);

}  // namespace ltri::eval
