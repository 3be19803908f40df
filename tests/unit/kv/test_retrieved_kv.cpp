// RetrievedKv's ping-pong reloads: after any sequence of loads (overlapping picks, the store
// growing between them, slab boundaries inside units) the buffer holds exactly the picked
// units' rows in store order, as a plain row-by-row copy from the store gives; and only units
// the previous load did not hold cross the host link. From a bf16 store, rows arrive widened
// to f32 and the link carries 2 bytes per value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"
#include "kv/retrieved_kv.hpp"

namespace ltri {
namespace {

constexpr int64_t kKv = 2, kHd = 3, kRow = kKv * kHd;

// The CPU backend, counting the floats that go through upload.
class UploadCountingBackend : public CpuBackend {
 public:
  UploadCountingBackend() : CpuBackend(1) {}
  void upload(float* dst, const float* host_src, size_t n) override {
    floats_uploaded += int64_t(n);
    CpuBackend::upload(dst, host_src, n);
  }
  int64_t floats_uploaded = 0;
};

void add_random_units(ContextStore& s, int64_t n_units, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> length_of(1, 9);
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t len = length_of(rng);
    std::vector<float> k(size_t(len * kRow)), v(k.size()), vec(size_t(kKv * kHd));
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    s.add_unit(k.data(), v.data(), len, vec.data(), 1);
  }
}

// The reference: the picked units' rows, token by token, in list order.
void reference_rows(const ContextStore& s, const std::vector<int64_t>& units, std::vector<float>& k,
                    std::vector<float>& v) {
  k.clear();
  v.clear();
  for (int64_t u : units) {
    const StoredUnit& unit = s.units()[size_t(u)];
    for (int64_t t = unit.first_token; t < unit.first_token + unit.length; ++t) {
      k.insert(k.end(), s.k(t), s.k(t) + kRow);
      v.insert(v.end(), s.v(t), s.v(t) + kRow);
    }
  }
}

int64_t tokens_of(const ContextStore& s, const std::vector<int64_t>& units) {
  int64_t n = 0;
  for (int64_t u : units) n += s.units()[size_t(u)].length;
  return n;
}

// A random sorted subset of the store's units: mostly last time's picks (some dropped), a few
// new ones, now and then a run of neighbours, within `capacity` tokens.
std::vector<int64_t> next_pick(const ContextStore& s, const std::vector<int64_t>& previous, int64_t capacity,
                               std::mt19937& rng) {
  const int64_t n_units = int64_t(s.units().size());
  std::set<int64_t> pick;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int64_t u : previous) {
    if (coin(rng) < 0.75) pick.insert(u);
  }
  std::uniform_int_distribution<int64_t> unit_of(0, n_units - 1);
  const int64_t fresh = 1 + int64_t(rng() % 4);
  for (int64_t i = 0; i < fresh; ++i) {
    const int64_t u = unit_of(rng);
    pick.insert(u);
    if (coin(rng) < 0.3 && u + 1 < n_units) pick.insert(u + 1);
  }
  std::vector<int64_t> units(pick.begin(), pick.end());
  while (tokens_of(s, units) > capacity) units.erase(units.begin() + ptrdiff_t(rng() % units.size()));
  return units;
}

TEST(RetrievedKv, overlapping_loads_hold_the_picked_rows_in_order_and_upload_only_new_units) {
  std::mt19937 rng(21);
  UploadCountingBackend backend;
  ContextStore s(kKv, kHd, 16, nullptr, DType::F32, 7, 7);  // slabs of 7 tokens: units cross boundaries
  add_random_units(s, 20, rng);
  const int64_t capacity = 60;
  RetrievedKv r(backend, kRow, capacity);
  std::vector<int64_t> picked;
  std::vector<float> want_k, want_v;
  int64_t want_uploaded = 0;
  bool reused_some = false;
  for (int step = 0; step < 60; ++step) {
    if (step % 5 == 4) add_random_units(s, 3, rng);  // the store grows between loads
    std::vector<int64_t> next = step % 7 == 6 ? picked : next_pick(s, picked, capacity, rng);
    if (step == 30) next.clear();  // an empty pick, then everything is new again
    // Bytes that must come from the host: the units the last load did not hold.
    const std::set<int64_t> held(picked.begin(), picked.end());
    int64_t new_tokens = 0;
    for (int64_t u : next) {
      if (held.count(u) == 0) new_tokens += s.units()[size_t(u)].length;
      else reused_some = true;
    }
    if (next != picked) want_uploaded += 2 * new_tokens * kRow * int64_t(sizeof(float));

    r.load(s, next);
    picked = next;
    reference_rows(s, picked, want_k, want_v);
    ASSERT_EQ(r.n_tokens() * kRow, int64_t(want_k.size())) << "step " << step;
    ASSERT_EQ(std::vector<float>(r.k(), r.k() + want_k.size()), want_k) << "step " << step;
    ASSERT_EQ(std::vector<float>(r.v(), r.v() + want_v.size()), want_v) << "step " << step;
    EXPECT_EQ(r.units(), picked);
    ASSERT_EQ(r.bytes_uploaded(), want_uploaded) << "step " << step;
    ASSERT_EQ(backend.floats_uploaded * int64_t(sizeof(float)), want_uploaded) << "step " << step;
  }
  EXPECT_TRUE(reused_some);
  EXPECT_EQ(r.bytes(), size_t(2 * 2 * capacity * kRow) * sizeof(float));  // two K/V buffers
}

