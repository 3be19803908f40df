// ContextStore's slabs: every token's K/V row is what was added, whatever slab boundaries its
// unit crosses; rows never move once stored; contiguous_tokens says how far a row run goes in
// one piece; slabs double in size up to the cap; memory comes from the backend's alloc_host in
// whole slabs and goes back on destruction; reset keeps the slabs for reuse; a bf16 store holds
// each value rounded to nearest even in half the memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"

namespace ltri {
namespace {

constexpr int64_t kKv = 2, kHd = 4, kRow = kKv * kHd;

// The CPU backend, counting host allocations.
class HostCountingBackend : public CpuBackend {
 public:
  HostCountingBackend() : CpuBackend(1) {}
  float* alloc_host(size_t n_floats) override {
    ++allocs;
    floats_held += n_floats;
    sizes.push_back(n_floats);
    return CpuBackend::alloc_host(n_floats);
  }
  void free_host(float* p) override {
    ++frees;
    CpuBackend::free_host(p);
  }
  int allocs = 0, frees = 0;
  size_t floats_held = 0;
  std::vector<size_t> sizes;
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

TEST(ContextStore, memory_grows_in_doubling_slabs_from_the_backend_and_goes_back_to_it) {
  std::mt19937 rng(14);
  const int64_t first_slab = 8, max_slab = 32;
  HostCountingBackend backend;
  {
    ContextStore s(kKv, kHd, 0, &backend, DType::F32, first_slab, max_slab);
    EXPECT_EQ(backend.allocs, 0);  // nothing before the first unit
    std::vector<float> ref_k, ref_v;
    for (int step = 0; step < 30; ++step) {
      add_random_units(s, 1, rng, ref_k, ref_v);
      // Slabs of 8, 16, 32, 32, ... tokens: K and V rows of each.
      const auto slabs = expected_slabs(first_slab, max_slab, s.n_tokens());
      ASSERT_EQ(backend.sizes.size(), slabs.size());
      size_t slab_floats = 0;
      for (size_t j = 0; j < slabs.size(); ++j) {
        ASSERT_EQ(backend.sizes[j], size_t(2 * slabs[j].second * kRow)) << "slab " << j;
        slab_floats += backend.sizes[j];
      }
      ASSERT_EQ(backend.floats_held, slab_floats);
      // bytes() counts the slabs, plus the index vectors (at most twice their size reserved)
      // and the unit table.
      const size_t slab_bytes = slab_floats * sizeof(float);
      const size_t index_bytes = size_t(s.n_vectors() * kKv * kHd) * sizeof(float);
      EXPECT_GE(s.bytes(), slab_bytes + index_bytes);
      EXPECT_LE(s.bytes(), slab_bytes + 2 * index_bytes + s.units().capacity() * sizeof(StoredUnit));
    }
    EXPECT_GT(backend.sizes.size(), 4u);  // the cap was reached and passed
    EXPECT_EQ(backend.frees, 0);
  }
  EXPECT_EQ(backend.frees, backend.allocs);
}

TEST(ContextStore, reset_forgets_the_units_and_reuses_the_slabs) {
  std::mt19937 rng(15);
  HostCountingBackend backend;
  ContextStore s(kKv, kHd, 4, &backend, DType::F32, 5, 20);
  std::vector<float> ref_k, ref_v;
  add_random_units(s, 10, rng, ref_k, ref_v);
  const int64_t tokens_before = s.n_tokens();
  const int allocs_before = backend.allocs;
  const size_t bytes_before = s.bytes();

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
  EXPECT_EQ(backend.allocs, allocs_before);  // the old slabs suffice
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
  EXPECT_EQ(bf16_backend.allocs, f32_backend.allocs);
  EXPECT_EQ(2 * bf16_backend.floats_held, f32_backend.floats_held);  // half the slab memory
  EXPECT_THROW(bf16.k(0), Error);  // no f32 rows to hand out
}

}  // namespace
}  // namespace ltri
