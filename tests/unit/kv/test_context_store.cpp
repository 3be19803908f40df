// ContextStore's slabs: every token's K/V row is what was added, whatever slab boundaries its
// unit crosses; rows never move once stored; contiguous_tokens says how far a row run goes in
// one piece; slabs double in size up to the cap; memory comes from the backend's alloc_host in
// whole slabs and goes back on destruction; reset keeps the slabs for reuse; a bf16 store holds
// each value rounded to nearest even in half the memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"

namespace ltri {
namespace {

constexpr int64_t kKv = 2, kHd = 4, kRow = kKv * kHd;

// The CPU backend, counting host allocations (made on the stores' background threads too, so
// the counts are locked; read them once no allocation can be in flight, or through counts()).
// Slabs and index blocks both come from alloc_host: an allocation of exactly
// index_block_floats (a default f32 index block, larger than any slab of these tests) counts
// as an index block, every other one as a slab.
class HostCountingBackend : public CpuBackend {
 public:
  HostCountingBackend() : CpuBackend(1) {}
  float* alloc_host(size_t n_floats) override {
    float* p = CpuBackend::alloc_host(n_floats);
    const std::lock_guard<std::mutex> lock(mutex_);
    if (n_floats == index_block_floats) {
      ++index_allocs;
      index_blocks_.push_back(p);
      return p;
    }
    ++allocs;
    floats_held += n_floats;
    sizes.push_back(n_floats);
    return p;
  }
  void free_host(float* p) override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto block = std::find(index_blocks_.begin(), index_blocks_.end(), p);
      if (block != index_blocks_.end()) {
        index_blocks_.erase(block);
        ++index_frees;
      } else {
        ++frees;
      }
    }
    CpuBackend::free_host(p);
  }
  std::pair<int, int> counts() const {  // slabs allocated, freed
    const std::lock_guard<std::mutex> lock(mutex_);
    return {allocs, frees};
  }
  int allocs = 0, frees = 0;
  size_t floats_held = 0;
  std::vector<size_t> sizes;
  size_t index_block_floats = size_t(kKv * ContextStore::kIndexBlockVectors * kHd);
  int index_allocs = 0, index_frees = 0;

 private:
  mutable std::mutex mutex_;
  std::vector<float*> index_blocks_;  // held now
};

// The slabs a store of first/max slab tokens needs for n tokens: (store offset of the first
// token, tokens), each twice the one before up to max_slab.
std::vector<std::pair<int64_t, int64_t>> expected_slabs(int64_t first_slab, int64_t max_slab, int64_t n_tokens) {
  std::vector<std::pair<int64_t, int64_t>> slabs;
  for (int64_t begin = 0, size = first_slab; begin < n_tokens; begin += size, size = std::min(2 * size, max_slab)) {
    slabs.push_back({begin, size});
  }
  return slabs;
}

// Adds units of random lengths (1 .. 3 first slabs' worth, so some span several boundaries) to the
// store and the same rows to flat reference arrays.
void add_random_units(ContextStore& s, int64_t n_units, std::mt19937& rng, std::vector<float>& ref_k,
                      std::vector<float>& ref_v) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> length_of(1, 3 * s.first_slab_tokens());
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t len = length_of(rng);
    std::vector<float> k(size_t(len * kRow)), v(k.size()), vec(size_t(kKv * kHd));
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    s.add_unit(k.data(), v.data(), len, vec.data(), 1);
    ref_k.insert(ref_k.end(), k.begin(), k.end());
    ref_v.insert(ref_v.end(), v.begin(), v.end());
  }
}

void expect_rows_equal(const ContextStore& s, const std::vector<float>& ref_k, const std::vector<float>& ref_v) {
  ASSERT_EQ(s.n_tokens() * kRow, int64_t(ref_k.size()));
  for (int64_t i = 0; i < s.n_tokens(); ++i) {
    const int64_t t = s.first_token() + i;
    const auto want_k = ref_k.begin() + i * kRow, want_v = ref_v.begin() + i * kRow;
    ASSERT_EQ(std::vector<float>(s.k(t), s.k(t) + kRow), std::vector<float>(want_k, want_k + kRow)) << "token " << t;
    ASSERT_EQ(std::vector<float>(s.v(t), s.v(t) + kRow), std::vector<float>(want_v, want_v + kRow)) << "token " << t;
  }
}

