// The tiny checkpoints under tests/fixtures/tiny/ were written by Hugging Face transformers
// (config.json) and its safetensors writer: both readers must accept them, and the config must
// predict every tensor's name, shape and dtype the writer produced.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/mapped_file.hpp"
#include "io/model_config.hpp"
#include "io/safetensors.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator(test::fixtures_dir() + "/tiny")) {
    if (std::filesystem::exists(e.path() / "config.json")) dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// name -> shape of every tensor a Llama-family checkpoint with config `c` holds, written out
// from the transformers module layout.
std::map<std::string, std::vector<int64_t>> expected_tensors(const ModelConfig& c) {
  std::map<std::string, std::vector<int64_t>> t;
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  t["model.embed_tokens.weight"] = {c.vocab_size, c.hidden_size};
  t["model.norm.weight"] = {c.hidden_size};
  if (!c.tie_word_embeddings) t["lm_head.weight"] = {c.vocab_size, c.hidden_size};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t[p + "input_layernorm.weight"] = {c.hidden_size};
    t[p + "post_attention_layernorm.weight"] = {c.hidden_size};
    t[p + "self_attn.q_proj.weight"] = {q, c.hidden_size};
    t[p + "self_attn.k_proj.weight"] = {kv, c.hidden_size};
    t[p + "self_attn.v_proj.weight"] = {kv, c.hidden_size};
    t[p + "self_attn.o_proj.weight"] = {c.hidden_size, q};
    if (c.attention_bias) {
      t[p + "self_attn.q_proj.bias"] = {q};
      t[p + "self_attn.k_proj.bias"] = {kv};
      t[p + "self_attn.v_proj.bias"] = {kv};
    }
    t[p + "mlp.gate_proj.weight"] = {c.intermediate_size, c.hidden_size};
    t[p + "mlp.up_proj.weight"] = {c.intermediate_size, c.hidden_size};
    t[p + "mlp.down_proj.weight"] = {c.hidden_size, c.intermediate_size};
  }
  return t;
}

TEST(FixtureCheckpoints, AllFiveArePresent) { EXPECT_EQ(fixture_dirs().size(), 5u); }

TEST(FixtureCheckpoints, ConfigPredictsEveryTensorNameShapeAndDtype) {
  for (const std::string& dir : fixture_dirs()) {
    SCOPED_TRACE(dir);
    const ModelConfig c = load_model_config(dir + "/config.json");
    const WeightStore store = WeightStore::open_dir(dir);
    const auto expected = expected_tensors(c);
    std::set<std::string> stored;
    for (const auto& [name, _] : store.all()) stored.insert(name);
    std::set<std::string> wanted;
    for (const auto& [name, _] : expected) wanted.insert(name);
    EXPECT_EQ(stored, wanted);
    const nlohmann::json ref = nlohmann::json::parse(read_text_file(dir + "/reference.json"));
    const std::string torch_dtype = ref.at("weights_dtype");
    const DType want_dtype = torch_dtype == "bfloat16" ? DType::BF16 : torch_dtype == "float16" ? DType::F16 : DType::F32;
    for (const auto& [name, shape] : expected) {
      const TensorEntry* t = store.find(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(t->shape, shape) << name;
      EXPECT_EQ(t->dtype, want_dtype) << name;
      EXPECT_EQ(t->nbytes, size_t(t->numel()) * dtype_size(t->dtype)) << name;
    }
    EXPECT_EQ(architecture_name(c.architecture), ref.at("architecture").get<std::string>());
  }
}

TEST(FixtureCheckpoints, ConfigsParseToTheValuesTransformersWrote) {
  const std::string tiny = test::fixtures_dir() + "/tiny/";
  const ModelConfig l3 = load_model_config(tiny + "llama3_rope_tied_f16/config.json");
  EXPECT_EQ(l3.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_EQ(l3.rope_scaling.factor, 8.0);
  EXPECT_EQ(l3.rope_scaling.original_max_position_embeddings, 32);
  EXPECT_EQ(l3.rope_theta, 500000.0);
  EXPECT_EQ(l3.eos_token_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(l3.tie_word_embeddings);
  EXPECT_EQ(l3.num_key_value_heads, 1);

  const ModelConfig lin = load_model_config(tiny + "llama_linear_rope_f32/config.json");
  EXPECT_EQ(lin.rope_scaling.type, RopeScalingType::Linear);
  EXPECT_EQ(lin.rope_scaling.factor, 4.0);

  const ModelConfig mis = load_model_config(tiny + "mistral_head_dim_f16/config.json");
  EXPECT_EQ(mis.architecture, Architecture::Mistral);
  EXPECT_EQ(mis.head_dim, 32);  // explicit: 4 heads x 32 != hidden 64
  EXPECT_EQ(mis.rope_theta, 1e6);
  EXPECT_EQ(mis.sliding_window, 0);

  const ModelConfig qw = load_model_config(tiny + "qwen2_bias_tied_bf16/config.json");
  EXPECT_EQ(qw.architecture, Architecture::Qwen2);
  EXPECT_TRUE(qw.attention_bias);  // not in the file: Qwen2's default
  EXPECT_EQ(qw.head_dim, 16);
  EXPECT_EQ(qw.rms_norm_eps, 1e-5);
}

TEST(FixtureCheckpoints, MetadataIsReadFromTheHeader) {
  const SafetensorsFile f = SafetensorsFile::open(test::fixtures_dir() + "/tiny/llama_gqa_bf16/model.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

}  // namespace
}  // namespace ltri
