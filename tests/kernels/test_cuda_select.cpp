// Retrieval's choice on the GPU (cuda_select.cu) against the host's: select_by_budget_device
// against select_by_budget (kv/retrieval.cpp) on the same ranks, ties and unit lengths (the
// same units, exactly); the vote ops against their definition; and LtriPolicy choosing on the
// GPU against the same policy choosing on the host (LTRI_HOST_CHOICE=1) from the same GPU
// scores (and InfLLM likewise): the same retrieved units in every layer and chunk, and the
// same pinned spans. Every test skips when no GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "core/error.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kv/context_store.hpp"
#include "kv/ltri_policy.hpp"
#include "kv/policy_factory.hpp"
#include "kv/retrieval.hpp"
#include "kv/unit_index_mirror.hpp"

namespace ltri {
namespace {

constexpr int64_t kFirstToken = 16;

// A store of n units (one index vector each, head_dim 2, one KV head) with lengths drawn by
// `length`: the choice reads only the units' token ranges.
ContextStore make_store(int64_t n, std::mt19937& rng, int64_t max_length) {
  ContextStore s(1, 2, kFirstToken);
  std::vector<float> kv, vec(2, 0.5f);
  for (int64_t u = 0; u < n; ++u) {
    // Mostly short units (as spans of random weights are), now and then a long one.
    const int64_t len = rng() % 8 == 0 ? 1 + int64_t(rng() % uint32_t(max_length)) : 1 + int64_t(rng() % 6);
    kv.assign(size_t(len * 2), 0.0f);
    s.add_unit(kv.data(), kv.data(), len, vec.data(), 1);
  }
  return s;
}

// Ranks with many exact ties (a few levels, many zeros: as votes are) or all distinct.
std::vector<float> make_ranks(int64_t n, std::mt19937& rng, bool ties) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> r(static_cast<size_t>(n));
  for (float& x : r) {
    if (!ties) {
      x = normal(rng);
    } else {
      const uint32_t k = rng() % 10;
      x = k < 6 ? 0.0f : float(k) * 0.25f;
      if (k == 6) x = -0.0f;  // the host ranks -0 with +0
    }
  }
  return r;
}

// A unit list the device wrote (count, ids), as sorted unit ids.
std::vector<int64_t> download_picked(CudaBackend& gpu, const BackendBuffer& picked, int64_t budget) {
  std::vector<int32_t> list(size_t(1 + budget));
  gpu.download(reinterpret_cast<float*>(list.data()), picked.data(), list.size());
  EXPECT_GE(list[0], 0);
  EXPECT_LE(list[0], budget);
  std::vector<int64_t> out(list.begin() + 1, list.begin() + 1 + std::clamp<int32_t>(list[0], 0, int32_t(budget)));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> device_pick(CudaBackend& gpu, UnitIndexMirror& mirror, const std::vector<float>& rank,
                                 const std::vector<float>* tie, int64_t budget, int64_t shortest) {
  const BackendBuffer r = test::to_device(gpu, rank);
  BackendBuffer t;
  if (tie) t = test::to_device(gpu, *tie);
  BackendBuffer picked(gpu, size_t(1 + budget));
  gpu.select_by_budget_device(mirror, r.data(), tie ? t.data() : nullptr, false, budget, shortest,
                              reinterpret_cast<int32_t*>(picked.data()));
  return download_picked(gpu, picked, budget);
}

TEST(CudaSelect, picks_the_host_units_on_ties_long_units_and_every_store_size) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  uint32_t seed = 1;
  for (const int64_t n : {1, 5, 300, 5000, 70000, 260000}) {
    std::mt19937 rng(seed++);
    const ContextStore s = make_store(n, rng, 256);
    UnitIndexMirror mirror;
    mirror.sync(gpu, s, {});
    ASSERT_EQ(mirror.n_units(), n);
    const int64_t shortest = s.unit_summary().shortest;
    for (const bool ties : {false, true}) {
      for (const bool with_tie : {false, true}) {
        const std::vector<float> rank = make_ranks(n, rng, ties);
        const std::vector<float> tie = make_ranks(n, rng, true);  // ties among ties go to the earlier unit
        for (const int64_t budget : {0, 1, 7, 64, 2048, 8192}) {
          std::vector<int64_t> want, order;
          select_by_budget(s.units(), rank, with_tie ? &tie : nullptr, nullptr, budget, want, order, &s.unit_summary());
          const std::vector<int64_t> got = device_pick(gpu, mirror, rank, with_tie ? &tie : nullptr, budget, shortest);
          ASSERT_EQ(got, want) << n << " units, budget " << budget << (ties ? ", tied ranks" : "")
                               << (with_tie ? ", tie scores" : "");
        }
      }
    }
  }
}

// A budget the first units cannot fill: the walk goes on past many long units to the short
// ones further down (the host's walk past its prefix).
TEST(CudaSelect, walks_past_long_units_to_fill_the_last_tokens) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  ContextStore s(1, 2, kFirstToken);
  std::vector<float> kv(2 * 256, 0.0f), vec(2, 0.5f);
  // 3000 units of 200 tokens ranking first, then 3000 of 3 tokens, then one of 1 token.
  for (int64_t u = 0; u < 6001; ++u) {
    const int64_t len = u < 3000 ? 200 : u < 6000 ? 3 : 1;
    s.add_unit(kv.data(), kv.data(), len, vec.data(), 1);
  }
  std::vector<float> rank(static_cast<size_t>(6001));
  for (int64_t u = 0; u < 6001; ++u) rank[size_t(u)] = float(6001 - u);
  UnitIndexMirror mirror;
  mirror.sync(gpu, s, {});
  for (const int64_t budget : {1000, 1001, 1003, 20000}) {
    std::vector<int64_t> want, order;
    select_by_budget(s.units(), rank, nullptr, nullptr, budget, want, order, &s.unit_summary());
    EXPECT_EQ(device_pick(gpu, mirror, rank, nullptr, budget, 1), want) << "budget " << budget;
  }
}

