// Retrieval scoring and selection against direct definitions: unit scores (mean query and
// per-query max), the budget rule, a planted needle unit ranking first, and the retrieved KV
// copied to the backend in store order, one copy per run of neighbouring units.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>

#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"
#include "kv/retrieval.hpp"
#include "kv/retrieved_kv.hpp"

namespace ltri {
namespace {

constexpr int64_t kKv = 2, kHd = 8, kHeads = 4;

// A store of units with 1..5 index vectors each, random keys.
ContextStore random_store(int64_t n_units, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ContextStore s(kKv, kHd, 0);
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t len = 3 + int64_t(rng() % 10), m = 1 + int64_t(rng() % 5);
    std::vector<float> k(size_t(len * kKv * kHd)), v(k.size()), vec(size_t(kKv * m * kHd));
    for (float& x : k) x = normal(rng);
    for (float& x : vec) x = normal(rng);
    s.add_unit(k.data(), v.data(), len, vec.data(), m);
  }
  return s;
}

// Direct definition: sum_h w_h max over queries i and u's vectors k of <q_ih, k>.
std::vector<double> reference_scores(const ContextStore& s, const std::vector<float>& q, int64_t n,
                                     const std::vector<float>& w) {
  std::vector<double> out;
  for (const StoredUnit& u : s.units()) {
    double total = 0.0;
    for (int64_t h = 0; h < kHeads; ++h) {
      double best = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t k = 0; k < u.n_vectors; ++k) {
          const float* vec = s.index_vector(h / (kHeads / kKv), u.first_vector + k);
          double dot = 0.0;
          for (int64_t c = 0; c < kHd; ++c) dot += double(q[size_t((i * kHeads + h) * kHd + c)]) * vec[c];
          best = std::max(best, dot);
        }
      }
      total += w[size_t(h)] * best;
    }
    out.push_back(total);
  }
  return out;
}

TEST(Retrieval, unit_scores_match_their_definition) {
  const ContextStore s = random_store(300, 1);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 37;
  std::vector<float> q(size_t(n * kHeads * kHd));
  for (float& x : q) x = normal(rng);
  std::vector<float> scores, dots, best;
  for (const std::vector<float>& w : {std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f}, std::vector<float>{0, 0, 1, 0}}) {
    score_units_per_query(s, q.data(), n, w, scores, dots, best);
    const auto ref = reference_scores(s, q, n, w);
    for (size_t u = 0; u < ref.size(); ++u) ASSERT_NEAR(scores[u], ref[u], 1e-4) << "unit " << u;
    // One query row: the mean-query scorer on that row must agree.
    score_units(s, q.data(), w, scores, dots);
    const auto one = reference_scores(s, q, 1, w);
    for (size_t u = 0; u < one.size(); ++u) ASSERT_NEAR(scores[u], one[u], 1e-4) << "unit " << u;
  }
}