TEST(RetrievedKv, after_clear_and_a_store_reset_nothing_stale_is_reused) {
  std::mt19937 rng(22);
  UploadCountingBackend backend;
  ContextStore s(kKv, kHd, 4, nullptr, DType::F32, 5);
  add_random_units(s, 10, rng);
  RetrievedKv r(backend, kRow, 100);
  const std::vector<int64_t> picked = {1, 2, 5, 8};
  r.load(s, picked);
  // The next request: the store starts over with other rows under the same unit ids.
  s.reset(4);
  r.clear();
  add_random_units(s, 10, rng);
  const int64_t uploaded_before = r.bytes_uploaded();
  r.load(s, picked);
  std::vector<float> want_k, want_v;
  reference_rows(s, picked, want_k, want_v);
  ASSERT_EQ(r.n_tokens() * kRow, int64_t(want_k.size()));
  EXPECT_EQ(std::vector<float>(r.k(), r.k() + want_k.size()), want_k);
  EXPECT_EQ(std::vector<float>(r.v(), r.v() + want_v.size()), want_v);
  EXPECT_EQ(r.bytes_uploaded() - uploaded_before, int64_t(2 * want_k.size() * sizeof(float)));
}

TEST(RetrievedKv, a_bf16_store_loads_rows_widened_to_f32_and_uploads_two_bytes_per_value) {
  std::mt19937 rng(23);
  UploadCountingBackend backend;  // counts f32 uploads: the default upload_bf16 stages in f32
  ContextStore s(kKv, kHd, 8, nullptr, DType::BF16, 5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> original;  // every stored value as added, in token order
  for (int64_t u = 0; u < 12; ++u) {
    const int64_t len = 1 + u % 7;
    std::vector<float> k(size_t(len * kRow)), v(k.size()), vec(size_t(kKv * kHd));
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    s.add_unit(k.data(), v.data(), len, vec.data(), 1);
    for (int64_t i = 0; i < len; ++i) {
      original.insert(original.end(), k.begin() + i * kRow, k.begin() + (i + 1) * kRow);
      original.insert(original.end(), v.begin() + i * kRow, v.begin() + (i + 1) * kRow);
    }
  }
  RetrievedKv r(backend, kRow, 40);
  int64_t want_uploaded = 0;
  std::vector<int64_t> previous;
  for (const std::vector<int64_t>& picked :
       std::vector<std::vector<int64_t>>{{0, 3, 4, 9}, {3, 4, 5, 10}, {1, 2, 3, 4, 5}, {11}}) {
    for (int64_t u : picked) {
      if (std::find(previous.begin(), previous.end(), u) == previous.end()) {
        want_uploaded += 2 * s.units()[size_t(u)].length * kRow * 2;  // K and V, 2 bytes a value
      }
    }
    r.load(s, picked);
    previous = picked;
    // The reference: each stored bf16 value's bits as the top half of an f32.
    std::vector<float> want_k, want_v;
    for (int64_t u : picked) {
      const StoredUnit& unit = s.units()[size_t(u)];
      for (int64_t t = unit.first_token; t < unit.first_token + unit.length; ++t) {
        for (int64_t j = 0; j < kRow; ++j) {
          uint16_t kb, vb;
          std::memcpy(&kb, static_cast<const unsigned char*>(s.k_data(t)) + 2 * j, 2);
          std::memcpy(&vb, static_cast<const unsigned char*>(s.v_data(t)) + 2 * j, 2);
          const uint32_t kw = uint32_t(kb) << 16, vw = uint32_t(vb) << 16;
          float kf, vf;
          std::memcpy(&kf, &kw, 4);
          std::memcpy(&vf, &vw, 4);
          want_k.push_back(kf);
          want_v.push_back(vf);
          // And within bf16's rounding (8 significant bits) of the value added.
          const float* added = original.data() + ((t - 8) * 2 * kRow);
          EXPECT_LE(std::fabs(kf - added[j]), std::ldexp(std::fabs(added[j]), -8));
          EXPECT_LE(std::fabs(vf - added[kRow + j]), std::ldexp(std::fabs(added[kRow + j]), -8));
        }
      }
    }
    ASSERT_EQ(r.n_tokens() * kRow, int64_t(want_k.size()));
    EXPECT_EQ(std::vector<float>(r.k(), r.k() + want_k.size()), want_k);
    EXPECT_EQ(std::vector<float>(r.v(), r.v() + want_v.size()), want_v);
    EXPECT_EQ(r.bytes_uploaded(), want_uploaded);
  }
}

}  // namespace
}  // namespace ltri
