#pragma once
// A model directory opened for generation: config.json, tokenizer.json and the weights, loaded
// in the order that reports a broken directory fastest (the config and the tokenizer are read
// before gigabytes of weights are).
#include <memory>
#include <string>
#include <vector>

#include "model/model.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri {

class Engine {
 public:
  // Throws ltri::Error naming the directory, file or field on any defect.
  static Engine load(const std::string& model_dir, const ModelLoadOptions& options = {});

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const std::string& model_dir() const { return model_dir_; }
  double load_ms() const { return load_ms_; }  // wall time of load()
  // Tokens that end a generation: the tokenizer's EOS / end-of-turn ids, config.json's and
  // generation_config.json's (as HF generate() stops).
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }

 private:
  Engine(std::string model_dir, std::unique_ptr<Model> model, Tokenizer tokenizer, double load_ms);

  std::string model_dir_;
  std::unique_ptr<Model> model_;
  Tokenizer tokenizer_;
  double load_ms_ = 0;
  std::vector<int32_t> eos_ids_;
};

}  // namespace ltri
