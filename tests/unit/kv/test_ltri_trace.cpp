// LTRI_TRACE_TOKENS (kv/ltri_trace.hpp): the range is parsed strictly, nothing is printed
// without it, and the trace names exactly the stored spans over the range, their retrieval in
// every layer, and the persistent set at the first decode step.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "kv/ltri_policy.hpp"
#include "kv/ltri_trace.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using test::StreamDriver;

// Sets an environment variable for one scope (the trace reads it at each use).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

AttentionOptions small_ltri() {
  AttentionOptions o;
  o.policy = "ltri";
  o.n_init = 2;
  o.n_local = 32;
  o.budget = 16;
  o.span_min = 4;
  o.span_max = 12;
  o.theta = 0.5;
  o.placement = "ordered";
  return o;
}

// 20 prefill chunks of 16 tokens (the traced range is evicted early on), then 3 decode steps;
// returns what went to stderr.
std::string run_stream() {
  StreamDriver d(test::policy_test_config(), small_ltri(), 16);
  testing::internal::CaptureStderr();
  for (int step = 0; step < 20; ++step) d.feed(16);
  for (int step = 0; step < 3; ++step) d.feed(1);
  std::string err = testing::internal::GetCapturedStderr();
  // The store as it ended, one line per unit over the traced range [100, 120), for comparison.
  const auto& p = dynamic_cast<const LtriPolicy&>(d.policy());
  for (int64_t l = 0; l < 2; ++l) {
    for (const StoredUnit& u : p.store(l).units()) {
      if (u.first_token < 120 && u.first_token + u.length > 100) {
        err += "expect L" + std::to_string(l) + " " + std::to_string(u.first_token) + " " +
               std::to_string(u.first_token + u.length) + "\n";
      }
    }
  }
  return err;
}

TEST(LtriTrace, the_range_is_parsed_from_the_environment) {
  LtriTrace t;
  {
    ScopedEnv env("LTRI_TRACE_TOKENS", nullptr);
    EXPECT_FALSE(LtriTrace::from_env(t));
  }
  for (const char* bad : {"", "x", "10", "10;20", "a,20"}) {
    ScopedEnv env("LTRI_TRACE_TOKENS", bad);
    EXPECT_FALSE(LtriTrace::from_env(t)) << "'" << bad << "'";
  }
  {
    ScopedEnv env("LTRI_TRACE_TOKENS", "10,20");
    ASSERT_TRUE(LtriTrace::from_env(t));
    EXPECT_EQ(t.first, 10);
    EXPECT_EQ(t.last, 20);
    EXPECT_EQ(t.prompt, -1);
  }
  {
    ScopedEnv env("LTRI_TRACE_TOKENS", "10,20,512");
    ASSERT_TRUE(LtriTrace::from_env(t));
    EXPECT_EQ(t.prompt, 512);
  }
  // [10, 20) overlaps a unit iff they share a token.
  EXPECT_TRUE(t.overlaps(19, 1));
  EXPECT_TRUE(t.overlaps(5, 6));
  EXPECT_FALSE(t.overlaps(20, 4));
  EXPECT_FALSE(t.overlaps(5, 5));
  // Per-head ranks only for the chunk that ends the prompt, and only when asked.
  ScopedEnv heads("LTRI_TRACE_HEADS", "1");
  EXPECT_TRUE(t.wants_heads(500, 12));
  EXPECT_FALSE(t.wants_heads(500, 11));
}

TEST(LtriTrace, nothing_is_printed_without_the_variable) {
  ScopedEnv env("LTRI_TRACE_TOKENS", nullptr);
  const std::string err = run_stream();
  EXPECT_EQ(err.find("trace "), std::string::npos) << err;
}

TEST(LtriTrace, names_the_stored_spans_over_the_range_and_their_retrieval) {
  ScopedEnv env("LTRI_TRACE_TOKENS", "100,120");
  const std::string err = run_stream();
  std::set<std::pair<int64_t, std::pair<long long, long long>>> traced, expected;
  std::set<int64_t> persist_layers;
  int prefill_lines = 0;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    long long layer = 0, a = 0, b = 0, len = 0, vectors = 0;
    if (std::sscanf(line.c_str(), "trace store L%lld span [%lld, %lld) len %lld vectors %lld", &layer, &a, &b, &len,
                    &vectors) == 5) {
      EXPECT_EQ(b - a, len) << line;
      EXPECT_GE(vectors, 1) << line;
      EXPECT_LE(vectors, len) << line;
      if (line.find(" TRACED") != std::string::npos) traced.insert({layer, {a, b}});
    } else if (std::sscanf(line.c_str(), "expect L%lld %lld %lld", &layer, &a, &b) == 3) {
      expected.insert({layer, {a, b}});
    } else if (std::sscanf(line.c_str(), "trace persist L%lld unit", &layer) == 1) {
      persist_layers.insert(layer);
    }
    prefill_lines += line.rfind("trace prefill ", 0) == 0;
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(traced, expected);  // every stored span over the range, and only those
  EXPECT_GT(prefill_lines, 0);  // later chunks ranked them
  EXPECT_EQ(persist_layers, (std::set<int64_t>{0, 1}));  // the persistent set, per layer
}

}  // namespace
}  // namespace ltri
