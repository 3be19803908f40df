#pragma once
// The per-model files the ltri policy reads from the model directory (written by `ltri heads`
// and `ltri calibrate`, src/analysis):
//   ltri_heads.json        {"format": "ltri-heads-1", "n_layers": L, "n_heads": H,
//                           "scores": [[H floats] x L], "threshold": 0.1, ...}
//   ltri_calibration.json  {"format": "ltri-calibration-1", "theta": [L floats], "phi": 0.3,
//                           "span_min": 4, "span_max": 256, ...}
// Both are checked against the model's shape; every defect is one line naming file and field.
#include <cstdint>
#include <string>
#include <vector>

namespace ltri {

struct RetrievalHeads {
  std::vector<std::vector<float>> scores;  // (n_layers, n_heads), retrieval score in [0, 1]
  double threshold = 0.1;                  // heads scoring at least this are retrieval heads
  // The layer's highest-scoring head (the lowest index on ties) and its score.
  int64_t best_head(int64_t layer) const;
  float best_score(int64_t layer) const;
};

struct SpanCalibration {
  std::vector<double> theta;  // (n_layers) triangle threshold per layer
  // The span parameters theta was tuned with (-1 where the file does not say).
  double phi = -1.0;
  int64_t span_min = -1;
  int64_t span_max = -1;
  // Whose attention the calibration segmented: "mean" | "retrieval" ("" where the file does
  // not say). theta only fits maps made the same way: one head's rows are far sharper than
  // the mean of heads.
  std::string segmentation_heads;
};

RetrievalHeads load_retrieval_heads(const std::string& path, int64_t n_layers, int64_t n_heads);
SpanCalibration load_span_calibration(const std::string& path, int64_t n_layers);

}  // namespace ltri