TEST(Retrieval, budget_takes_units_by_rank_and_skips_those_that_do_not_fit) {
  ContextStore s(1, 2, 10);
  const std::vector<int64_t> lengths = {5, 8, 3, 6, 2};
  for (int64_t len : lengths) {
    std::vector<float> kv(size_t(len * 2)), vec(2);
    s.add_unit(kv.data(), kv.data(), len, vec.data(), 1);
  }
  const std::vector<float> rank = {0.5f, 0.9f, 0.1f, 0.8f, 0.7f};
  std::vector<int64_t> picked, order;
  // By rank: unit 1 (8), unit 3 (6) does not fit in 12, unit 4 (2), unit 0 (5) does not fit,
  // unit 2 (3) does not fit (8 + 2 + 3 = 13).
  EXPECT_EQ(select_by_budget(s.units(), rank, nullptr, nullptr, 12, picked, order), 10);
  EXPECT_EQ(picked, (std::vector<int64_t>{1, 4}));
  const std::vector<uint8_t> skip = {0, 1, 0, 0, 0};
  EXPECT_EQ(select_by_budget(s.units(), rank, nullptr, &skip, 12, picked, order), 11);
  EXPECT_EQ(picked, (std::vector<int64_t>{2, 3, 4}));  // store order
  const std::vector<float> flat(5, 1.0f), tie = {0, 0, 0, 1, 2};
  select_by_budget(s.units(), flat, &tie, nullptr, 8, picked, order);
  EXPECT_EQ(picked, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(s.units()[3].first_token, 10 + 5 + 8 + 3);
}

// The budget rule the plain way: sort every candidate (rank, then tie, descending, then the
// earlier unit), walk the whole list and take each unit that still fits.
int64_t reference_select(const std::vector<StoredUnit>& units, const std::vector<float>& rank,
                         const std::vector<float>* tie, const std::vector<uint8_t>* skip, int64_t budget,
                         std::vector<int64_t>& picked) {
  std::vector<int64_t> all;
  for (size_t u = 0; u < std::min(units.size(), rank.size()); ++u) {
    if (!(skip && u < skip->size() && (*skip)[u])) all.push_back(int64_t(u));
  }
  std::stable_sort(all.begin(), all.end(), [&](int64_t a, int64_t b) {
    if (rank[size_t(a)] != rank[size_t(b)]) return rank[size_t(a)] > rank[size_t(b)];
    if (tie) return (*tie)[size_t(a)] > (*tie)[size_t(b)];
    return false;  // stable: the earlier unit first
  });
  picked.clear();
  int64_t taken = 0;
  for (int64_t u : all) {
    if (taken + units[size_t(u)].length <= budget) {
      picked.push_back(u);
      taken += units[size_t(u)].length;
    }
  }
  std::sort(picked.begin(), picked.end());
  return taken;
}

// What ContextStore::unit_summary() keeps, worked out from the units.
UnitSummary summary_of(const std::vector<StoredUnit>& units) {
  UnitSummary s;
  for (const StoredUnit& u : units) {
    s.count += 1;
    s.tokens += u.length;
    s.shortest = std::min(s.shortest, u.length);
  }
  return s;
}

// select_by_budget with the units' summary (the policies' call) picks what it picks without.
void expect_same_with_summary(const std::vector<StoredUnit>& units, const std::vector<float>& rank,
                              const std::vector<float>* tie, const std::vector<uint8_t>* skip, int64_t budget,
                              const std::vector<int64_t>& picked, int64_t taken) {
  std::vector<int64_t> with, order;
  const UnitSummary all = summary_of(units);
  EXPECT_EQ(select_by_budget(units, rank, tie, skip, budget, with, order, &all), taken);
  EXPECT_EQ(with, picked);
}

TEST(Retrieval, the_store_keeps_its_units_summary_and_forgets_it_on_reset) {
  ContextStore s = random_store(300, 5);
  const UnitSummary want = summary_of(s.units());
  EXPECT_EQ(s.unit_summary().count, 300);
  EXPECT_EQ(s.unit_summary().tokens, want.tokens);
  EXPECT_EQ(s.unit_summary().shortest, want.shortest);
  EXPECT_EQ(s.unit_summary().tokens, s.end_token());  // the units cover the stored tokens
  s.reset(0);
  EXPECT_EQ(s.unit_summary().count, 0);
  EXPECT_EQ(s.unit_summary().tokens, 0);
  EXPECT_EQ(s.unit_summary().shortest, std::numeric_limits<int64_t>::max());
}

TEST(Retrieval, budget_selection_matches_sorting_every_unit) {
  std::mt19937 rng(11);
  std::vector<int64_t> picked, want, order;
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t n_units = rng() % 80;
    std::vector<StoredUnit> units(n_units);
    // Lengths 1..48 against budgets 0..160: many units do not fit once a few are taken, some
    // never fit; in a third of the trials all units but a few are long.
    const bool mostly_long = trial % 3 == 0;
    for (StoredUnit& u : units) u.length = mostly_long && rng() % 8 != 0 ? 30 + int64_t(rng() % 200) : 1 + int64_t(rng() % 48);
    // Few distinct ranks and ties: equal ranks are common, equal (rank, tie) too.
    const int levels = 1 + int(rng() % 6);
    std::vector<float> rank(n_units), tie(n_units);
    for (float& r : rank) r = float(int(rng() % uint32_t(levels))) * 0.5f;
    for (float& t : tie) t = float(int(rng() % 3));
    if (n_units > 0 && rng() % 5 == 0) rank.pop_back();  // fewer ranks than units: the rest are not candidates
    std::vector<uint8_t> skip(rng() % (n_units + 1));    // may be shorter than the units
    for (uint8_t& s : skip) s = rng() % 3 == 0;
    const bool use_tie = rng() % 2 == 0, use_skip = rng() % 2 == 0;
    const int64_t budget = int64_t(rng() % 161);
    const int64_t taken = select_by_budget(units, rank, use_tie ? &tie : nullptr, use_skip ? &skip : nullptr, budget,
                                           picked, order);
    const int64_t want_taken =
        reference_select(units, rank, use_tie ? &tie : nullptr, use_skip ? &skip : nullptr, budget, want);
    ASSERT_EQ(picked, want) << "trial " << trial;
    ASSERT_EQ(taken, want_taken) << "trial " << trial;
    expect_same_with_summary(units, rank, use_tie ? &tie : nullptr, use_skip ? &skip : nullptr, budget, picked, taken);
  }
}

