#pragma once
// Retrieval-head detection (Wu et al. 2024, arXiv 2404.15574; LTRI_SPEC.md "Retrieval"): while
// the model copies a needle's value into its answer, a head scores a hit at a copy step when
// its top-1 attended position is that same token inside the needle. A head's retrieval score
// is hits / copy steps; heads scoring >= 0.1 are retrieval heads.
//
// Copy steps here: the needle prompt is run under full attention, then the answer is
// teacher-forced one token at a time. The step that predicts answer token j (its query is the
// token before it) is a copy step when token j is one of the value's tokens that carries a
// letter or digit (a bare " " is not evidence of copying) and the model's greedy choice at that
// step is token j, i.e. the model itself would emit it, as in Wu et al.
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/attention_probe.hpp"
#include "analysis/needle_prompts.hpp"
#include "model/model.hpp"

namespace ltri {

class RetrievalHeadCounter {
 public:
  RetrievalHeadCounter(int64_t n_layers, int64_t n_heads);
  // One copy step: query row `row` produced `copied` (a token of the needle's value). `tokens`
  // is the sequence run so far (column c of a full-attention plan holds tokens[c]); the needle
  // value sits at tokens [value_begin, value_end). Every head whose top-1 column (from the
  // probe) is a value position holding `copied` scores a hit.
  void add_copy_step(const AttentionProbe& probe, int64_t row, const std::vector<int32_t>& tokens,
                     int64_t value_begin, int64_t value_end, int32_t copied);
  int64_t copy_steps() const { return copy_steps_; }
  // (n_layers, n_heads): hits / copy steps (0 when there was no copy step).
  std::vector<std::vector<double>> scores() const;

 private:
  int64_t n_layers_, n_heads_;
  int64_t copy_steps_ = 0;
  std::vector<int64_t> hits_;  // (n_layers, n_heads)
};

struct NeedleRunStats {
  int64_t value_steps = 0;  // value tokens teacher-forced (letter/digit tokens only)
  int64_t copy_steps = 0;   // of those, the model's greedy choice was the needle's token
};

// Runs one needle prompt through a fresh full-attention session of `model` and adds its copy
// steps to `counter`.
NeedleRunStats score_needle_prompt(const Model& model, const Tokenizer& tokenizer,
                                   const NeedlePrompt& prompt, RetrievalHeadCounter& counter);

// The per-model heads file (<model dir>/ltri_heads.json), format "ltri-heads-1". The ltri KV
// policy reads n_layers, n_heads and scores.
struct HeadsFile {
  std::string model;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  std::vector<std::vector<double>> scores;  // (n_layers, n_heads)
  double threshold = 0.1;
  int64_t samples = 0;
  std::vector<int64_t> lengths;
  std::string command;
  int64_t copy_steps = 0;   // informational
  int64_t value_steps = 0;  // informational
};

void write_heads_file(const std::string& path, const HeadsFile& heads);
// Throws ltri::Error naming the file and the field on any defect.
HeadsFile read_heads_file(const std::string& path);
// Per layer, the head with the highest score (the lowest index on ties).
std::vector<int> best_head_per_layer(const HeadsFile& heads);
// The layer x head table printed by `ltri heads`; retrieval heads (>= threshold) get a '*'.
std::string format_heads_table(const HeadsFile& heads);

}  // namespace ltri
