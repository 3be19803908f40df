// --attn-async-store: the store step of evictions (index vectors, ContextStore::add_unit) on
// worker threads changes nothing but when it runs.
// - LayerJobs, the pool: a layer's jobs run in order and wait() sees them done, layers run at
//   the same time, a job's error is rethrown on the waiting thread (once), no threads = inline,
//   a reset discards errors, destruction with jobs queued and running is clean, bad arguments
//   are errors.
// - The policies (infllm, ltri) with the store step async vs on the calling thread, on the same
//   stream of prefill chunks and decode steps: the same plans (retrieved units, visible tokens
//   and their positions), the same stores (units, index vectors, K/V rows), and a model's
//   logits bit for bit; a failing store step is the caller's one-line error, and a reset
//   recovers from it; destroying a policy with store jobs pending is clean.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/layer_jobs.hpp"
#include "kv/streaming_base.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using namespace std::chrono_literals;
using test::StreamDriver;
using test::visible_keys;

// --- LayerJobs ---

TEST(LayerJobs, a_layers_jobs_run_in_order_and_wait_sees_them_done) {
  LayerJobs jobs(3, 2);
  ASSERT_EQ(jobs.threads(), 2);
  std::vector<std::vector<int>> log(3);  // each layer's log is written by its own jobs only
  for (int i = 0; i < 40; ++i) {
    for (int64_t l = 0; l < 3; ++l) {
      jobs.submit(l, [&log, l, i] {
        if (i % 7 == 0) std::this_thread::sleep_for(1ms);  // let the next submit find it running
        log[size_t(l)].push_back(i);
      });
    }
  }
  jobs.wait(1);
  EXPECT_EQ(log[1].size(), 40u);
  jobs.wait_all();
  for (const auto& entries : log) {
    ASSERT_EQ(entries.size(), 40u);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(entries[size_t(i)], i);
  }
}

TEST(LayerJobs, wait_returns_only_after_the_job_finished) {
  LayerJobs jobs(2, 1);
  std::atomic<bool> done{false};
  jobs.submit(0, [&] {
    std::this_thread::sleep_for(50ms);
    done = true;
  });
  jobs.wait(1);  // another layer: nothing to wait for
  jobs.wait(0);
  EXPECT_TRUE(done);
}

TEST(LayerJobs, jobs_of_different_layers_run_at_the_same_time) {
  LayerJobs jobs(2, 2);
  std::promise<void> second_started;
  std::future<void> started = second_started.get_future();
  std::atomic<bool> met{false};
  // Layer 0's job waits for layer 1's to start: only possible if both run at once.
  jobs.submit(0, [&] { met = started.wait_for(10s) == std::future_status::ready; });
  jobs.submit(1, [&] { second_started.set_value(); });
  jobs.wait_all();
  EXPECT_TRUE(met);
}

TEST(LayerJobs, a_jobs_error_is_rethrown_once_on_the_waiting_thread) {
  LayerJobs jobs(3, 2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> ran_elsewhere{false};
  jobs.submit(1, [&] {
    ran_elsewhere = std::this_thread::get_id() != caller;
    fail("context store: no host memory (test)");
  });
  jobs.submit(0, [] {});
  EXPECT_NO_THROW(jobs.wait(0));  // other layers are not affected
  try {
    jobs.wait(1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "context store: no host memory (test)");
  }
  EXPECT_TRUE(ran_elsewhere);
  EXPECT_NO_THROW(jobs.wait(1));  // reported once

  // The next submit for a failed layer reports the error first; wait_all reports the lowest layer.
  jobs.submit(2, [] { fail("layer 2 failed"); });
  jobs.submit(1, [] { fail("layer 1 failed"); });
  std::this_thread::sleep_for(20ms);
  EXPECT_THROW(jobs.submit(2, [] {}), Error);
  try {
    jobs.wait_all();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "layer 1 failed");
  }
  EXPECT_NO_THROW(jobs.wait_all());

  // A reset discards what failed.
  jobs.submit(0, [] { fail("layer 0 failed"); });
  EXPECT_NO_THROW(jobs.discard_all());
  EXPECT_NO_THROW(jobs.wait(0));
}

