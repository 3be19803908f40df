// config.json -> ModelConfig. Every field is type-checked and named in its error; fields ltri
// cannot honour (another activation, yarn RoPE, MLP biases) are refused rather than ignored,
// since ignoring them would give a model that loads and then computes the wrong thing.
#include "io/model_config.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "io/json_text.hpp"

namespace ltri {

namespace {

using nlohmann::json;

// Sizes above this are corruption, not models (the largest vocabularies are ~256k, hidden sizes
// ~16k); the bound keeps products such as vocab_size x hidden_size inside int64.
constexpr int64_t kMaxSize = int64_t(1) << 31;

// Field readers: each names the source and the field when the value is missing or mistyped.
// A JSON null counts as absent (transformers writes null for "use the default").
class Fields {
 public:
  Fields(const json& j, const std::string& source, const std::string& prefix = "")
      : j_(j), source_(source), prefix_(prefix) {}

  bool has(const char* key) const {
    auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
  }
  const json& at(const char* key) const { return *j_.find(key); }

  int64_t positive_int(const char* key) const {
    if (!has(key)) fail(source_, ": missing required field \"", prefix_, key, "\"");
    return int_value(key, 1);
  }
  int64_t positive_int_or(const char* key, int64_t fallback) const {
    return has(key) ? int_value(key, 1) : fallback;
  }
  int64_t non_negative_int_or(const char* key, int64_t fallback) const {
    return has(key) ? int_value(key, 0) : fallback;
  }
  double number(const char* key) const {
    if (!has(key)) fail(source_, ": missing required field \"", prefix_, key, "\"");
    const json& v = at(key);
    // A literal such as 1e999 parses to infinity; no field here can use one.
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      fail(source_, ": field \"", prefix_, key, "\" must be a finite number, got ", io::describe(v));
    }
    return v.get<double>();
  }
  double number_or(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }
  double positive_number_or(const char* key, double fallback) const {
    const double v = number_or(key, fallback);
    if (!(v > 0)) fail(source_, ": field \"", prefix_, key, "\" must be positive, got ", v);
    return v;
  }
  bool bool_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_boolean()) fail(source_, ": field \"", prefix_, key, "\" must be true or false, got ", io::describe(v));
    return v.get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_string()) fail(source_, ": field \"", prefix_, key, "\" must be a string, got ", io::describe(v));
    return v.get<std::string>();
  }

 private:
  int64_t int_value(const char* key, int64_t min) const {
    const json& v = at(key);
    // The parser stores non-negative literals as unsigned and negative ones as signed.
    bool ok = false;
    if (v.is_number_unsigned()) {
      ok = v.get<uint64_t>() >= uint64_t(min) && v.get<uint64_t>() <= uint64_t(kMaxSize);
    } else if (v.is_number_integer()) {
      ok = v.get<int64_t>() >= min && v.get<int64_t>() <= kMaxSize;
    }
    if (!ok) {
      fail(source_, ": field \"", prefix_, key, "\" must be ", min > 0 ? "a positive" : "a non-negative",
           " integer (at most ", kMaxSize, "), got ", io::describe(v));
    }
    return v.get<int64_t>();
  }

  const json& j_;
  const std::string& source_;
  std::string prefix_;  // "rope_scaling." for nested objects, so errors name the full field
};

Architecture parse_architecture(const json& j, const Fields& f, const std::string& source) {
  std::string name;
  if (f.has("architectures")) {
    const json& a = j["architectures"];
    if (!a.is_array() || a.empty() || !a[0].is_string()) {
      fail(source, ": field \"architectures\" must be a non-empty list of strings, got ", io::describe(a));
    }
    name = a[0].get<std::string>();
  } else if (f.has("model_type")) {
    const std::string type = f.string_or("model_type", "");
    if (type == "llama") name = "LlamaForCausalLM";
    else if (type == "mistral") name = "MistralForCausalLM";
    else if (type == "qwen2") name = "Qwen2ForCausalLM";
    else fail(source, ": unknown model_type '", io::printable(type), "' (supported: llama, mistral, qwen2)");
  } else {
    fail(source, ": missing \"architectures\" (and no \"model_type\")");
  }
  if (name == "LlamaForCausalLM") return Architecture::Llama;
  if (name == "MistralForCausalLM") return Architecture::Mistral;
  if (name == "Qwen2ForCausalLM") return Architecture::Qwen2;
  fail(source, ": unknown architecture '", io::printable(name),
       "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
}

// RoPE: transformers 5.x writes rope_parameters {rope_theta, rope_type, factor, ...};
// 4.x writes top-level rope_theta plus an optional rope_scaling {rope_type or type, ...}.
// When both are present the 5.x object wins (it is what 5.x itself reads).
void parse_rope(const json& j, const Fields& top, const std::string& source, ModelConfig& c) {
  const json* scaling = nullptr;
  std::string prefix;
  if (top.has("rope_parameters")) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) fail(source, ": field \"rope_parameters\" must be an object, got ", io::describe(rp));
    const double fallback_theta = top.number_or("rope_theta", c.rope_theta);
    c.rope_theta = Fields(rp, source, "rope_parameters.").number_or("rope_theta", fallback_theta);
    scaling = &rp;
    prefix = "rope_parameters.";
  } else {
    c.rope_theta = top.number_or("rope_theta", c.rope_theta);
    if (top.has("rope_scaling")) {
      scaling = &j["rope_scaling"];
      if (!scaling->is_object()) {
        fail(source, ": field \"rope_scaling\" must be an object, got ", io::describe(*scaling));
      }
      prefix = "rope_scaling.";
    }
  }
  if (!(c.rope_theta > 0)) fail(source, ": field \"rope_theta\" must be positive, got ", c.rope_theta);
  if (!scaling) return;

  const Fields s(*scaling, source, prefix);
  // Rotating only part of each head is a different model; refuse rather than mis-rotate.
  if (s.has("partial_rotary_factor") && s.number("partial_rotary_factor") != 1.0) {
    fail(source, ": ", prefix, "partial_rotary_factor ", s.number("partial_rotary_factor"), " is not supported");
  }
  const std::string type = s.has("rope_type") ? s.string_or("rope_type", "") : s.string_or("type", "default");
  RopeScaling& r = c.rope_scaling;
  if (type == "default") return;
  if (type == "linear") {
    r.type = RopeScalingType::Linear;
  } else if (type == "llama3") {
    r.type = RopeScalingType::Llama3;
    // transformers requires all four llama3 keys; so do we, rather than guess a default.
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!s.has(key)) fail(source, ": missing required field \"", prefix, key, "\" for rope type llama3");
    }
    r.low_freq_factor = s.positive_number_or("low_freq_factor", r.low_freq_factor);
    r.high_freq_factor = s.positive_number_or("high_freq_factor", r.high_freq_factor);
    r.original_max_position_embeddings = s.positive_int("original_max_position_embeddings");
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      fail(source, ": ", prefix, "high_freq_factor (", r.high_freq_factor, ") must exceed low_freq_factor (",
           r.low_freq_factor, ")");
    }
  } else {
    fail(source, ": rope_scaling type '", io::printable(type), "' is not supported (supported: linear, llama3)");
  }
  if (!s.has("factor")) fail(source, ": missing required field \"", prefix, "factor\" for rope type ", type);
  r.factor = s.positive_number_or("factor", 1.0);
}

