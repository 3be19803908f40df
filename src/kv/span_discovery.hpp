#pragma once
// Span discovery (LTRI_SPEC.md, "Span discovery: triangles + NMS"): cut a stretch of the KV
// stream into variable-length spans at the edges of the bright triangles that a layer's
// attention map shows along its diagonal.
//
// Why triangles: a run of tokens that the model treats as one unit (a sentence, a needle) attends
// mostly within itself, so its rows light up a lower-triangular block on the diagonal. Scoring a
// candidate [x, y] by the sum of (normalised attention - theta) over its triangle rewards bright
// cells and punishes dark ones, so the score peaks on the triangle that covers a block exactly.
#include <cstdint>
#include <vector>

namespace ltri {

struct SpanParams {
  float theta = 0.6f;    // brightness threshold on row-max-normalised attention
  float phi = 0.3f;      // NMS: a candidate whose IoU with a kept span exceeds phi is dropped
  int64_t span_min = 4;  // shortest candidate triangle
  int64_t span_max = 256;  // longest candidate triangle, and longest span after partition
};

struct Span {
  int64_t start = 0;   // first token, relative to the stretch
  int64_t length = 0;
  float score = 0.0f;  // triangle score; 0 for gap spans that no triangle covered
};

// The band of a segmentation map over a stretch of n tokens: row i holds the attention of token
// i's query to keys i, i-1, ..., i-(width-1) (distance d from the diagonal at band[i*width+d]);
// cells with i-d < 0 are ignored. Rows are scaled by row_max[i] (the row's maximum over the
// non-sink local columns, which may lie outside the band) so that the brightest cell of a row
// is 1 whatever the softmax temperature of that row; pass nullptr to use the band's own maximum.
struct AttentionBand {
  const float* values = nullptr;   // (n, width), f32
  const float* row_max = nullptr;  // (n), f32, or nullptr
  int64_t n = 0;
  int64_t width = 0;  // >= 1; candidates longer than width are not considered
};

// Triangle score S(x, y) = sum over x <= j <= i <= y of (A_ij / row_max_i - theta), for one
// candidate; used by tests and by calibration. Cells above the diagonal are not included and
// (A - theta) is not clamped, as the spec requires.
double triangle_score(const AttentionBand& band, int64_t x, int64_t y, float theta);

// Finds spans that partition [0, n) exactly, in order: candidates with S > 0 and length in
// [span_min, min(span_max, width)], greedy NMS by score with IoU threshold phi, then overlaps
// go to the higher score, uncovered gaps become spans of their own, and anything longer than
// span_max is cut. Cost O(n * width) for the scores and for bucketing the positive candidates
// by score; NMS then sorts only the candidates that no kept span has already suppressed and
// stops once every token a candidate covers is owned. Buffers are kept per thread between calls.
std::vector<Span> find_spans(const AttentionBand& band, const SpanParams& params);

// Throws ltri::Error naming the parameter if theta/phi/span_min/span_max are out of range.
void validate_span_params(const SpanParams& params);

}  // namespace ltri