TEST(LayerJobs, without_threads_a_job_runs_inside_submit) {
  LayerJobs jobs(2, 0);
  EXPECT_EQ(jobs.threads(), 0);
  std::thread::id ran_on;
  jobs.submit(1, [&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_THROW(jobs.submit(0, [] { fail("inline failure"); }), Error);
  EXPECT_NO_THROW(jobs.wait(0));
  EXPECT_NO_THROW(jobs.wait_all());
}

TEST(LayerJobs, destruction_with_jobs_queued_and_running_is_clean) {
  std::atomic<int> started{0}, finished{0};
  {
    LayerJobs jobs(16, 2);
    for (int64_t l = 0; l < 16; ++l) {
      jobs.submit(l, [&, l] {
        ++started;
        std::this_thread::sleep_for(20ms);
        ++finished;
        if (l % 3 == 0) fail("a failure nobody waits for");
      });
    }
    std::this_thread::sleep_for(5ms);
  }  // joins: the running jobs finish, the queued ones never start
  EXPECT_EQ(started.load(), finished.load());
  EXPECT_LT(started.load(), 16);
}

TEST(LayerJobs, bad_arguments_are_errors) {
  EXPECT_THROW(LayerJobs(2, -1), Error);
  LayerJobs jobs(2, 1);
  EXPECT_THROW(jobs.submit(2, [] {}), Error);
  EXPECT_THROW(jobs.wait(-1), Error);
}

// LTRI_STORE_THREADS for the scope of a test (tests run one at a time).
class ScopedStoreThreads {
 public:
  explicit ScopedStoreThreads(const char* value) { ::setenv("LTRI_STORE_THREADS", value, 1); }
  ~ScopedStoreThreads() { ::unsetenv("LTRI_STORE_THREADS"); }
};

TEST(LayerJobs, default_threads_are_a_few_unless_the_environment_says) {
  const int n = LayerJobs::default_threads();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, 8);
  {
    ScopedStoreThreads env("7");
    EXPECT_EQ(LayerJobs::default_threads(), 7);
  }
  for (const char* bad : {"0", "-2", "three", "4x"}) {
    ScopedStoreThreads env(bad);
    try {
      LayerJobs::default_threads();
      FAIL() << "no error for " << bad;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("LTRI_STORE_THREADS="));
    }
  }
}

// --- the policies ---

constexpr int64_t kLayers = 4;

AttentionOptions retrieval_options(const std::string& policy, const std::string& async_store) {
  AttentionOptions o;
  o.policy = policy;
  o.n_init = 2;
  o.n_local = 32;
  o.budget = 24;
  o.block_size = 8;
  o.block_repr = 2;
  o.span_min = 2;
  o.span_max = 12;
  o.theta = 0.5;
  o.index = "dynamic";
  o.index_max = 6;
  o.async_store = async_store;
  return o;
}

const StreamingPolicyBase& base_of(StreamDriver& d) { return dynamic_cast<const StreamingPolicyBase&>(d.policy()); }