TEST(ContextStore, rows_of_every_token_are_what_was_added_across_slab_boundaries) {
  // Fixed slabs of 7, slabs doubling from 7 to a cap of 28, doubling without reaching the cap.
  for (int64_t max_slab : {7, 28, 1 << 20}) {
    SCOPED_TRACE(max_slab);
    std::mt19937 rng(11);
    HostCountingBackend backend;
    ContextStore s(kKv, kHd, 5, &backend, DType::F32, 7, max_slab);
    std::vector<float> ref_k, ref_v;
    add_random_units(s, 40, rng, ref_k, ref_v);
    EXPECT_GT(s.n_tokens(), 10 * 7);
    expect_rows_equal(s, ref_k, ref_v);
    // The units still partition the tokens in order.
    int64_t next = 5;
    for (const StoredUnit& u : s.units()) {
      EXPECT_EQ(u.first_token, next);
      next += u.length;
    }
    EXPECT_EQ(next, s.end_token());
  }
}

TEST(ContextStore, stored_rows_never_move_when_more_is_added) {
  std::mt19937 rng(12);
  ContextStore s(kKv, kHd, 0, nullptr, DType::F32, 16, 64);  // no backend: new[]/delete[]
  std::vector<float> ref_k, ref_v;
  add_random_units(s, 3, rng, ref_k, ref_v);
  std::vector<const float*> k_rows, v_rows;
  for (int64_t t = 0; t < s.n_tokens(); ++t) {
    k_rows.push_back(s.k(t));
    v_rows.push_back(s.v(t));
  }
  add_random_units(s, 50, rng, ref_k, ref_v);
  for (int64_t t = 0; t < int64_t(k_rows.size()); ++t) {
    EXPECT_EQ(s.k(t), k_rows[size_t(t)]) << "token " << t;
    EXPECT_EQ(s.v(t), v_rows[size_t(t)]) << "token " << t;
  }
  expect_rows_equal(s, ref_k, ref_v);
}

TEST(ContextStore, contiguous_tokens_are_one_piece_and_end_at_slab_boundaries_or_the_end) {
  for (int64_t max_slab : {6, 24}) {  // fixed slabs; slabs of 6, 12, 24, 24, ...
    SCOPED_TRACE(max_slab);
    std::mt19937 rng(13);
    const int64_t slab = 6, first = 3;
    ContextStore s(kKv, kHd, first, nullptr, DType::F32, slab, max_slab);
    std::vector<float> ref_k, ref_v;
    add_random_units(s, 30, rng, ref_k, ref_v);
    const auto slabs = expected_slabs(slab, max_slab, s.n_tokens());
    ASSERT_GT(slabs.size(), 4u);
    for (int64_t t = first; t < s.end_token(); ++t) {
      const int64_t run = s.contiguous_tokens(t);
      ASSERT_GE(run, 1);
      // The run ends at the end of the slab holding t, or at the end of the store.
      int64_t slab_end = 0;
      for (const auto& [begin, tokens] : slabs) {
        if (t - first >= begin && t - first < begin + tokens) slab_end = first + begin + tokens;
      }
      EXPECT_EQ(run, std::min(slab_end, s.end_token()) - t) << "token " << t;
      for (int64_t i = 0; i < run; ++i) {
        EXPECT_EQ(s.k(t + i), s.k(t) + i * kRow);
        EXPECT_EQ(s.v(t + i), s.v(t) + i * kRow);
      }
    }
    // Walking the store piece by piece visits every slab once.
    int64_t pieces = 0;
    for (int64_t t = first; t < s.end_token(); t += s.contiguous_tokens(t)) ++pieces;
    EXPECT_EQ(pieces, int64_t(slabs.size()));
  }
}

// Slab sizes (tokens) of a store of first/max slab tokens: the first n_slabs + 1, so the last
// is the one allocated ahead.
std::vector<int64_t> slab_sizes(int64_t first_slab, int64_t max_slab, size_t n_slabs) {
  std::vector<int64_t> sizes;
  for (int64_t size = first_slab; sizes.size() <= n_slabs; size = std::min(2 * size, max_slab)) sizes.push_back(size);
  return sizes;
}

