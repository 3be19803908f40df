// The streaming policies' device growth (KvPolicy::device_growth): the index mirrored on the
// device grows with every stored token, so a prompt whose index cannot fit must stop with one
// line before the prefill (at the index's floor) or as soon as the density is measured, not at
// an allocation failure later. The sizes are checked against the stores' own counts; the
// session's refusal with a backend that reports a device of a given free size.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "io/model_config.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/streaming_base.hpp"
#include "kv/unit_index_mirror.hpp"
#include "kv_test_util.hpp"
#include "model/llama_model.hpp"
#include "model/llama_weights.hpp"

namespace ltri {
namespace {

AttentionOptions small(const std::string& policy) {
  AttentionOptions o;
  o.policy = policy;
  o.n_init = 4;
  o.n_local = 24;
  o.budget = 16;
  o.block_size = 8;
  o.block_repr = 2;
  o.span_min = 2;
  o.span_max = 12;
  o.index = "static";  // at least 2 vectors a span of 2+ tokens: a density of at least 1/6
  o.index_static = 2;
  return o;
}

// A mirrored vector of policy_test_config (2 KV heads x head_dim 8, f32 index) and its unit
// boundary.
constexpr double kVectorBytes = 2 * 8 * 4 + 4;
constexpr int64_t kLayers = 2;

TEST(DeviceGrowth, before_any_store_the_policy_counts_its_floor) {
  for (const auto& [policy, floor] : {std::pair<std::string, double>{"ltri", 1.0 / 12}, {"infllm", 1.0 / 8}}) {
    test::StreamDriver d(test::policy_test_config(), small(policy), 16);
    const KvPolicy::DeviceGrowth g = d.policy().device_growth(1000);
    EXPECT_FALSE(g.measured) << policy;
    EXPECT_DOUBLE_EQ(g.bytes_per_token, floor * kVectorBytes * kLayers) << policy;
    EXPECT_EQ(g.bytes, size_t(floor * 1000 * kLayers * kVectorBytes * UnitIndexMirror::kGrowth)) << policy;
    EXPECT_STREQ(g.what, policy == "ltri" ? "span index" : "block index");
  }
  test::StreamDriver streaming(test::policy_test_config(), small("streaming"), 16);
  EXPECT_EQ(streaming.policy().device_growth(1000).bytes, 0u);  // nothing grows
}

TEST(DeviceGrowth, once_the_layers_have_stored_enough_the_density_is_the_stores) {
  for (const std::string policy : {"ltri", "infllm"}) {
    test::StreamDriver d(test::policy_test_config(), small(policy), 16);
    const auto& base = dynamic_cast<const StreamingPolicyBase&>(d.policy());
    // Until every layer has stored kGrowthSampleTokens on average, the floor stands.
    while (d.policy().n_past() < StreamingPolicyBase::kGrowthSampleTokens) d.feed(16);
    EXPECT_FALSE(d.policy().device_growth(1000).measured) << policy;
    while (d.policy().n_past() < StreamingPolicyBase::kGrowthSampleTokens + 64) d.feed(16);
    int64_t vectors = 0, tokens = 0;
    for (int64_t l = 0; l < kLayers; ++l) {
      vectors += base.store(l).n_vectors();
      tokens += base.store(l).end_token() - 4;  // the store starts after the 4 init tokens
    }
    ASSERT_GE(tokens, kLayers * StreamingPolicyBase::kGrowthSampleTokens) << policy;
    const KvPolicy::DeviceGrowth g = d.policy().device_growth(1000);
    EXPECT_TRUE(g.measured) << policy;
    const double density = double(vectors) / double(tokens);
    if (policy == "infllm") {
      EXPECT_DOUBLE_EQ(density, 1.0 / 8);  // one vector per block
    } else {
      EXPECT_GE(density, 1.0 / 6);  // 2 per span of 2+ tokens, or 1 per 1-token span
    }
    EXPECT_DOUBLE_EQ(g.bytes_per_token, density * kVectorBytes * kLayers) << policy;
    // On the CPU the mirrors stay empty: the growth is the whole index, stored and to come.
    const double expected = (double(vectors) + density * 1000 * kLayers) * kVectorBytes * UnitIndexMirror::kGrowth;
    EXPECT_NEAR(double(g.bytes), expected, 1.0) << policy;
    // A reset forgets the measurement with the tokens.
    d.policy().reset();
    EXPECT_FALSE(d.policy().device_growth(1000).measured) << policy;
  }
}

// The CPU backend, reporting a device with `free` bytes free.
class SizedDeviceBackend : public CpuBackend {
 public:
  SizedDeviceBackend() : CpuBackend(2) {}
  std::optional<size_t> device_free_bytes() const override { return free; }
  size_t free = size_t(1) << 40;
};

struct SizedModel {
  SizedDeviceBackend* backend = nullptr;
  std::unique_ptr<LlamaModel> model;
};

SizedModel load_sized(const std::string& name) {
  const std::string dir = test::tiny_model_dir(name);
  const ModelConfig config = load_model_config(dir + "/config.json");
  auto backend = std::make_unique<SizedDeviceBackend>();
  SizedModel m;
  m.backend = backend.get();
  LlamaWeights weights = load_llama_weights(dir, config, *backend);
  m.model = std::make_unique<LlamaModel>(config, std::move(backend), std::move(weights), dir);
  return m;
}

TEST(DeviceGrowth, a_prompt_whose_index_cannot_fit_stops_with_one_line_early) {
  SizedModel m = load_sized("llama_gqa_bf16");
  const ModelConfig& c = m.model->config();
  const int64_t n = 5000;
  const auto ids = test::random_ids(size_t(n), c.vocab_size, 21);
  SessionOptions so;
  so.chunk = 16;
  so.attention = small("ltri");
  auto session = m.model->new_session(so);  // checked with plenty free
  std::vector<float> logits(size_t(c.vocab_size));
  const KvPolicy& policy = dynamic_cast<const LlamaSession&>(*session).policy();
  // A mirrored vector of this model (f32 index, as the store is f32) over all layers.
  const double layer_bytes = double(c.num_hidden_layers) * double(c.num_key_value_heads * c.head_dim * 4 + 4);
  const double floor = 1.0 / 12, growth = UnitIndexMirror::kGrowth;

  // Enough: the whole prompt runs, and tells its index's density.
  session->forward(ids, logits.data());
  EXPECT_EQ(session->n_past(), n);
  const KvPolicy::DeviceGrowth after = policy.device_growth(1);
  ASSERT_TRUE(after.measured);
  const double density = after.bytes_per_token / layer_bytes;
  ASSERT_GE(density, 2 * floor);  // 2 vectors a span of 2 to 12 tokens, 1 a span of 1

  // Less than the floor for the prompt: refused before the first chunk.
  session->reset();
  m.backend->free = size_t(double(n) * floor * layer_bytes * growth / 2);
  try {
    session->forward(ids, logits.data());
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the ltri span index would outgrow GPU memory"), std::string::npos) << what;
    EXPECT_NE(what.find("the 5000 prompt tokens left (of 5000)"), std::string::npos) << what;
    EXPECT_NE(what.find("at least"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(session->n_past(), 0);

  // Room for what the floor promises up to the measurement (the vectors stored by then and the
  // floor for the rest), not for the density the index turns out to have: refused once the
  // layers have stored enough to measure it, well before the prompt's end.
  session->reset();
  const double measured_at = double(StreamingPolicyBase::kGrowthSampleTokens + so.attention.n_local + 64);
  const double floor_then = density * measured_at + floor * (double(n) - measured_at);
  const double measured_then = density * double(n - so.attention.n_local);
  ASSERT_LT(floor_then * 1.1, measured_then * 0.9);
  m.backend->free = size_t((floor_then + measured_then) / 2 * layer_bytes * growth);
  try {
    session->forward(ids, logits.data());
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("measured"), std::string::npos) << what;
    EXPECT_NE(what.find("(of 5000)"), std::string::npos) << what;
  }
  EXPECT_GE(session->n_past(), StreamingPolicyBase::kGrowthSampleTokens);
  EXPECT_LT(session->n_past(), 3000);
}

}  // namespace
}  // namespace ltri
