// config.json -> ModelConfig: both transformers dialects, defaults, and refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/model_config.hpp"
#include "st_builder.hpp"

namespace ltri {
namespace {

using nlohmann::json;
using test::error_of;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A small Llama config as transformers 4.x writes it (top-level rope_theta / rope_scaling).
json llama_4x() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "max_position_embeddings": 131072, "tie_word_embeddings": false,
    "attention_bias": false, "mlp_bias": false, "hidden_act": "silu",
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "torch_dtype": "bfloat16", "transformers_version": "4.43.0"})");
}

// The same model as transformers 5.x writes it (rope_parameters).
json llama_5x() {
  json j = llama_4x();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = json::parse(R"({"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  return j;
}

json minimal(const std::string& arch = "LlamaForCausalLM") {
  return json{{"architectures", {arch}},  {"vocab_size", 256},       {"hidden_size", 64},
              {"intermediate_size", 160}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

ModelConfig parse(const json& j) { return parse_model_config(j.dump(), "config.json"); }
std::string parse_error(const json& j) {
  return error_of([&] { parse(j); });
}
std::string parse_error(const std::string& text) {
  return error_of([&] { parse_model_config(text, "config.json"); });
}

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
}

TEST(ModelConfig, Transformers4And5DialectsGiveTheSameConfig) {
  const ModelConfig a = parse(llama_4x());
  const ModelConfig b = parse(llama_5x());
  expect_same(a, b);
  EXPECT_EQ(a.architecture, Architecture::Llama);
  EXPECT_EQ(a.vocab_size, 128256);
  EXPECT_EQ(a.num_key_value_heads, 8);
  EXPECT_EQ(a.head_dim, 128);
  EXPECT_EQ(a.rms_norm_eps, 1e-5);
  EXPECT_EQ(a.rope_theta, 500000.0);
  EXPECT_EQ(a.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_EQ(a.rope_scaling.factor, 8.0);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(a.max_position_embeddings, 131072);
  EXPECT_EQ(a.bos_token_id, 128000);
  EXPECT_EQ(a.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
}

TEST(ModelConfig, RopeParametersTakePrecedenceOverTopLevelRopeKeys) {
  json j = llama_5x();
  j["rope_theta"] = 10000.0;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}};  // ignored: 5.x reads rope_parameters
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Llama3);
  // rope_parameters without rope_theta falls back to the top-level one.
  j["rope_parameters"].erase("rope_theta");
  EXPECT_EQ(parse(j).rope_theta, 10000.0);
}

TEST(ModelConfig, DefaultsFollowTransformers) {
  const ModelConfig c = parse(minimal());
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::None);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.hidden_act, "silu");
}

TEST(ModelConfig, NullMeansDefault) {
  json j = minimal();
  for (const char* key : {"head_dim", "num_key_value_heads", "sliding_window", "bos_token_id", "eos_token_id",
                          "rope_scaling", "rope_parameters", "rope_theta"}) {
    j[key] = nullptr;
  }
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.rope_theta, 10000.0);
}

TEST(ModelConfig, EosTokenIdMayBeOneIdOrAList) {
  json j = minimal();
  j["eos_token_id"] = 2;
  EXPECT_EQ(parse(j).eos_token_ids, std::vector<int64_t>{2});
  j["eos_token_id"] = {2, 7, 9};
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<int64_t>{2, 7, 9}));
  j["eos_token_id"] = {2, "x"};
  EXPECT_EQ(parse_error(j),
            "config.json: field \"eos_token_id\" must be a token id (or a list of ids for eos_token_id), got \"x\"");
  j["eos_token_id"] = -1;
  EXPECT_THAT(parse_error(j), HasSubstr("field \"eos_token_id\" must be a token id"));
}

TEST(ModelConfig, Qwen2HasAttentionBiasUnlessTheConfigSaysOtherwise) {
  EXPECT_TRUE(parse(minimal("Qwen2ForCausalLM")).attention_bias);
  json j = minimal("Qwen2ForCausalLM");
  j["attention_bias"] = false;
  EXPECT_FALSE(parse(j).attention_bias);
  EXPECT_FALSE(parse(minimal("LlamaForCausalLM")).attention_bias);
  EXPECT_FALSE(parse(minimal("MistralForCausalLM")).attention_bias);
  json l = minimal();
  l["attention_bias"] = true;
  EXPECT_TRUE(parse(l).attention_bias);
}