TEST(ContextStore, memory_grows_in_doubling_slabs_from_the_backend_and_goes_back_to_it) {
  std::mt19937 rng(14);
  const int64_t first_slab = 8, max_slab = 32;
  HostCountingBackend backend;
  std::vector<int64_t> expected_sizes;
  {
    ContextStore s(kKv, kHd, 0, &backend, DType::F32, first_slab, max_slab);
    s.set_allocate_ahead(true);  // off by default; what this test is about
    EXPECT_EQ(backend.counts().first, 0);  // nothing before the first unit
    EXPECT_EQ(s.bytes(), 0u);
    std::vector<float> ref_k, ref_v;
    for (int step = 0; step < 30; ++step) {
      add_random_units(s, 1, rng, ref_k, ref_v);
      // Slabs of 8, 16, 32, 32, ... tokens, K and V rows of each, and the next one allocated
      // ahead once the store has filled half of the last.
      const auto slabs = expected_slabs(first_slab, max_slab, s.n_tokens());
      const auto [last_begin, last_tokens] = slabs.back();
      const bool ahead = s.n_tokens() >= last_begin + last_tokens / 2;
      const auto sizes = slab_sizes(first_slab, max_slab, slabs.size());
      size_t slab_floats = 0;
      for (size_t j = 0; j < slabs.size() + (ahead ? 1 : 0); ++j) slab_floats += size_t(2 * sizes[j] * kRow);
      // bytes() counts the slabs (the one ahead too), whole index blocks and the unit table.
      const int64_t blocks = (s.n_vectors() + s.index_block_vectors() - 1) / s.index_block_vectors();
      const size_t block_bytes = size_t(kKv * s.index_block_vectors() * kHd) * sizeof(float);
      ASSERT_EQ(s.bytes(), slab_floats * sizeof(float) + size_t(blocks) * block_bytes +
                               s.units().capacity() * sizeof(StoredUnit)) << "step " << step;
      // Every slab the store uses was allocated by now (waited for); the one ahead may not be.
      const int allocs = backend.counts().first;
      ASSERT_GE(allocs, int(slabs.size()));
      ASSERT_LE(allocs, int(slabs.size() + (ahead ? 1 : 0)));
      expected_sizes.assign(sizes.begin(), sizes.begin() + std::ptrdiff_t(slabs.size() + (ahead ? 1 : 0)));
    }
    EXPECT_GT(expected_sizes.size(), 4u);  // the cap was reached and passed
    EXPECT_EQ(backend.counts().second, 0);
    expect_rows_equal(s, ref_k, ref_v);
  }
  // The store waited for the slab in flight and gave every slab back, in the sizes expected.
  EXPECT_EQ(backend.frees, backend.allocs);
  ASSERT_EQ(backend.sizes.size(), expected_sizes.size());
  for (size_t j = 0; j < expected_sizes.size(); ++j) {
    EXPECT_EQ(backend.sizes[j], size_t(2 * expected_sizes[j] * kRow)) << "slab " << j;
  }
}

TEST(ContextStore, allocation_ahead_follows_the_environment_and_refuses_other_values) {
  EXPECT_FALSE(ContextStore::allocates_ahead()) << "off by default";
  ::setenv("LTRI_STORE_ALLOC_AHEAD", "1", 1);
  EXPECT_TRUE(ContextStore::allocates_ahead());
  ::setenv("LTRI_STORE_ALLOC_AHEAD", "yes", 1);
  try {
    ContextStore s(kKv, kHd, 0, nullptr, DType::F32, 8, 32);
    ADD_FAILURE() << "LTRI_STORE_ALLOC_AHEAD=yes accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "LTRI_STORE_ALLOC_AHEAD=yes: expected 0 or 1");
  }
  ::unsetenv("LTRI_STORE_ALLOC_AHEAD");
}

TEST(ContextStore, without_allocation_ahead_only_the_slabs_in_use_are_allocated) {
  std::mt19937 rng(16);
  HostCountingBackend backend;
  ContextStore s(kKv, kHd, 0, &backend, DType::F32, 8, 32);
  s.set_allocate_ahead(false);
  std::vector<float> ref_k, ref_v;
  for (int step = 0; step < 20; ++step) {
    add_random_units(s, 1, rng, ref_k, ref_v);
    ASSERT_EQ(backend.counts().first, int(expected_slabs(8, 32, s.n_tokens()).size())) << "step " << step;
  }
  expect_rows_equal(s, ref_k, ref_v);
}