// Every unit ranking the same (and tying the same): no count of the keys tells them apart, and
// the pick order is the units' order; and keys crowded into one bin of the first counts.
TEST(CudaSelect, picks_the_earliest_units_when_every_key_is_equal_or_crowded) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  std::mt19937 rng(9);
  const int64_t n = 12000;
  const ContextStore s = make_store(n, rng, 40);
  UnitIndexMirror mirror;
  mirror.sync(gpu, s, {});
  const std::vector<float> same(static_cast<size_t>(n), 0.5f);
  std::vector<float> crowded(static_cast<size_t>(n));
  for (int64_t u = 0; u < n; ++u) crowded[size_t(u)] = 1.0f + float(rng() % 5000) * 1e-7f;  // one binade, few bits
  for (const std::vector<float>* rank : {&same, static_cast<const std::vector<float>*>(&crowded)}) {
    for (const bool with_tie : {false, true}) {
      for (const int64_t budget : {7, 2048, 30000}) {
        std::vector<int64_t> want, order;
        select_by_budget(s.units(), *rank, with_tie ? &same : nullptr, nullptr, budget, want, order, &s.unit_summary());
        EXPECT_EQ(device_pick(gpu, mirror, *rank, with_tie ? &same : nullptr, budget, s.unit_summary().shortest), want)
            << (rank == &same ? "equal" : "crowded") << " ranks, budget " << budget << (with_tie ? ", equal ties" : "");
      }
    }
  }
}

