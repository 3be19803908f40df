#pragma once
// Per-layer calibration of the triangle threshold θ (LTRI_SPEC.md, "Span discovery"): random
// search for the θ whose spans best match the evidence (needle) tokens.
//
// For each needle prompt, each layer's segmentation map (the mean of its heads, or its best
// retrieval head) is taken over a window of tokens around the needle, as the band of width
// span_max below the diagonal, rows scaled by their maximum over the non-sink columns. Span
// discovery cuts the window into spans; the sample's score is
//
//   F1 = max over spans s of  2 |s ∩ N| / (|s| + |N|)      (N = the needle sentence's tokens)
//
// i.e. the F1 (precision |s∩N|/|s|, recall |s∩N|/|N|) of the one span that best matches the
// needle. It is 1 only when one span holds exactly the needle: a needle split over several
// spans loses recall (retrieval would have to fetch every piece), a span with much else in it
// loses precision (budget spent on other tokens). A layer's F1 at θ is the mean over samples;
// the calibrated θ is the best of `trials` values drawn uniformly from [0.05, 0.95].
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/needle_prompts.hpp"
#include "kv/span_discovery.hpp"
#include "model/model.hpp"

namespace ltri {

// One layer's segmentation band over one window.
struct SegmentationWindow {
  std::vector<float> band;     // (n, width): band[i * width + d] = A(i, i - d)
  std::vector<float> row_max;  // (n): each row's maximum over the non-sink columns
  int64_t n = 0;
  int64_t width = 0;
  int64_t needle_begin = 0;    // the needle's tokens [needle_begin, needle_end), window-relative
  int64_t needle_end = 0;
  AttentionBand view() const { return {band.data(), row_max.data(), n, width}; }
};

// The band of width `width` of a square (n, n) map whose row r and column r are the same token.
SegmentationWindow band_from_square_map(const float* map, const float* row_max, int64_t n, int64_t width);

// F1 of the span that best matches [needle_begin, needle_end) (definition above).
double needle_f1(const std::vector<Span>& spans, int64_t needle_begin, int64_t needle_end);

struct ThetaScore {
  double theta = 0.0;
  double f1 = 0.0;             // mean over windows
  double mean_span_len = 0.0;  // mean length of every span found in the windows
};

ThetaScore evaluate_theta(const std::vector<SegmentationWindow>& windows, SpanParams params);
// The best of `thetas` for these windows (the first one on ties).
ThetaScore best_theta(const std::vector<SegmentationWindow>& windows, const SpanParams& params,
                      const std::vector<double>& thetas);
// `trials` θ values drawn uniformly from [lo, hi] with `seed`.
std::vector<double> random_thetas(int64_t trials, uint64_t seed, double lo = 0.05, double hi = 0.95);

// How segmentation rows are scaled (see ProbeSettings::scale_band): "band", as the ltri policy
// does (each head's row by its maximum over the band of `width` tokens before averaging), or
// "row", as LTRI_SPEC.md words it (the map's row by its maximum over every non-sink column).
enum class RowScale { Band, Row };

// Runs one needle prompt through a fresh full-attention session of `model` and returns, per
// layer, the segmentation window of `window` tokens centred on the needle (clipped to the
// prompt), as bands of `width`. map_heads: per layer a head index or kMeanOfHeads; the first
// n_sink tokens are sinks.
std::vector<SegmentationWindow> needle_windows(const Model& model, const NeedlePrompt& prompt,
                                               const std::vector<int>& map_heads, int64_t window,
                                               int64_t width, int64_t n_sink, RowScale scale);

// The per-model calibration file (<model dir>/ltri_calibration.json), "ltri-calibration-1".
struct CalibrationFile {
  std::vector<double> theta;          // (n_layers)
  double phi = 0.3;
  int64_t span_min = 4;
  int64_t span_max = 256;
  std::vector<double> f1;             // (n_layers)
  std::vector<double> mean_span_len;  // (n_layers)
  std::string segmentation_heads = "mean";  // "mean" | "retrieval"
  std::string row_scale = "band";           // "band" | "row" (RowScale)
  // "retrieval": per layer the head whose map was used, -1 where the layer has no retrieval
  // head and the mean of heads was used; empty for "mean".
  std::vector<int> heads;
  int64_t samples = 0;
  int64_t trials = 0;
  int64_t window = 0;
  int64_t n_sink = 0;
  std::vector<int64_t> lengths;
  std::string command;
};

void write_calibration_file(const std::string& path, const CalibrationFile& calibration);
// Throws ltri::Error naming the file and the field on any defect.
CalibrationFile read_calibration_file(const std::string& path);

}  // namespace ltri