// alloc_host slowed down, so the stores' slabs allocated ahead are (most likely) still in flight
// when the test resets, moves or destroys the store.
class SlowHostBackend : public HostCountingBackend {
 public:
  float* alloc_host(size_t n_floats) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    return HostCountingBackend::alloc_host(n_floats);
  }
  int delay_ms = 50;
};

TEST(ContextStore, a_slab_in_flight_is_freed_by_destruction_and_kept_by_reset) {
  std::vector<float> ref_k, ref_v;
  float next_value = 0.0f;  // every value different, so a misplaced row shows
  const auto add_tokens = [&](ContextStore& s, int64_t n) {
    std::vector<float> k(size_t(n * kRow)), v(k.size()), vec(size_t(kKv * kHd), 3.0f);
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = next_value++;
      v[i] = next_value++;
    }
    s.add_unit(k.data(), v.data(), n, vec.data(), 1);
    ref_k.insert(ref_k.end(), k.begin(), k.end());
    ref_v.insert(ref_v.end(), v.begin(), v.end());
  };
  SlowHostBackend backend;
  {
    // Destroyed right after the allocation ahead started: the destructor waits for it and frees it.
    ContextStore s(kKv, kHd, 0, &backend, DType::F32, 10, 40);
    s.set_allocate_ahead(true);  // off by default; what this test is about
    add_tokens(s, 6);  // slab 0 (10 tokens) more than half full: slab 1 (20 tokens) starts
    EXPECT_EQ(s.bytes(), (2 * 10 + 2 * 20) * kRow * sizeof(float) + size_t(s.index_block_vectors() * kRow) * sizeof(float) +
                             s.units().capacity() * sizeof(StoredUnit));
  }
  EXPECT_EQ(backend.counts(), std::make_pair(2, 2));

  // Moved while in flight, then reset: the slab in flight belongs to the moved-to store, which
  // keeps it across the reset and takes it when it needs a second slab (no new allocation).
  backend.allocs = backend.frees = 0;
  backend.sizes.clear();
  ContextStore first(kKv, kHd, 0, &backend, DType::F32, 10, 40);
  first.set_allocate_ahead(true);  // off by default; what this test is about
  add_tokens(first, 7);
  ContextStore s = std::move(first);
  s.reset(3);
  ref_k.clear();
  ref_v.clear();
  add_tokens(s, 9);
  add_tokens(s, 11);  // tokens 10..19 go into slab 1, the one allocated ahead before the reset
  expect_rows_equal(s, ref_k, ref_v);
  EXPECT_EQ(s.contiguous_tokens(3 + 10), 10);  // slab 1 holds 20 tokens, 10 of them stored
  // 20 tokens: slab 1 half full, slab 2 (40 tokens) ahead. Then into slab 2, slab 3 ahead.
  add_tokens(s, 30);
  expect_rows_equal(s, ref_k, ref_v);

  // A store assigned over while its allocation is in flight frees that allocation too.
  s = ContextStore(kKv, kHd, 0, &backend, DType::F32, 10, 40);
  EXPECT_EQ(backend.counts(), std::make_pair(4, 4));
  EXPECT_EQ(backend.sizes, (std::vector<size_t>{2 * 10 * kRow, 2 * 20 * kRow, 2 * 40 * kRow, 2 * 40 * kRow}));
}