int64_t parse_token_id(const json& v, const char* key, const std::string& source) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
      (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(kMaxSize))) {
    fail(source, ": field \"", key, "\" must be a token id (or a list of ids for eos_token_id), got ",
         io::describe(v));
  }
  return v.get<int64_t>();
}

std::vector<int64_t> parse_eos(const json& j, const Fields& f, const std::string& source) {
  std::vector<int64_t> ids;
  if (!f.has("eos_token_id")) return ids;
  const json& e = j["eos_token_id"];
  if (e.is_array()) {
    for (const json& v : e) ids.push_back(parse_token_id(v, "eos_token_id", source));
  } else {
    ids.push_back(parse_token_id(e, "eos_token_id", source));
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
  const json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(source, ": not valid JSON");
  if (!j.is_object()) fail(source, ": not a JSON object");
  const Fields f(j, source);
  ModelConfig c;
  c.architecture = parse_architecture(j, f, source);
  c.vocab_size = f.positive_int("vocab_size");
  c.hidden_size = f.positive_int("hidden_size");
  c.intermediate_size = f.positive_int("intermediate_size");
  c.num_hidden_layers = f.positive_int("num_hidden_layers");
  c.num_attention_heads = f.positive_int("num_attention_heads");
  c.num_key_value_heads = f.positive_int_or("num_key_value_heads", c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    fail(source, ": num_attention_heads (", c.num_attention_heads, ") is not a multiple of num_key_value_heads (",
         c.num_key_value_heads, ")");
  }
  if (f.has("head_dim")) {  // Mistral-Nemo style: head_dim x heads need not equal hidden_size
    c.head_dim = f.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      fail(source, ": hidden_size (", c.hidden_size, ") is not divisible by num_attention_heads (",
           c.num_attention_heads, ") and no head_dim is given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  // RoPE rotates pairs (x_i, x_{i + head_dim/2}).
  if (c.head_dim % 2 != 0) fail(source, ": head_dim must be even for RoPE, got ", c.head_dim);
  c.rms_norm_eps = f.positive_number_or("rms_norm_eps", c.rms_norm_eps);
  c.max_position_embeddings = f.positive_int_or("max_position_embeddings", c.max_position_embeddings);
  c.tie_word_embeddings = f.bool_or("tie_word_embeddings", false);
  // Qwen2 checkpoints carry q/k/v biases without saying so in config.json.
  c.attention_bias = f.bool_or("attention_bias", c.architecture == Architecture::Qwen2);
  c.mlp_bias = f.bool_or("mlp_bias", false);
  if (c.mlp_bias) fail(source, ": mlp_bias true is not supported");
  c.sliding_window = f.non_negative_int_or("sliding_window", 0);
  // Qwen2 configs carry a sliding_window that only applies when use_sliding_window is true
  // (transformers drops it otherwise).
  if (c.architecture == Architecture::Qwen2 && !f.bool_or("use_sliding_window", false)) c.sliding_window = 0;
  c.torch_dtype = f.has("dtype") ? f.string_or("dtype", "") : f.string_or("torch_dtype", "");
  c.hidden_act = f.string_or("hidden_act", "silu");
  if (c.hidden_act != "silu") {
    fail(source, ": hidden_act '", io::printable(c.hidden_act), "' is not supported (supported: silu)");
  }
  if (f.has("bos_token_id")) c.bos_token_id = parse_token_id(j["bos_token_id"], "bos_token_id", source);
  c.eos_token_ids = parse_eos(j, f, source);
  parse_rope(j, f, source, c);
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_text_file(path), path);
}

}  // namespace ltri