// The ltri policy's pair of choices: its own scores first (no tie), then the voted ranks with
// those scores as tie, reusing the first choice's order (tie_is_last_rank): the host's pick.
TEST(CudaSelect, a_choice_tied_by_the_last_rank_picks_the_host_units) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  uint32_t seed = 21;
  for (const int64_t n : {1, 300, 5000, 70000}) {
    std::mt19937 rng(seed++);
    const ContextStore s = make_store(n, rng, 256);
    UnitIndexMirror mirror;
    mirror.sync(gpu, s, {});
    const int64_t shortest = s.unit_summary().shortest;
    for (const bool tied_scores : {false, true}) {
      const std::vector<float> scores = make_ranks(n, rng, tied_scores);
      const std::vector<float> voted = make_ranks(n, rng, true);
      const BackendBuffer scores_dev = test::to_device(gpu, scores);
      const BackendBuffer voted_dev = test::to_device(gpu, voted);
      for (const int64_t budget : {1, 64, 2048, 8192}) {
        BackendBuffer first(gpu, size_t(1 + budget)), second(gpu, size_t(1 + budget));
        gpu.select_by_budget_device(mirror, scores_dev.data(), nullptr, false, budget, shortest,
                                    reinterpret_cast<int32_t*>(first.data()));
        gpu.select_by_budget_device(mirror, voted_dev.data(), scores_dev.data(), true, budget, shortest,
                                    reinterpret_cast<int32_t*>(second.data()));
        const std::vector<int64_t> got = download_picked(gpu, second, budget);
        std::vector<int64_t> want, order;
        select_by_budget(s.units(), voted, &scores, nullptr, budget, want, order, &s.unit_summary());
        ASSERT_EQ(got, want) << n << " units, budget " << budget << (tied_scores ? ", tied scores" : "");
      }
    }
  }
  // Claiming the last rank as tie when it was not: an error, not a wrong order.
  std::mt19937 rng(3);
  const ContextStore s = make_store(100, rng, 8);
  UnitIndexMirror mirror;
  mirror.sync(gpu, s, {});
  const BackendBuffer a = test::to_device(gpu, make_ranks(100, rng, false));
  const BackendBuffer b = test::to_device(gpu, make_ranks(100, rng, false));
  BackendBuffer picked(gpu, 65);
  auto* list = reinterpret_cast<int32_t*>(picked.data());
  gpu.select_by_budget_device(mirror, a.data(), nullptr, false, 64, 1, list);
  EXPECT_THROW(gpu.select_by_budget_device(mirror, a.data(), b.data(), true, 64, 1, list), Error);
  gpu.select_by_budget_device(mirror, b.data(), a.data(), false, 64, 1, list);  // had a tie
  EXPECT_THROW(gpu.select_by_budget_device(mirror, a.data(), b.data(), true, 64, 1, list), Error);
}

// unit_votes_device and cast_votes_device against their definition (LtriPolicy's host votes):
// a unit's rank is its tokens' mean vote summed in double, plus the weight if it is listed.
TEST(CudaSelect, votes_are_cast_per_token_and_summed_per_unit_as_defined) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  std::mt19937 rng(5);
  const int64_t n = 20000;
  const ContextStore s = make_store(n, rng, 64);
  UnitIndexMirror mirror;
  mirror.sync(gpu, s, {});
  const int64_t n_votes = s.end_token() - kFirstToken;
  std::vector<float> votes(size_t(n_votes), 0.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (float& v : votes) v = rng() % 3 == 0 ? uniform(rng) : 0.0f;
  BackendBuffer token_votes = test::to_device(gpu, votes);

  // Two lists of units: one casts votes, one gets the weight added to its ranks.
  std::vector<int32_t> list{0};
  for (int64_t u = 0; u < n; u += 1 + int64_t(rng() % 50)) list.push_back(int32_t(u));
  list[0] = int32_t(list.size() - 1);
  const int64_t capacity = int64_t(list.size()) + 10;  // room beyond the count is never read
  list.resize(size_t(1 + capacity), -1);
  BackendBuffer list_dev(gpu, list.size());
  gpu.upload(list_dev.data(), reinterpret_cast<const float*>(list.data()), list.size());
  const float weight = 0.37f;

  gpu.cast_votes_device(mirror, reinterpret_cast<const int32_t*>(list_dev.data()), capacity, weight,
                        token_votes.data(), kFirstToken);
  BackendBuffer rank(gpu, size_t(n));
  gpu.unit_votes_device(mirror, token_votes.data(), n_votes, kFirstToken,
                        reinterpret_cast<const int32_t*>(list_dev.data()), capacity, weight, rank.data());
  std::vector<float> got_votes(static_cast<size_t>(n_votes));
  std::vector<float> got_rank(static_cast<size_t>(n));
  gpu.download(got_votes.data(), token_votes.data(), got_votes.size());
  gpu.download(got_rank.data(), rank.data(), got_rank.size());

  std::vector<uint8_t> listed(size_t(n), 0);
  for (int32_t i = 1; i <= list[0]; ++i) listed[size_t(list[size_t(i)])] = 1;
  for (int64_t u = 0; u < n; ++u) {
    const StoredUnit& unit = s.units()[size_t(u)];
    const int64_t from = unit.first_token - kFirstToken;
    if (listed[size_t(u)]) {
      for (int64_t t = from; t < from + unit.length; ++t) votes[size_t(t)] += weight;
    }
  }
  ASSERT_EQ(got_votes, votes);
  for (int64_t u = 0; u < n; ++u) {
    const StoredUnit& unit = s.units()[size_t(u)];
    double sum = 0.0;
    for (int64_t t = unit.first_token - kFirstToken; t < unit.first_token - kFirstToken + unit.length; ++t) {
      sum += votes[size_t(t)];
    }
    float want = float(sum / double(unit.length));
    if (listed[size_t(u)]) want += weight;
    ASSERT_EQ(got_rank[size_t(u)], want) << "unit " << u;
  }
}

