#pragma once
// generation_config.json: the end-of-sequence ids Hugging Face's generate() stops at. Models
// often list more there than config.json does (Llama-3 Instruct adds <|eot_id|>; the demo model
// lists the BOS that starts its next training episode), so the engine stops where HF stops.
#include <cstdint>
#include <string>
#include <vector>

namespace ltri {

// eos_token_id of <model_dir>/generation_config.json (a single id or a list); empty when the
// file or the field is absent. Throws ltri::Error naming the file for broken JSON or bad ids.
std::vector<int64_t> load_generation_eos_ids(const std::string& model_dir);

}  // namespace ltri
