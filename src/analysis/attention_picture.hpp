#pragma once
// A picture of one layer's attention map over a window of tokens, with the spans that span
// discovery found outlined on it (ltri attn).
//
// Rows are queries (top to bottom), columns keys (left to right), both over the same window,
// so the causal map fills the lower triangle; the upper triangle is light grey. Each cell is
// the probability divided by its row's maximum over the non-sink columns (the same scaling
// span discovery uses), raised to `gamma` < 1 so faint triangles show, on a black -> purple ->
// orange -> pale yellow ramp. Spans are drawn as the two legs of their triangle (the left
// column and the bottom row of the block; the hypotenuse is the diagonal): triangle spans in
// cyan, gap spans (no triangle covered them) in green. An optional mark (magenta) shows a
// token range such as a needle.
#include <cstdint>
#include <vector>

#include "analysis/png_writer.hpp"
#include "kv/span_discovery.hpp"

namespace ltri {

struct PictureOptions {
  int64_t target_px = 1024;  // the picture's side is about this (at most n * max_cell_px)
  int64_t max_cell_px = 8;   // a token never covers more pixels than this
  double gamma = 0.5;
  // Tokens [mark_begin, mark_end) of the window (e.g. a needle) get magenta bars in the grey
  // upper triangle: along the top edge over their columns, along the right edge beside their
  // rows. mark_begin < 0: no mark.
  int64_t mark_begin = -1;
  int64_t mark_end = -1;
};

// map: (n, n) probabilities, row r = query r, column c = key c of the window; row_max: (n).
RgbImage render_attention(const float* map, const float* row_max, int64_t n,
                          const std::vector<Span>& spans, const PictureOptions& options = {});

}  // namespace ltri