// What one layer's plan showed: each visible key's token and positions, and the units loaded.
struct Seen {
  std::vector<int64_t> keys;  // token, position, query_position, causal per key
  std::vector<int64_t> units;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> feed_and_record(StreamDriver& d, int64_t n) {
  std::vector<Seen> seen(kLayers);
  d.feed(n, [&](int64_t layer, const AttentionPlan& plan) {
    Seen& s = seen[size_t(layer)];
    for (const auto& k : visible_keys(plan, d.kv_row())) {
      s.keys.insert(s.keys.end(), {k.token, k.position, k.query_position, int64_t(k.causal)});
    }
    s.units = base_of(d).retrieved(layer).units();
  });
  return seen;
}

void expect_same_store(const ContextStore& a, const ContextStore& b, int64_t layer) {
  SCOPED_TRACE("layer " + std::to_string(layer));
  ASSERT_EQ(a.units().size(), b.units().size());
  for (size_t u = 0; u < a.units().size(); ++u) {
    const StoredUnit &x = a.units()[u], &y = b.units()[u];
    ASSERT_EQ(x.first_token, y.first_token) << "unit " << u;
    ASSERT_EQ(x.length, y.length) << "unit " << u;
    ASSERT_EQ(x.first_vector, y.first_vector) << "unit " << u;
    ASSERT_EQ(x.n_vectors, y.n_vectors) << "unit " << u;
  }
  ASSERT_EQ(a.n_vectors(), b.n_vectors());
  const size_t hd = size_t(a.head_dim());
  for (int64_t g = 0; g < a.n_kv_heads(); ++g) {
    for (int64_t i = 0; i < a.n_vectors(); ++i) {
      ASSERT_EQ(std::memcmp(a.index_vector(g, i), b.index_vector(g, i), hd * sizeof(float)), 0)
          << "KV head " << g << " vector " << i;
    }
  }
  ASSERT_EQ(a.end_token(), b.end_token());
  const size_t row = size_t(a.n_kv_heads()) * hd;
  for (int64_t t = a.first_token(); t < a.end_token(); ++t) {
    ASSERT_EQ(std::memcmp(a.k(t), b.k(t), row * sizeof(float)), 0) << "K of token " << t;
    ASSERT_EQ(std::memcmp(a.v(t), b.v(t), row * sizeof(float)), 0) << "V of token " << t;
  }
}

TEST(AsyncStore, the_same_plans_and_stores_as_storing_on_the_calling_thread) {
  const ScopedStoreThreads env("3");  // more workers than this machine's cores: real overlap
  for (const std::string policy : {"infllm", "ltri"}) {
    SCOPED_TRACE(policy);
    const ModelConfig config = test::policy_test_config(kLayers);
    StreamDriver inline_store(config, retrieval_options(policy, "off"), 16);
    StreamDriver async_store(config, retrieval_options(policy, "on"), 16);
    ASSERT_EQ(base_of(inline_store).store_threads(), 0);
    ASSERT_EQ(base_of(async_store).store_threads(), 3);
    int64_t plans_with_units = 0;
    for (int step = 0; step < 70; ++step) {
      const int64_t n = step < 40 ? 16 : 1;  // prefill chunks, then decode steps
      const std::vector<Seen> want = feed_and_record(inline_store, n);
      const std::vector<Seen> got = feed_and_record(async_store, n);
      for (int64_t l = 0; l < kLayers; ++l) {
        ASSERT_EQ(got[size_t(l)], want[size_t(l)]) << "step " << step << " layer " << l;
        plans_with_units += !want[size_t(l)].units.empty();
      }
    }
    EXPECT_GT(plans_with_units, 50 * kLayers);  // retrieval ran: the comparison can fail
    for (int64_t l = 0; l < kLayers; ++l) {
      EXPECT_GT(base_of(inline_store).store(l).units().size(), 20u);
      expect_same_store(base_of(async_store).store(l), base_of(inline_store).store(l), l);
    }
    EXPECT_EQ(async_store.policy().host_bytes(), inline_store.policy().host_bytes());
  }
}

TEST(AsyncStore, a_model_computes_the_same_logits_bit_for_bit) {
  const ScopedStoreThreads env("3");
  // One OpenMP thread: the store workers are the only other threads (and ThreadSanitizer, which
  // does not see OpenMP's synchronisation, reports only theirs).
  ModelLoadOptions load;
  load.threads = 1;
  const auto model = Model::load(test::tiny_model_dir("llama_gqa_bf16"), load);
  const auto ids = test::random_ids(200, model->config().vocab_size, 31);
  for (const std::string policy : {"infllm", "ltri"}) {
    SCOPED_TRACE(policy);
    AttentionOptions o = retrieval_options(policy, "off");
    o.n_init = 4;
    o.n_local = 16;
    const auto want = test::run_logits(*model, ids, o, 16, 160);  // 10 chunks, then 40 decode steps
    o.async_store = "on";
    const auto got = test::run_logits(*model, ids, o, 16, 160);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
    // The comparison can fail: another budget gives other logits.
    o.budget = 8;
    EXPECT_NE(test::run_logits(*model, ids, o, 16, 160), want);
  }
}

// A CPU backend whose store-sized host allocation number `fail_at` (1-based) fails, from
// whichever thread. Store slabs and index blocks are tens of thousands of floats here; the
// evictions' copy buffers, a few hundred, are not counted: how many of those are made depends
// on how soon the jobs hand them back.
class FailingHostBackend : public CpuBackend {
 public:
  static constexpr size_t kStoreSized = 4096;  // floats
  explicit FailingHostBackend(int fail_at) : CpuBackend(1), fail_at_(fail_at) {}
  float* alloc_host(size_t n_floats) override {
    if (n_floats >= kStoreSized && calls_.fetch_add(1) + 1 == fail_at_) {
      fail("test backend: no host memory for ", n_floats, " floats");
    }
    return CpuBackend::alloc_host(n_floats);
  }

