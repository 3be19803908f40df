#include "io/model_config.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

namespace {

using nlohmann::json;

// Field readers: each names the source and the field when the value has the wrong type.
class Fields {
 public:
  Fields(const json& j, const std::string& source) : j_(j), source_(source) {}

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  int64_t positive_int(const char* key) const {
    if (!has(key)) fail(source_, ": missing required field \"", key, "\"");
    return positive_int_value(j_[key], key);
  }
  int64_t positive_int_or(const char* key, int64_t fallback) const {
    return has(key) ? positive_int_value(j_[key], key) : fallback;
  }
  double number_or(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_number()) fail(source_, ": field \"", key, "\" must be a number, got ", j_[key].dump());
    return j_[key].get<double>();
  }
  bool bool_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(source_, ": field \"", key, "\" must be true or false, got ", j_[key].dump());
    return j_[key].get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_string()) fail(source_, ": field \"", key, "\" must be a string, got ", j_[key].dump());
    return j_[key].get<std::string>();
  }

 private:
  int64_t positive_int_value(const json& v, const char* key) const {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
      fail(source_, ": field \"", key, "\" must be a positive integer, got ", v.dump());
    }
    return v.get<int64_t>();
  }
  const json& j_;
  const std::string& source_;
};

Architecture parse_architecture(const json& j, const std::string& source) {
  std::string name;
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    const json& a = j["architectures"];
    if (!a.is_array() || a.empty() || !a[0].is_string()) {
      fail(source, ": field \"architectures\" must be a non-empty list of strings");
    }
    name = a[0].get<std::string>();
  } else if (j.contains("model_type") && j["model_type"].is_string()) {
    const std::string t = j["model_type"].get<std::string>();
    if (t == "llama") name = "LlamaForCausalLM";
    else if (t == "mistral") name = "MistralForCausalLM";
    else if (t == "qwen2") name = "Qwen2ForCausalLM";
    else name = "model_type " + t;
  } else {
    fail(source, ": missing \"architectures\" (and no \"model_type\")");
  }
  if (name == "LlamaForCausalLM") return Architecture::Llama;
  if (name == "MistralForCausalLM") return Architecture::Mistral;
  if (name == "Qwen2ForCausalLM") return Architecture::Qwen2;
  fail(source, ": unknown architecture '", name,
       "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
}

// rope_parameters (transformers 5.x) or rope_theta + rope_scaling (4.x).
void parse_rope(const json& j, const std::string& source, ModelConfig& c) {
  const json* scaling = nullptr;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) fail(source, ": field \"rope_parameters\" must be an object");
    c.rope_theta = Fields(rp, source).number_or("rope_theta", Fields(j, source).number_or("rope_theta", c.rope_theta));
    scaling = &rp;
  } else {
    c.rope_theta = Fields(j, source).number_or("rope_theta", c.rope_theta);
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
      if (!j["rope_scaling"].is_object()) fail(source, ": field \"rope_scaling\" must be an object");
      scaling = &j["rope_scaling"];
    }
  }
  if (!(c.rope_theta > 0)) fail(source, ": rope_theta must be positive, got ", c.rope_theta);
  if (!scaling) return;
  const Fields s(*scaling, source);
  std::string type = s.string_or("rope_type", s.string_or("type", "default"));
  if (type == "default") return;
  RopeScaling& r = c.rope_scaling;
  if (type == "linear") {
    r.type = RopeScalingType::Linear;
  } else if (type == "llama3") {
    r.type = RopeScalingType::Llama3;
    r.low_freq_factor = s.number_or("low_freq_factor", r.low_freq_factor);
    r.high_freq_factor = s.number_or("high_freq_factor", r.high_freq_factor);
    r.original_max_position_embeddings =
        s.positive_int_or("original_max_position_embeddings", r.original_max_position_embeddings);
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      fail(source, ": rope_scaling high_freq_factor (", r.high_freq_factor,
           ") must exceed low_freq_factor (", r.low_freq_factor, ")");
    }
  } else {
    fail(source, ": rope_scaling type '", type, "' is not supported (supported: linear, llama3)");
  }
  r.factor = s.number_or("factor", 1.0);
  if (!(r.factor > 0)) fail(source, ": rope_scaling factor must be positive, got ", r.factor);
}

std::vector<int64_t> parse_eos(const json& j, const std::string& source) {
  std::vector<int64_t> ids;
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return ids;
  const json& e = j["eos_token_id"];
  auto one = [&](const json& v) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      fail(source, ": field \"eos_token_id\" must be a token id or a list of ids, got ", e.dump());
    }
    ids.push_back(v.get<int64_t>());
  };
  if (e.is_array()) {
    for (const json& v : e) one(v);
  } else {
    one(e);
  }
  return ids;
}

}  // namespace

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "LlamaForCausalLM";
    case Architecture::Mistral: return "MistralForCausalLM";
    case Architecture::Qwen2: return "Qwen2ForCausalLM";
  }
  return "?";
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) fail(source, ": not valid JSON");
  if (!j.is_object()) fail(source, ": not a JSON object");
  const Fields f(j, source);
  ModelConfig c;
  c.architecture = parse_architecture(j, source);
  c.vocab_size = f.positive_int("vocab_size");
  c.hidden_size = f.positive_int("hidden_size");
  c.intermediate_size = f.positive_int("intermediate_size");
  c.num_hidden_layers = f.positive_int("num_hidden_layers");
  c.num_attention_heads = f.positive_int("num_attention_heads");
  c.num_key_value_heads = f.positive_int_or("num_key_value_heads", c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    fail(source, ": num_attention_heads (", c.num_attention_heads,
         ") is not a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  }
  if (f.has("head_dim")) {
    c.head_dim = f.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      fail(source, ": hidden_size (", c.hidden_size, ") is not divisible by num_attention_heads (",
           c.num_attention_heads, ") and no head_dim is given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) fail(source, ": head_dim must be even for RoPE, got ", c.head_dim);
  c.rms_norm_eps = f.number_or("rms_norm_eps", c.rms_norm_eps);
  if (!(c.rms_norm_eps > 0)) fail(source, ": rms_norm_eps must be positive, got ", c.rms_norm_eps);
  c.max_position_embeddings = f.positive_int_or("max_position_embeddings", c.max_position_embeddings);
  c.tie_word_embeddings = f.bool_or("tie_word_embeddings", false);
  // Qwen2 checkpoints carry q/k/v biases without saying so in config.json.
  c.attention_bias = f.bool_or("attention_bias", c.architecture == Architecture::Qwen2);
  c.mlp_bias = f.bool_or("mlp_bias", false);
  if (c.mlp_bias) fail(source, ": mlp_bias true is not supported");
  if (f.has("sliding_window")) c.sliding_window = f.positive_int("sliding_window");
  c.hidden_act = f.string_or("hidden_act", "silu");
  if (c.hidden_act != "silu") {
    fail(source, ": hidden_act '", c.hidden_act, "' is not supported (supported: silu)");
  }
  if (f.has("bos_token_id")) {
    if (!j["bos_token_id"].is_number_integer() || j["bos_token_id"].get<int64_t>() < 0) {
      fail(source, ": field \"bos_token_id\" must be a token id, got ", j["bos_token_id"].dump());
    }
    c.bos_token_id = j["bos_token_id"].get<int64_t>();
  }
  c.eos_token_ids = parse_eos(j, source);
  parse_rope(j, source, c);
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_text_file(path), path);
}

}  // namespace ltri