TEST(ModelConfig, SlidingWindowIsKeptForMistralAndDroppedForQwen2WithoutUseSlidingWindow) {
  json m = minimal("MistralForCausalLM");
  m["sliding_window"] = 4096;
  EXPECT_EQ(parse(m).sliding_window, 4096);
  json q = minimal("Qwen2ForCausalLM");
  q["sliding_window"] = 131072;
  q["use_sliding_window"] = false;
  EXPECT_EQ(parse(q).sliding_window, 0);
  q["use_sliding_window"] = true;
  EXPECT_EQ(parse(q).sliding_window, 131072);
}

TEST(ModelConfig, LinearScalingReadFromEitherKeyName) {
  json j = minimal();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};  // older 4.x spelling
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Linear);
  EXPECT_EQ(c.rope_scaling.factor, 4.0);
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2}};
  c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Linear);
  EXPECT_EQ(c.rope_scaling.factor, 2.0);
  j["rope_scaling"] = {{"rope_type", "linear"}};
  EXPECT_EQ(parse_error(j), "config.json: missing required field \"rope_scaling.factor\" for rope type linear");
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse(j).rope_scaling.type, RopeScalingType::None);
}

TEST(ModelConfig, Llama3ScalingNeedsAllItsKeys) {
  json j = llama_4x();
  j["rope_scaling"].erase("low_freq_factor");
  EXPECT_EQ(parse_error(j),
            "config.json: missing required field \"rope_scaling.low_freq_factor\" for rope type llama3");
  j = llama_5x();
  j["rope_parameters"]["high_freq_factor"] = 0.5;
  EXPECT_EQ(parse_error(j),
            "config.json: rope_parameters.high_freq_factor (0.5) must exceed low_freq_factor (1)");
}

TEST(ModelConfig, UnsupportedRopeTypesAreRefusedByName) {
  json j = minimal();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  EXPECT_EQ(parse_error(j), "config.json: rope_scaling type 'yarn' is not supported (supported: linear, llama3)");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 2.0}, {"rope_theta", 10000.0}};
  EXPECT_EQ(parse_error(j), "config.json: rope_scaling type 'dynamic' is not supported (supported: linear, llama3)");
  j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
  EXPECT_EQ(parse_error(j), "config.json: rope_parameters.partial_rotary_factor 0.5 is not supported");
}

TEST(ModelConfig, UnknownArchitectureIsNamed) {
  json j = minimal("GPT2LMHeadModel");
  EXPECT_EQ(parse_error(j),
            "config.json: unknown architecture 'GPT2LMHeadModel' (supported: LlamaForCausalLM, MistralForCausalLM, "
            "Qwen2ForCausalLM)");
  j["architectures"] = json::array();
  EXPECT_EQ(parse_error(j), "config.json: field \"architectures\" must be a non-empty list of strings, got a list");
}

TEST(ModelConfig, ModelTypeStandsInForMissingArchitectures) {
  for (auto [type, arch] : {std::pair{"llama", Architecture::Llama}, std::pair{"mistral", Architecture::Mistral},
                            std::pair{"qwen2", Architecture::Qwen2}}) {
    json j = minimal();
    j.erase("architectures");
    j["model_type"] = type;
    EXPECT_EQ(parse(j).architecture, arch) << type;
  }
  json j = minimal();
  j.erase("architectures");
  EXPECT_EQ(parse_error(j), "config.json: missing \"architectures\" (and no \"model_type\")");
  j["model_type"] = "gpt2";
  EXPECT_EQ(parse_error(j), "config.json: unknown model_type 'gpt2' (supported: llama, mistral, qwen2)");
  EXPECT_STREQ(architecture_name(Architecture::Qwen2), "Qwen2ForCausalLM");
}

TEST(ModelConfig, BrokenJsonIsRefused) {
  EXPECT_EQ(parse_error(std::string("{\"vocab_size\": 256,")), "config.json: not valid JSON");
  EXPECT_EQ(parse_error(std::string("")), "config.json: not valid JSON");
  EXPECT_EQ(parse_error(std::string("[1, 2]")), "config.json: not a JSON object");
}

TEST(ModelConfig, MissingRequiredFieldIsNamed) {
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"}) {
    json j = minimal();
    j.erase(key);
    EXPECT_EQ(parse_error(j), std::string("config.json: missing required field \"") + key + "\"");
  }
}