// Past a few thousand candidates select_by_budget walks a prefix of the pick order found by
// thresholds (rank, then tie, then unit order) instead of a heap of every unit, and walks
// everything again when the prefix runs out: the picks must be those of sorting every unit,
// whether ranks are spread (scores), mostly equal (votes: most units 0, ties deciding), all
// equal without a tie (unit order decides), or the walk outruns the prefix or ends deep in it
// (most units too long for the budget, with spread or with mostly equal ranks; a few units of
// 1-3 tokens, which keep a walk going to fill the budget's last tokens).
TEST(Retrieval, budget_selection_over_many_units_matches_sorting_every_unit) {
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<int64_t> picked, want, order;
  for (int trial = 0; trial < 100; ++trial) {
    SCOPED_TRACE(trial);
    const size_t n_units = 3000 + rng() % 30000;
    const int kind = trial % 5;  // 0 spread, 1 votes, 2 all equal, 3 mostly too long, 4 votes and mostly too long
    std::vector<StoredUnit> units(n_units);
    for (StoredUnit& u : units) {
      const bool too_long = (kind == 3 && rng() % 64 != 0) || (kind == 4 && rng() % 3 == 0);
      u.length = too_long ? 3000 + int64_t(rng() % 100) : 4 + int64_t(rng() % 12);
      if (rng() % 500 == 0) u.length = 1 + int64_t(rng() % 3);  // a few short units: the walk goes on for them
    }
    std::vector<float> rank(n_units, 0.0f), tie(n_units);
    for (float& t : tie) t = rng() % 4 == 0 ? 0.5f : normal(rng);  // some ties tie exactly
    if (kind == 0 || kind == 3) {
      for (float& r : rank) r = rng() % 8 == 0 ? 1.0f : normal(rng);
    } else if (kind == 1 || kind == 4) {
      for (int i = 0; i < 400; ++i) rank[rng() % n_units] = float(1 + rng() % 20);
    }
    std::vector<uint8_t> skip(n_units);
    for (uint8_t& s : skip) s = rng() % 10 == 0;
    const bool use_tie = kind == 4 || (kind != 2 && rng() % 4 != 0), use_skip = rng() % 2 == 0;
    const int64_t budget = int64_t(1 + rng() % 4096);
    const int64_t taken = select_by_budget(units, rank, use_tie ? &tie : nullptr, use_skip ? &skip : nullptr, budget,
                                           picked, order);
    const int64_t want_taken =
        reference_select(units, rank, use_tie ? &tie : nullptr, use_skip ? &skip : nullptr, budget, want);
    ASSERT_EQ(picked, want) << "kind " << kind << " units " << n_units << " budget " << budget;
    ASSERT_EQ(taken, want_taken);
    expect_same_with_summary(units, rank, use_tie ? &tie : nullptr, use_skip ? &skip : nullptr, budget, picked, taken);
    ASSERT_GT(picked.size(), 0u);
  }
}