// Several stores sharing one backend, each filled by a thread of its own, as the policies'
// worker threads fill their layers' stores: every row and index vector is what was added.
TEST(ContextStore, stores_filled_from_several_threads_at_once_hold_what_was_added) {
  HostCountingBackend backend;
  constexpr int kStores = 6;
  std::vector<ContextStore> stores;
  for (int i = 0; i < kStores; ++i) {
    stores.emplace_back(kKv, kHd, 0, &backend, DType::F32, 4, 64, ContextStore::kIndexBlockMultiple);
  }
  std::vector<std::vector<float>> ref_k(kStores), ref_v(kStores), ref_vectors(kStores);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(uint32_t(100 + i));
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (int u = 0; u < 400; ++u) {
        const int64_t len = 1 + int64_t(rng() % 9), m = 1 + int64_t(rng() % 8);
        std::vector<float> k(size_t(len * kRow)), v(k.size()), vec(size_t(kKv * m * kHd));
        for (float& x : k) x = normal(rng);
        for (float& x : v) x = normal(rng);
        for (float& x : vec) x = normal(rng);
        stores[size_t(i)].add_unit(k.data(), v.data(), len, vec.data(), m);
        ref_k[size_t(i)].insert(ref_k[size_t(i)].end(), k.begin(), k.end());
        ref_v[size_t(i)].insert(ref_v[size_t(i)].end(), v.begin(), v.end());
        ref_vectors[size_t(i)].insert(ref_vectors[size_t(i)].end(), vec.begin(), vec.end());  // (kv, m, hd)
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kStores; ++i) {
    SCOPED_TRACE(i);
    const ContextStore& s = stores[size_t(i)];
    expect_rows_equal(s, ref_k[size_t(i)], ref_v[size_t(i)]);
    ASSERT_GT(s.n_vectors(), s.index_block_vectors());  // several index blocks
    const float* ref = ref_vectors[size_t(i)].data();
    for (const StoredUnit& u : s.units()) {
      for (int64_t g = 0; g < kKv; ++g) {
        for (int64_t j = 0; j < u.n_vectors; ++j, ref += kHd) {
          ASSERT_EQ(std::memcmp(s.index_vector(g, u.first_vector + j), ref, kHd * sizeof(float)), 0);
        }
      }
    }
  }
  stores.clear();
  EXPECT_EQ(backend.frees, backend.allocs);
}

TEST(ContextStore, reset_forgets_the_units_and_reuses_the_slabs) {
  std::mt19937 rng(15);
  HostCountingBackend backend;
  ContextStore s(kKv, kHd, 4, &backend, DType::F32, 5, 20);
  std::vector<float> ref_k, ref_v;
  add_random_units(s, 10, rng, ref_k, ref_v);
  const int64_t tokens_before = s.n_tokens();
  const size_t bytes_before = s.bytes();
  // Slabs (the one allocated ahead, if any, included) and index blocks, without the unit table.
  const auto memory_bytes = [&] { return s.bytes() - s.units().capacity() * sizeof(StoredUnit); };
  const size_t memory_before = memory_bytes();

  s.reset(9);
  EXPECT_EQ(s.n_tokens(), 0);
  EXPECT_EQ(s.n_vectors(), 0);
  EXPECT_TRUE(s.units().empty());
  EXPECT_EQ(s.first_token(), 9);
  EXPECT_EQ(s.end_token(), 9);
  EXPECT_EQ(s.bytes(), bytes_before);

  ref_k.clear();
  ref_v.clear();
  while (s.n_tokens() + 3 * s.first_slab_tokens() <= tokens_before) add_random_units(s, 1, rng, ref_k, ref_v);
  EXPECT_EQ(memory_bytes(), memory_before);  // the old slabs and index blocks suffice
  expect_rows_equal(s, ref_k, ref_v);
  EXPECT_EQ(s.units().front().first_token, 9);
  EXPECT_EQ(s.contiguous_tokens(9), std::min<int64_t>(5, s.n_tokens()));
}