TEST(ModelConfig, WrongTypesNameTheFieldAndWhatWasExpected) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"num_attention_heads", "4"}}, "field \"num_attention_heads\" must be a positive integer (at most 2147483648), got \"4\""},
      {{{"hidden_size", 64.0}}, "field \"hidden_size\" must be a positive integer"},
      {{{"vocab_size", 0}}, "field \"vocab_size\" must be a positive integer"},
      {{{"num_hidden_layers", -2}}, "field \"num_hidden_layers\" must be a positive integer"},
      {{{"vocab_size", 1ull << 40}}, "field \"vocab_size\" must be a positive integer (at most 2147483648), got 1099511627776"},
      {{{"tie_word_embeddings", 1}}, "field \"tie_word_embeddings\" must be true or false, got 1"},
      {{{"rms_norm_eps", "1e-5"}}, "field \"rms_norm_eps\" must be a finite number, got \"1e-5\""},
      {{{"rms_norm_eps", 0}}, "field \"rms_norm_eps\" must be positive, got 0"},
      {{{"rope_theta", {1, 2}}}, "field \"rope_theta\" must be a finite number, got a list"},
      {{{"rope_scaling", "llama3"}}, "field \"rope_scaling\" must be an object, got \"llama3\""},
      {{{"rope_parameters", 5}}, "field \"rope_parameters\" must be an object, got 5"},
      {{{"hidden_act", "gelu"}}, "hidden_act 'gelu' is not supported (supported: silu)"},
      {{{"hidden_act", 3}}, "field \"hidden_act\" must be a string, got 3"},
      {{{"bos_token_id", "1"}}, "field \"bos_token_id\" must be a token id"},
      {{{"sliding_window", -1}}, "field \"sliding_window\" must be a non-negative integer"},
      {{{"mlp_bias", true}}, "mlp_bias true is not supported"},
      {{{"head_dim", 15}}, "head_dim must be even for RoPE, got 15"},
  };
  for (const auto& [patch, expected] : cases) {
    json j = minimal();
    j.update(patch);
    EXPECT_THAT(parse_error(j), AllOf(HasSubstr("config.json: "), HasSubstr(expected))) << patch.dump();
  }
}

TEST(ModelConfig, OutOfRangeNumbersAreRefused) {
  // 1e999 does not fit a double; it must not become an infinite rope_theta.
  std::string text = minimal().dump();
  text.insert(1, "\"rope_theta\": 1e999, ");
  EXPECT_EQ(parse_error(text), "config.json: not valid JSON");
}

TEST(ModelConfig, HeadDimDefaultNeedsHiddenSizeDivisibleByHeads) {
  json j = minimal();
  j["hidden_size"] = 66;
  EXPECT_EQ(parse_error(j),
            "config.json: hidden_size (66) is not divisible by num_attention_heads (4) and no head_dim is given");
  j["head_dim"] = 32;  // an explicit head_dim decouples them (Mistral-Nemo style)
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.hidden_size, 66);
}

TEST(ModelConfig, KvHeadsMustDivideHeads) {
  json j = minimal();
  j["num_key_value_heads"] = 3;
  EXPECT_EQ(parse_error(j),
            "config.json: num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
}

TEST(ModelConfig, LoadNamesThePathInErrors) {
  test::TempDir dir;
  const std::string path = dir.file("config.json");
  test::write_file(path, minimal("GPT2LMHeadModel").dump());
  EXPECT_THAT(error_of([&] { load_model_config(path); }), HasSubstr(path + ": unknown architecture 'GPT2LMHeadModel'"));
  test::write_file(path, llama_5x().dump());
  EXPECT_EQ(load_model_config(path).num_hidden_layers, 32);
  EXPECT_THAT(error_of([&] { load_model_config(dir.file("absent.json")); }),
              HasSubstr(dir.file("absent.json") + ": cannot open"));
}

TEST(ModelConfig, ErrorsStayShortAndOneLineForHostileValues) {
  json j = minimal();
  j["hidden_act"] = std::string(10000, 'x') + "\n";
  std::string msg = parse_error(j);
  EXPECT_LT(msg.size(), 400u);
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  // A deeply nested value is described by kind, never dumped.
  std::string text = minimal().dump();
  text.insert(1, "\"eos_token_id\": [" + std::string(50000, '[') + std::string(50001, ']') + ", ");
  EXPECT_EQ(parse_error(text),
            "config.json: field \"eos_token_id\" must be a token id (or a list of ids for eos_token_id), got a list");
}

}  // namespace
}  // namespace ltri
