#pragma once
// AttentionProbe: an AttentionObserver that recomputes the softmax attention probabilities of
// chosen query rows, on the CPU in double precision, exactly as the attention op defines them:
// keys rotated to the positions the plan gives them, queries to query_first_position + i (or
// to a segment's fixed query_position), GQA head mapping h -> h / (n_heads / n_kv_heads), the
// causal mask inside causal segments, one softmax across all segments.
//
// It keeps two things, both optional:
//  - top-1: per analysed row, layer and head, the column the head attends to most (ltri heads);
//  - a dense map per layer (one head, or the mean of the heads) over a window of rows and
//    columns, with each row's maximum over the non-sink columns (ltri calibrate, ltri attn).
//
// Rows are counted from the start of the session: row r is the r-th token run through it (the
// prompt's tokens, then each decoded token). Columns are the plan's columns, segments
// concatenated in order; under --attn full column c is the token at position c, the only
// policy the analysis tools run, so "column" and "token index" coincide there.
#include <cstdint>
#include <limits>
#include <vector>

#include "kv/attention_observer.hpp"

namespace ltri {

struct ProbeSettings {
  // Query rows analysed; every other row costs nothing.
  int64_t row_begin = 0;
  int64_t row_end = std::numeric_limits<int64_t>::max();
  // Keep the top-1 column of every analysed row, for every layer and head.
  bool keep_top1 = false;
  // Dense maps: one entry per layer, kNoMap, kMeanOfHeads or a head index; empty = no maps.
  // A map needs a finite row window (row_end).
  std::vector<int> map_heads;
  int64_t col_begin = 0;  // map columns [col_begin, col_end)
  int64_t col_end = 0;
  // Row maxima are taken over columns >= row_max_from, so attention sinks (which take most of
  // a row's mass in every head) do not set the scale; a row that sees no such column is scaled
  // by its maximum over all columns.
  int64_t row_max_from = 0;
  // 0: map cells are probabilities (one head's, or the mean of the heads'), and row maxima are
  // taken over every column >= row_max_from (LTRI_SPEC.md's definition).
  // > 0: the ltri policy's band map (src/ops/attention_band_host.hpp): each head's row is first
  // divided by its maximum over the band (columns >= row_max_from within scale_band of the
  // diagonal), then one head is taken or the heads are averaged; row maxima are taken over the
  // same band. Assumes full attention (column c is the token at position c, so the diagonal of
  // row r is column r).
  int64_t scale_band = 0;
};

class AttentionProbe : public AttentionObserver {
 public:
  static constexpr int kNoMap = -2;
  static constexpr int kMeanOfHeads = -1;

  AttentionProbe(int64_t n_layers, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                 ProbeSettings settings);

  void on_attention(int64_t layer, const float* q, int64_t n, int64_t n_heads,
                    const AttentionPlan& plan, const RopeTable& rope) override;

  // Column that `head` of `layer` attended to most from `row`; -1 if the row was not analysed
  // (outside the window, not run yet, or keep_top1 off). Ties go to the lowest column.
  int64_t top1(int64_t row, int64_t layer, int64_t head) const;

  // Dense map of `layer`: (row_end - row_begin, col_end - col_begin) probabilities, row-major;
  // cells of rows not run yet, or of columns a row does not see, are 0.
  const std::vector<float>& map(int64_t layer) const { return maps_[size_t(layer)]; }
  // (row_end - row_begin) maxima of the map's rows over the non-sink columns (see settings).
  const std::vector<float>& row_max(int64_t layer) const { return row_max_[size_t(layer)]; }
  int64_t map_rows() const { return map_rows_; }
  int64_t map_cols() const { return map_cols_; }

  // Rows the layer has seen so far (the next call's first row).
  int64_t rows_seen(int64_t layer) const { return rows_seen_[size_t(layer)]; }
  // Forget everything recorded (the settings stay): for a new prompt in a fresh session.
  void clear();

  const ProbeSettings& settings() const { return settings_; }

 private:
  int64_t n_layers_, n_heads_, n_kv_heads_, head_dim_;
  ProbeSettings settings_;
  int64_t map_rows_ = 0, map_cols_ = 0;
  std::vector<int64_t> rows_seen_;           // (n_layers)
  std::vector<int64_t> top1_;                // (rows analysed, n_layers, n_heads), -1 = none
  std::vector<std::vector<float>> maps_;     // per layer: (map_rows, map_cols) or empty
  std::vector<std::vector<float>> row_max_;  // per layer: (map_rows) or empty
  std::vector<float> keys_;                  // (visible, n_kv_heads, head_dim), rotated
};

}  // namespace ltri