TEST(ContextStore, a_bf16_store_holds_each_value_rounded_to_nearest_even_in_half_the_memory) {
  // Values whose bf16 bits are known by hand: exact ones, a tie that goes to the even mantissa,
  // one that rounds up, and negatives.
  struct Case {
    float value;
    uint16_t bits;
  };
  const Case cases[] = {
      {1.0f, 0x3F80},                      // exact
      {-2.5f, 0xC020},                     // exact
      {1.0f + 1.0f / 256.0f, 0x3F80},      // halfway between 1 and 1 + 2^-7: to the even one, 1
      {1.0f + 3.0f / 256.0f, 0x3F82},      // halfway between 1 + 2^-7 and 1 + 2^-6: to the even one, up
      {1.0f + 3.0f / 512.0f, 0x3F81},      // nearer 1 + 2^-7 than 1
      {-(1.0f + 3.0f / 512.0f), 0xBF81},
      {0.0f, 0x0000},
  };
  const int64_t n_cases = int64_t(std::size(cases));
  HostCountingBackend f32_backend, bf16_backend;
  ContextStore f32(kKv, kHd, 0, &f32_backend, DType::F32, 3, 3);
  ContextStore bf16(kKv, kHd, 0, &bf16_backend, DType::BF16, 3, 3);
  EXPECT_EQ(bf16.kv_dtype(), DType::BF16);
  // Token t's K row holds cases (t + j) % n, its V row cases (t + j + 3) % n: units of 1..5
  // tokens, across slabs of 3.
  const int64_t n_tokens = 23;
  for (int64_t t = 0, len = 1; t < n_tokens; t += len, len = len % 5 + 1) {
    const int64_t l = std::min(len, n_tokens - t);
    std::vector<float> k(size_t(l * kRow)), v(k.size()), vec(size_t(kKv * kHd));
    for (int64_t i = 0; i < l; ++i) {
      for (int64_t j = 0; j < kRow; ++j) {
        k[size_t(i * kRow + j)] = cases[(t + i + j) % n_cases].value;
        v[size_t(i * kRow + j)] = cases[(t + i + j + 3) % n_cases].value;
      }
    }
    f32.add_unit(k.data(), v.data(), l, vec.data(), 1);
    bf16.add_unit(k.data(), v.data(), l, vec.data(), 1);
  }
  ASSERT_EQ(bf16.n_tokens(), n_tokens);
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::vector<uint16_t> k_bits(static_cast<size_t>(kRow)), v_bits(static_cast<size_t>(kRow));
    std::memcpy(k_bits.data(), bf16.k_data(t), k_bits.size() * 2);
    std::memcpy(v_bits.data(), bf16.v_data(t), v_bits.size() * 2);
    for (int64_t j = 0; j < kRow; ++j) {
      EXPECT_EQ(k_bits[size_t(j)], cases[(t + j) % n_cases].bits) << "token " << t << " K " << j;
      EXPECT_EQ(v_bits[size_t(j)], cases[(t + j + 3) % n_cases].bits) << "token " << t << " V " << j;
    }
  }
  EXPECT_EQ(bf16.contiguous_tokens(4), 2);  // slabs of 3: tokens 4, 5
  EXPECT_THROW(bf16.k(0), Error);  // no f32 rows to hand out
  f32 = ContextStore();  // no slab in flight any more: the counts are final
  bf16 = ContextStore();
  EXPECT_EQ(bf16_backend.allocs, f32_backend.allocs);
  EXPECT_EQ(2 * bf16_backend.floats_held, f32_backend.floats_held);  // half the slab memory
}

// Index blocks come from the backend's alloc_host (page-locked on CUDA, for the mirror's
// uploads) and go back to it; a BF16 index holds each vector rounded to nearest even in blocks
// of half the memory.
TEST(ContextStore, index_blocks_come_from_the_backend_and_a_bf16_index_takes_half) {
  HostCountingBackend f32_backend, bf16_backend;
  bf16_backend.index_block_floats /= 2;
  {
    ContextStore f32(kKv, kHd, 0, &f32_backend, DType::F32, 8, 8);
    ContextStore bf16(kKv, kHd, 0, &bf16_backend, DType::F32, 8, 8, 0, DType::BF16);
    EXPECT_EQ(bf16.index_dtype(), DType::BF16);
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t per_unit = 1000;  // 9 units: 9,000 vectors, three blocks of 4,096
    std::vector<float> kv(size_t(per_unit * kRow)), vec(size_t(kKv * per_unit * kHd));
    for (int u = 0; u < 9; ++u) {
      for (float& x : vec) x = normal(rng);
      f32.add_unit(kv.data(), kv.data(), per_unit, vec.data(), per_unit);
      bf16.add_unit(kv.data(), kv.data(), per_unit, vec.data(), per_unit);
      for (int64_t g = 0; g < kKv; ++g) {
        for (int64_t i = 0; i < per_unit; ++i) {
          const int64_t at = u * per_unit + i;
          const float* want = f32.index_vector(g, at);
          const auto* bits = static_cast<const uint16_t*>(bf16.index_data(g, at));
          for (int64_t c = 0; c < kHd; ++c) ASSERT_EQ(bits[c], f32_to_bf16(want[c])) << "vector " << at;
        }
      }
    }
    EXPECT_EQ(f32_backend.index_allocs, 3);
    EXPECT_EQ(bf16_backend.index_allocs, 3);
    EXPECT_THROW(bf16.index_vector(0, 0), Error);
    const size_t slabs_and_units = f32.bytes() - 3 * f32_backend.index_block_floats * sizeof(float);
    EXPECT_EQ(bf16.bytes(), slabs_and_units + 3 * bf16_backend.index_block_floats * sizeof(float));
  }
  EXPECT_EQ(f32_backend.index_frees, 3);
  EXPECT_EQ(bf16_backend.index_frees, 3);
  try {
    ContextStore s(kKv, kHd, 0, nullptr, DType::F32, 8, 8, 0, DType::I8);
    ADD_FAILURE() << "an int8 index accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "context store: index vectors in I8; expected F32 or BF16");
  }
}

