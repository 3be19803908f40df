// Parameter checks of the policy factory: every bad value is refused with one line that names
// the flag.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

std::string error_of(const AttentionOptions& o, int64_t chunk = 64, int64_t max_positions = 4096) {
  const ModelConfig c = test::policy_test_config(2, 4, 2, 8, max_positions);
  auto backend = make_cpu_backend(1);
  try {
    make_kv_policy(o, {*backend, c, 1 << 20, chunk, ""});
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  return "";
}

AttentionOptions with(const char* policy) {
  AttentionOptions o;
  o.policy = policy;
  o.n_init = 4;
  o.n_local = 256;
  o.budget = 256;
  return o;
}

TEST(PolicyFactory, bad_shared_parameters_name_the_flag) {
  for (const char* policy : {"streaming", "infllm", "ltri"}) {
    SCOPED_TRACE(policy);
    AttentionOptions o = with(policy);
    o.budget = -1;
    EXPECT_NE(error_of(o).find("--attn-budget must be >= 0, got -1"), std::string::npos) << error_of(o);
    o = with(policy);
    o.n_init = -2;
    EXPECT_NE(error_of(o).find("--attn-init must be >= 0"), std::string::npos);
    o = with(policy);
    o.n_local = 0;
    EXPECT_NE(error_of(o).find("--attn-local must be >= 1"), std::string::npos);
    o = with(policy);
    o.placement = "sideways";
    EXPECT_NE(error_of(o).find("--attn-placement sideways: expected fixed or ordered"), std::string::npos);
    o = with(policy);
    o.n_local = 4050;  // + init + chunk (+ lag) is past the model's 4096 positions
    const std::string msg = error_of(o);
    EXPECT_NE(msg.find("--attn-local 4050: the policy needs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("max_position_embeddings"), std::string::npos) << msg;
    EXPECT_NE(error_of(with(policy), 0).find("chunk size (-b) must be >= 1"), std::string::npos);
  }
  AttentionOptions o;
  o.policy = "sparse";
  EXPECT_NE(error_of(o).find("--attn sparse: unknown KV policy"), std::string::npos);
  // The same options are fine for a model with room for them.
  o = with("streaming");
  o.n_local = 4000;
  EXPECT_EQ(error_of(o, 64, 8192), "");
}

}  // namespace
}  // namespace ltri