// The same policy, the same stream, the same GPU scores: choosing on the GPU must load exactly
// the units the host's choice loads, in every layer and chunk, and (ltri) pin the same spans.
TEST(CudaSelect, policies_choosing_on_the_gpu_load_the_units_the_host_choice_loads) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  ModelConfig c;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.hidden_size = 4 * 64;
  c.max_position_embeddings = 1 << 16;
  struct Case {
    const char* policy;
    const char* query;
    int64_t question_tokens;
  };
  for (const Case& k : {Case{"ltri", "mean", 0}, Case{"ltri", "max", 0}, Case{"ltri", "max", 64},
                        Case{"infllm", "mean", 0}}) {
    AttentionOptions o;
    o.policy = k.policy;
    o.n_init = 8;
    o.n_local = 256;
    o.budget = 96;
    o.span_max = 32;
    o.block_size = 16;
    o.retrieval_query = k.query;
    o.question_tokens = k.question_tokens;
    o.question_chunk = false;
    const std::string label = std::string(k.policy) + ", " + k.query + " query, question_tokens " +
                              std::to_string(k.question_tokens);
    const int64_t chunk = 64;
    unsetenv("LTRI_HOST_CHOICE");
    std::unique_ptr<KvPolicy> on_gpu = make_kv_policy(o, {gpu, c, 1 << 16, chunk, ""});
    setenv("LTRI_HOST_CHOICE", "1", 1);
    std::unique_ptr<KvPolicy> on_host = make_kv_policy(o, {gpu, c, 1 << 16, chunk, ""});
    unsetenv("LTRI_HOST_CHOICE");
    const auto& a = dynamic_cast<const StreamingPolicyBase&>(*on_gpu);
    const auto& b = dynamic_cast<const StreamingPolicyBase&>(*on_host);
    ASSERT_TRUE(a.device_choice()) << label;
    ASSERT_FALSE(b.device_choice()) << label;

    const int64_t q_row = c.num_attention_heads * c.head_dim, kv_row = c.num_key_value_heads * c.head_dim;
    BackendBuffer q(gpu, size_t(chunk * q_row)), kb(gpu, size_t(chunk * kv_row)), vb(gpu, size_t(chunk * kv_row));
    int64_t loads = 0;
    for (int64_t step = 0; step < 40; ++step) {
      on_gpu->begin_chunk(chunk);
      on_host->begin_chunk(chunk);
      for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const uint32_t seed = uint32_t(1000 * step + l);
        gpu.upload(q.data(), test::randn(size_t(chunk * q_row), seed).data(), size_t(chunk * q_row));
        gpu.upload(kb.data(), test::randn(size_t(chunk * kv_row), seed + 500).data(), size_t(chunk * kv_row));
        gpu.upload(vb.data(), test::randn(size_t(chunk * kv_row), seed + 700).data(), size_t(chunk * kv_row));
        on_gpu->plan(l, q.data(), kb.data(), vb.data(), chunk);
        on_host->plan(l, q.data(), kb.data(), vb.data(), chunk);
        ASSERT_EQ(a.retrieved(l).units(), b.retrieved(l).units()) << label << ", chunk " << step << ", layer " << l;
        loads += a.retrieved(l).units().empty() ? 0 : 1;
      }
      on_gpu->end_chunk(chunk);
      on_host->end_chunk(chunk);
    }
    EXPECT_GT(loads, 60) << label;  // most layer-chunks retrieved something
    on_gpu->end_prompt();
    on_host->end_prompt();
    if (const auto* la = dynamic_cast<const LtriPolicy*>(&a)) {
      const auto& lb = dynamic_cast<const LtriPolicy&>(b);
      for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        EXPECT_FALSE(la->persistent_units(l).empty()) << label;
        EXPECT_EQ(la->persistent_units(l), lb.persistent_units(l)) << label << ", layer " << l;
      }
    }
  }
}

}  // namespace
}  // namespace ltri