TEST(Retrieval, a_planted_needle_unit_ranks_first) {
  ContextStore s = random_store(200, 3);
  // Unit 200: one of its three vectors is the needle direction, scaled.
  std::vector<float> kv(size_t(6 * kKv * kHd)), vec(size_t(kKv * 3 * kHd), 0.1f);
  for (int64_t g = 0; g < kKv; ++g) vec[size_t((g * 3 + 1) * kHd + 5)] = 6.0f;
  s.add_unit(kv.data(), kv.data(), 6, vec.data(), 3);
  std::vector<float> q(size_t(kHeads * kHd), 0.0f);
  for (int64_t h = 0; h < kHeads; ++h) q[size_t(h * kHd + 5)] = 2.0f;
  std::vector<float> scores, dots;
  score_units(s, q.data(), std::vector<float>(kHeads, 0.25f), scores, dots);
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), 200);
}

// The CPU backend, counting uploads.
class CountingBackend : public CpuBackend {
 public:
  CountingBackend() : CpuBackend(1) {}
  void upload(float* dst, const float* host_src, size_t n) override {
    ++uploads;
    CpuBackend::upload(dst, host_src, n);
  }
  int uploads = 0;
};

TEST(Retrieval, retrieved_kv_is_the_picked_units_in_order_with_one_copy_per_run) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t row = kKv * kHd;
  ContextStore s(kKv, kHd, 10);
  for (int64_t u = 0; u < 8; ++u) {
    const int64_t len = 2 + u % 3;
    std::vector<float> k(size_t(len * row)), v(k.size()), vec(k.size());
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    s.add_unit(k.data(), v.data(), len, vec.data(), 1);
  }
  CountingBackend backend;
  RetrievedKv r(backend, row, 64);
  const std::vector<int64_t> picked = {0, 1, 2, 4, 6, 7};  // runs {0, 1, 2}, {4}, {6, 7}
  r.load(s, picked);
  EXPECT_EQ(backend.uploads, 2 * 3);  // K and V per run
  std::vector<float> want_k, want_v;
  for (int64_t u : picked) {
    const StoredUnit& unit = s.units()[size_t(u)];
    want_k.insert(want_k.end(), s.k(unit.first_token), s.k(unit.first_token) + unit.length * row);
    want_v.insert(want_v.end(), s.v(unit.first_token), s.v(unit.first_token) + unit.length * row);
  }
  ASSERT_EQ(r.n_tokens() * row, int64_t(want_k.size()));
  EXPECT_EQ(std::vector<float>(r.k(), r.k() + want_k.size()), want_k);
  EXPECT_EQ(std::vector<float>(r.v(), r.v() + want_v.size()), want_v);
  EXPECT_EQ(r.bytes_uploaded(), int64_t(2 * want_k.size() * sizeof(float)));

  r.load(s, picked);  // the same set again: nothing copied
  EXPECT_EQ(backend.uploads, 6);
  r.load(s, {3, 5});  // two runs of one unit each
  EXPECT_EQ(backend.uploads, 6 + 4);
  EXPECT_EQ(r.n_tokens(), s.units()[3].length + s.units()[5].length);
}

}  // namespace
}  // namespace ltri