 private:
  std::atomic<int> calls_{0};
  int fail_at_;
};

TEST(AsyncStore, a_failing_store_step_is_the_callers_error) {
  const ScopedStoreThreads env("2");
  for (const std::string policy : {"infllm", "ltri"}) {
    for (const char* async : {"on", "off"}) {
      SCOPED_TRACE(policy + " async " + async);
      // Each layer's store takes its first slab at its first eviction: the second layer's fails.
      StreamDriver d(test::policy_test_config(kLayers), retrieval_options(policy, async), 16, "",
                     std::make_unique<FailingHostBackend>(2));
      std::string error;
      try {
        for (int step = 0; step < 30; ++step) d.feed(16);
        d.policy().host_bytes();  // waits for the last jobs
      } catch (const Error& e) {
        error = e.what();
      }
      EXPECT_THAT(error, ::testing::StartsWith("test backend: no host memory for "));
      // A reset forgets the failed stream; the next one (its allocations succeed) runs through.
      d.policy().reset();
      for (int step = 0; step < 30; ++step) d.feed(16);
      EXPECT_GT(base_of(d).store(kLayers - 1).units().size(), 10u);
    }  // destroyed with store jobs possibly pending
  }
}

TEST(AsyncStore, destroying_a_policy_with_store_jobs_pending_is_clean) {
  const ScopedStoreThreads env("3");
  for (const std::string policy : {"infllm", "ltri"}) {
    for (int chunks : {3, 8, 13}) {
      StreamDriver d(test::policy_test_config(kLayers), retrieval_options(policy, "on"), 16);
      for (int step = 0; step < chunks; ++step) d.feed(16);
      // Each chunk after the window filled left every layer a store job; nothing waits for them.
    }
  }
  // And a reset waits for them: the stream starts again from nothing.
  StreamDriver d(test::policy_test_config(kLayers), retrieval_options("ltri", "on"), 16);
  for (int step = 0; step < 8; ++step) d.feed(16);
  d.policy().reset();
  EXPECT_EQ(base_of(d).store(0).units().size(), 0u);
  EXPECT_EQ(d.policy().n_past(), 0);
}

TEST(AsyncStore, the_switch_is_checked_and_auto_follows_the_backend) {
  const ModelConfig config = test::policy_test_config(kLayers);
  for (const char* mode : {"auto", "off"}) {
    StreamDriver d(config, retrieval_options("ltri", mode), 16);
    EXPECT_EQ(base_of(d).store_threads(), 0) << mode << " on the CPU backend";
  }
  {
    const ScopedStoreThreads env("2");
    StreamDriver d(config, retrieval_options("infllm", "on"), 16);
    EXPECT_EQ(base_of(d).store_threads(), 2);
  }
  {
    // auto turns the workers on for the CUDA backend: here a CPU backend under that name.
    class NamedCuda : public CpuBackend {
     public:
      NamedCuda() : CpuBackend(1) {}
      const char* name() const override { return "cuda"; }
    };
    const ScopedStoreThreads env("3");
    StreamDriver d(config, retrieval_options("ltri", "auto"), 16, "", std::make_unique<NamedCuda>());
    EXPECT_EQ(base_of(d).store_threads(), 3);
  }
  try {
    StreamDriver d(config, retrieval_options("ltri", "yes"), 16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--attn-async-store yes: expected auto, on or off");
  }
}

}  // namespace
}  // namespace ltri