// The index vectors in blocks: vector i of KV head g is what was added, in order, whatever
// block boundary its unit crosses; contiguous_vectors runs to the end of a block or of the
// vectors; vectors never move; reset keeps the blocks.
TEST(ContextStore, index_vectors_across_block_boundaries_are_what_was_added_and_never_move) {
  const int64_t block = ContextStore::kIndexBlockMultiple;
  ContextStore s(kKv, kHd, 0, nullptr, DType::F32, 64, 256, block);
  EXPECT_EQ(s.index_block_vectors(), block);
  std::mt19937 rng(16);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> ref(kKv);  // per KV head: (n_vectors, kHd)
  bool crossed = false;                      // a unit's vectors in two blocks
  std::vector<const float*> first_vectors;   // where each block's first vector of head 1 lives
  const auto add = [&](int64_t m) {
    std::vector<float> k(size_t(m * kRow)), vec(size_t(kKv * m * kHd));
    for (float& x : vec) x = normal(rng);
    const int64_t first = s.n_vectors();
    s.add_unit(k.data(), k.data(), m, vec.data(), m);
    crossed = crossed || first / block != (first + m - 1) / block;
    for (int64_t g = 0; g < kKv; ++g) {
      ref[size_t(g)].insert(ref[size_t(g)].end(), vec.begin() + g * m * kHd, vec.begin() + (g + 1) * m * kHd);
    }
  };
  const auto expect_index_equal = [&] {
    ASSERT_EQ(s.n_vectors() * kHd, int64_t(ref[0].size()));
    for (int64_t g = 0; g < kKv; ++g) {
      for (int64_t i = 0; i < s.n_vectors(); ++i) {
        ASSERT_EQ(std::memcmp(s.index_vector(g, i), ref[size_t(g)].data() + i * kHd, kHd * sizeof(float)), 0)
            << "KV head " << g << " vector " << i;
      }
    }
    // Runs: one piece up to the end of the block or of the vectors.
    int64_t runs = 0;
    for (int64_t i = 0; i < s.n_vectors(); i += s.contiguous_vectors(i), ++runs) {
      const int64_t run = s.contiguous_vectors(i);
      ASSERT_EQ(run, std::min((i / block + 1) * block, s.n_vectors()) - i) << "vector " << i;
      for (int64_t g = 0; g < kKv; ++g) EXPECT_EQ(s.index_vector(g, i + run - 1), s.index_vector(g, i) + (run - 1) * kHd);
    }
    EXPECT_EQ(runs, (s.n_vectors() + block - 1) / block);
  };
  while (s.n_vectors() < 3 * block + 100) {
    add(1 + int64_t(rng() % 200));
    for (int64_t b = int64_t(first_vectors.size()); b * block < s.n_vectors(); ++b) {
      first_vectors.push_back(s.index_vector(1, b * block));
    }
  }
  EXPECT_TRUE(crossed);
  expect_index_equal();
  for (size_t b = 0; b < first_vectors.size(); ++b) EXPECT_EQ(s.index_vector(1, int64_t(b) * block), first_vectors[b]);
  const size_t bytes = s.bytes();

  s.reset(0);  // the blocks stay and are filled again from the first
  for (auto& r : ref) r.clear();
  while (s.n_vectors() < 2 * block + 1) add(1 + int64_t(rng() % 300));
  expect_index_equal();
  EXPECT_EQ(s.index_vector(1, 0), first_vectors[0]);
  EXPECT_EQ(s.bytes(), bytes);
}

TEST(ContextStore, index_blocks_must_be_a_positive_multiple_of_the_scoring_tile) {
  for (int64_t bad : {int64_t(-1024), int64_t(1), int64_t(1000), int64_t(1536)}) {
    try {
      ContextStore s(kKv, kHd, 0, nullptr, DType::F32, 8, 8, bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "context store: index blocks of " + std::to_string(bad) +
                                           " vectors; need a positive multiple of 1024 (0: the default)");
    }
  }
  EXPECT_EQ(ContextStore(kKv, kHd, 0).index_block_vectors(), ContextStore::kIndexBlockVectors);
}

}  // namespace
}  // namespace ltri
