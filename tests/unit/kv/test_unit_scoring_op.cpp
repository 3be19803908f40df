// Backend::score_units on the CPU backend (the default op) against the host scorers it stands
// for, bit for bit, and against the definition in double; and UnitIndexMirror, the store's
// index copied incrementally into backend memory, against the store it mirrors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <utility>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"
#include "kv/retrieval.hpp"
#include "kv/unit_index_mirror.hpp"

namespace ltri {
namespace {

constexpr int64_t kKv = 2, kHd = 16, kHeads = 8;

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// Units of 1..32 index vectors; every 7th unit repeats unit 3's vectors, so scores tie exactly.
// rounded: the vectors are rounded to bf16 values before they are added.
void add_random_units(ContextStore& s, int64_t n_units, std::mt19937& rng, bool rounded = false) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> unit3;
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t m = 1 + int64_t(rng() % 32), len = m + int64_t(rng() % 4);
    std::vector<float> kv(size_t(len * kKv * kHd)), vec(size_t(kKv * m * kHd));
    for (float& x : vec) x = rounded ? round_bf16(normal(rng)) : normal(rng);
    if (s.units().size() == 3) unit3 = vec;
    if (s.units().size() % 7 == 6 && !unit3.empty()) {
      vec = unit3;
      const int64_t m3 = int64_t(unit3.size()) / (kKv * kHd);
      kv.resize(size_t(std::max(len, m3) * kKv * kHd));  // the unit must hold its m3 vectors' tokens
      s.add_unit(kv.data(), kv.data(), std::max(len, m3), vec.data(), m3);
      continue;
    }
    s.add_unit(kv.data(), kv.data(), len, vec.data(), m);
  }
}

// sum_h w_h max over queries i and u's vectors k of <q_ih, k>, in double.
std::vector<double> reference_scores(const ContextStore& s, const std::vector<float>& q, int64_t n,
                                     const std::vector<float>& w) {
  std::vector<double> out;
  for (const StoredUnit& u : s.units()) {
    double total = 0.0;
    for (int64_t h = 0; h < kHeads; ++h) {
      if (w[size_t(h)] == 0.0f) continue;
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

TEST(UnitScoringOp, cpu_op_equals_the_host_scorers_bit_for_bit) {
  std::mt19937 rng(11);
  ContextStore s(kKv, kHd, 0);
  add_random_units(s, 1500, rng);  // ~25K vectors per KV head: several tiles, parallel loops
  ASSERT_GT(s.n_vectors(), 20000);
  CpuBackend backend(2);
  UnitIndexMirror mirror;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::vector<std::vector<float>> weights = {
      std::vector<float>(kHeads, 1.0f / kHeads), {0, 0, 0, 0, 0, 1, 0, 0}, {0.5f, 0, 0, 0.25f, 0, 0, 0.25f, 0}};
  for (const auto& w : weights) {
    for (int64_t n_q : {1, 16, 17}) {
      std::vector<float> q(size_t(n_q * kHeads * kHd));
      for (float& x : q) x = normal(rng);
      std::vector<float> got, want, dots, best;
      backend.score_units(s, mirror, q.data(), n_q, false, w, got);
      score_units_per_query(s, q.data(), n_q, w, want, dots, best);
      ASSERT_EQ(got.size(), s.units().size());
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "n_q " << n_q;
      const auto ref = reference_scores(s, q, n_q, w);
      for (size_t u = 0; u < ref.size(); ++u) ASSERT_NEAR(got[u], ref[u], 1e-4) << "unit " << u;
      // Units with unit 3's vectors score as unit 3 to within rounding: the dot products are one
      // GEMM over the whole index, and OpenBLAS's kernels for some CPUs (Zen: AMD EPYC) sum the
      // rows of a tile's edge in another order than its interior, so bits may differ (SkylakeX
      // kernels give equal bits on the same machine).
      for (size_t u = 6; u < got.size(); u += 7) {
        ASSERT_NEAR(got[u], got[3], 1e-6 * std::max(1.0f, std::fabs(got[3]))) << "tied unit " << u;
      }
      if (n_q == 1) {  // the mean-query route: score_units' matrix-vector product
        backend.score_units(s, mirror, q.data(), 1, true, w, got);
        score_units(s, q.data(), w, want, dots);
        ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
        for (size_t u = 0; u < ref.size(); ++u) ASSERT_NEAR(got[u], ref[u], 1e-4) << "unit " << u;
      }
    }
  }
  EXPECT_EQ(mirror.n_vectors(), 0);  // the host op reads the store: no copy of the index
  EXPECT_EQ(mirror.bytes(), 0u);
}

// The mirror's vectors of KV head g (bytes in the store's index dtype) and its unit
// boundaries, read back from backend memory.
void expect_mirror_equals_store(Backend& backend, const UnitIndexMirror& m, const ContextStore& s) {
  ASSERT_EQ(m.n_vectors(), s.n_vectors());
  ASSERT_EQ(m.n_units(), int64_t(s.units().size()));
  ASSERT_EQ(m.dtype(), s.index_dtype());
  const size_t row_bytes = size_t(kHd) * dtype_size(s.index_dtype());
  for (int64_t slot = 0; slot < int64_t(m.heads().size()); ++slot) {
    const int64_t g = m.heads()[size_t(slot)];
    ASSERT_EQ(m.slot(g), slot);
    std::vector<unsigned char> rows(size_t(s.n_vectors()) * row_bytes), want;
    const auto* head = static_cast<const unsigned char*>(m.vectors()) + size_t(slot * m.head_stride()) * dtype_size(m.dtype());
    backend.download(reinterpret_cast<float*>(rows.data()), reinterpret_cast<const float*>(head), rows.size() / sizeof(float));
    for (int64_t i = 0; i < s.n_vectors(); ++i) {
      const auto* v = static_cast<const unsigned char*>(s.index_data(g, i));
      want.insert(want.end(), v, v + row_bytes);
    }
    ASSERT_EQ(rows, want) << "KV head " << g;
  }
  std::vector<int32_t> starts(size_t(m.n_units() + 1));
  std::memcpy(starts.data(), m.unit_starts(), starts.size() * sizeof(int32_t));  // CPU: host memory
  ASSERT_EQ(starts[0], 0);
  for (size_t u = 0; u < s.units().size(); ++u) {
    ASSERT_EQ(starts[u], s.units()[u].first_vector) << "unit " << u;
    ASSERT_EQ(starts[u + 1] - starts[u], s.units()[u].n_vectors) << "unit " << u;
  }
}

// An upload counter on the CPU backend: how many bytes of index vectors each sync sends into
// `mirror`'s vector buffer (the unit boundaries, which go up the same way, are not counted).
class CountingBackend : public CpuBackend {
 public:
  CountingBackend() : CpuBackend(1) {}
  void upload_bytes_stable(void* dst, const void* host_src, size_t bytes) override {
    const auto* begin = static_cast<const unsigned char*>(mirror->vectors());
    const size_t held = mirror->heads().size() * size_t(mirror->head_stride()) * dtype_size(mirror->dtype());
    const auto* at = static_cast<const unsigned char*>(dst);
    if (begin != nullptr && at >= begin && at < begin + held) uploaded += bytes;
    CpuBackend::upload_bytes_stable(dst, host_src, bytes);
  }
  const UnitIndexMirror* mirror = nullptr;  // set before the first sync (declared after the backend: freed first)
  size_t uploaded = 0;
};

TEST(UnitScoringOp, mirror_appends_only_new_vectors_and_follows_a_reset) {
  // One index block for everything, the default blocks and the smallest: syncs upload runs from
  // one, two or more blocks.
  for (const auto& [block, dtype] : {std::pair{int64_t(64) * ContextStore::kIndexBlockMultiple, DType::F32},
                                     std::pair{int64_t(0), DType::F32},
                                     std::pair{ContextStore::kIndexBlockMultiple, DType::F32},
                                     std::pair{ContextStore::kIndexBlockMultiple, DType::BF16}}) {
    SCOPED_TRACE(cat(block, " ", dtype_name(dtype)));
    std::mt19937 rng(12);
    ContextStore s(kKv, kHd, 0, nullptr, DType::F32, ContextStore::kFirstSlabTokens, ContextStore::kMaxSlabTokens, block,
                   dtype);
    CountingBackend backend;
    UnitIndexMirror m;
    backend.mirror = &m;
    for (int round = 0; round < 12; ++round) {  // grows past the first capacity several times
      const int64_t before = s.n_vectors();
      add_random_units(s, 20 + round * 15, rng);
      backend.uploaded = 0;
      m.sync(backend, s);
      ASSERT_EQ(m.heads().size(), size_t(kKv));  // every KV head
      EXPECT_EQ(backend.uploaded, size_t((s.n_vectors() - before) * kKv * kHd) * dtype_size(dtype)) << "round " << round;
      expect_mirror_equals_store(backend, m, s);
      m.sync(backend, s);  // nothing new: nothing changes
      expect_mirror_equals_store(backend, m, s);
    }
    EXPECT_GT(s.n_vectors(), 4 * ContextStore::kIndexBlockMultiple);
    EXPECT_GE(m.bytes(), size_t(s.n_vectors() * kKv * kHd) * dtype_size(dtype));
    // Grown by a quarter (UnitIndexMirror::kGrowth): at most 1.25x the vectors plus a rounding of
    // 256 rows per KV head, and the unit boundaries, in the dtype's size.
    const double most = (UnitIndexMirror::kGrowth * double(s.n_vectors()) + 256) * kKv * kHd * double(dtype_size(dtype)) +
                        UnitIndexMirror::kGrowth * double(s.units().size() + 256) * 4;
    EXPECT_LE(double(m.bytes()), most);

    s.reset(0);  // a smaller store than mirrored: mirrored again from the start
    add_random_units(s, 5, rng);
    m.sync(backend, s);
    expect_mirror_equals_store(backend, m, s);
    m.clear();  // the owner's reset: a refilled store goes up in full
    add_random_units(s, 40, rng);
    m.sync(backend, s);
    expect_mirror_equals_store(backend, m, s);
  }
}

TEST(UnitScoringOp, mirror_holds_the_kv_heads_asked_for_and_widens_to_a_new_one) {
  constexpr int64_t kKvMany = 4;
  std::mt19937 rng(13);
  ContextStore s(kKvMany, kHd, 0);
  const auto add = [&](int64_t n_units) {  // units of 1..8 vectors per KV head
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < n_units; ++i) {
      const int64_t m = 1 + int64_t(rng() % 8), len = 8;
      std::vector<float> kv(size_t(len * kKvMany * kHd), 0.0f), vec(size_t(kKvMany * m * kHd));
      for (float& x : vec) x = normal(rng);
      s.add_unit(kv.data(), kv.data(), len, vec.data(), m);
    }
  };
  const auto expect_rows = [&](const UnitIndexMirror& m, CpuBackend& backend) {
    for (int64_t slot = 0; slot < int64_t(m.heads().size()); ++slot) {
      std::vector<float> rows(size_t(s.n_vectors() * kHd));
      backend.download(rows.data(), static_cast<const float*>(m.vectors()) + slot * m.head_stride(), rows.size());
      for (int64_t i = 0; i < s.n_vectors(); ++i) {
        ASSERT_EQ(std::memcmp(rows.data() + i * kHd, s.index_vector(m.heads()[size_t(slot)], i), kHd * sizeof(float)), 0)
            << "slot " << slot << " vector " << i;
      }
    }
  };
  CountingBackend backend;
  UnitIndexMirror m;
  backend.mirror = &m;
  add(50);
  m.sync(backend, s, {2});  // one retrieval head's KV head
  EXPECT_EQ(m.heads(), std::vector<int64_t>({2}));
  EXPECT_EQ(m.slot(2), 0);
  EXPECT_EQ(m.slot(0), -1);
  EXPECT_EQ(backend.uploaded, size_t(s.n_vectors() * kHd) * sizeof(float));
  EXPECT_LT(m.bytes(), size_t(2 * s.n_vectors() * kHd) * sizeof(float));  // not the other three heads
  expect_rows(m, backend);
  add(30);  // appends stay one head wide
  const int64_t before = m.n_vectors();
  backend.uploaded = 0;
  m.sync(backend, s, {2});
  EXPECT_EQ(backend.uploaded, size_t((s.n_vectors() - before) * kHd) * sizeof(float));
  expect_rows(m, backend);
  backend.uploaded = 0;
  m.sync(backend, s, {0, 3});  // heads not held: the union, uploaded from the start
  EXPECT_EQ(m.heads(), std::vector<int64_t>({0, 2, 3}));
  EXPECT_EQ(backend.uploaded, size_t(3 * s.n_vectors() * kHd) * sizeof(float));
  expect_rows(m, backend);
  backend.uploaded = 0;
  m.sync(backend, s, {3});  // a subset of what is held: nothing to do
  EXPECT_EQ(backend.uploaded, 0u);
  EXPECT_EQ(m.heads().size(), 3u);
  EXPECT_THROW(m.sync(backend, s, {3, 1}), Error);  // not ascending
  EXPECT_THROW(m.sync(backend, s, {4}), Error);     // no such KV head
}

// The index in blocks scores exactly as the index in one contiguous matrix per KV head (the
// layout before blocks: a store whose one block holds every vector): the same scores bit for
// bit, with cblas_sgemv split at every block boundary and units whose vectors cross one.
TEST(UnitScoringOp, scores_over_index_blocks_equal_scores_over_one_contiguous_index) {
  constexpr int64_t kUnits = 1500;  // ~25K vectors per KV head
  const auto filled = [](int64_t block) {
    std::mt19937 rng(21);  // the same units in every store
    auto s = std::make_unique<ContextStore>(kKv, kHd, 0, nullptr, DType::F32, ContextStore::kFirstSlabTokens,
                                            ContextStore::kMaxSlabTokens, block);
    add_random_units(*s, kUnits, rng);
    return s;
  };
  const auto flat = filled(32 * ContextStore::kIndexBlockMultiple);
  ASSERT_EQ(flat->contiguous_vectors(0), flat->n_vectors());  // one run: the old layout
  std::mt19937 rng(22);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::vector<float> w = {0.5f, 0, 0, 0.25f, 0, 0, 0.125f, 0.125f};
  for (int64_t block : {int64_t(1024), int64_t(3072), ContextStore::kIndexBlockVectors}) {
    SCOPED_TRACE(block);
    const auto s = filled(block);
    ASSERT_EQ(s->n_vectors(), flat->n_vectors());
    ASSERT_EQ(s->contiguous_vectors(0), std::min(block, s->n_vectors()));
    for (int64_t n_q : {1, 17}) {
      std::vector<float> q(size_t(n_q * kHeads * kHd));
      for (float& x : q) x = normal(rng);
      std::vector<float> got, want, dots, best;
      score_units_per_query(*s, q.data(), n_q, w, got, dots, best);
      score_units_per_query(*flat, q.data(), n_q, w, want, dots, best);
      ASSERT_EQ(got.size(), size_t(kUnits));
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "n_q " << n_q;
      score_units(*s, q.data(), w, got, dots);  // the mean-query route
      score_units(*flat, q.data(), w, want, dots);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "mean query";
    }
  }
}

// A BF16 index scores as bf16 products summed in f32: exactly the scores of an F32 index that
// holds the same vectors rounded to bf16, for queries rounded to bf16, on both routes.
TEST(UnitScoringOp, bf16_index_scores_as_rounded_queries_against_rounded_vectors) {
  constexpr int64_t kUnits = 1500;  // ~25K vectors per KV head: several blocks and tiles
  std::mt19937 rng_a(31), rng_b(31);
  ContextStore bf16(kKv, kHd, 0, nullptr, DType::F32, ContextStore::kFirstSlabTokens, ContextStore::kMaxSlabTokens, 0,
                    DType::BF16);
  ContextStore f32(kKv, kHd, 0);
  add_random_units(bf16, kUnits, rng_a);
  add_random_units(f32, kUnits, rng_b, /*rounded=*/true);
  ASSERT_EQ(bf16.n_vectors(), f32.n_vectors());
  EXPECT_THROW(bf16.index_vector(0, 0), Error);  // f32 rows of a bf16 index: refused
  EXPECT_EQ(*static_cast<const uint16_t*>(bf16.index_data(1, 5)), f32_to_bf16(*f32.index_vector(1, 5)));
  std::mt19937 rng(32);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::vector<float> w = {0.5f, 0, 0, 0.25f, 0, 0, 0.125f, 0.125f};
  for (int64_t n_q : {1, 17}) {
    std::vector<float> q(size_t(n_q * kHeads * kHd)), q_rounded;
    for (float& x : q) x = normal(rng);
    for (float x : q) q_rounded.push_back(round_bf16(x));
    std::vector<float> got, want, dots, best;
    score_units_per_query(bf16, q.data(), n_q, w, got, dots, best);
    score_units_per_query(f32, q_rounded.data(), n_q, w, want, dots, best);
    ASSERT_EQ(got.size(), size_t(kUnits));
    ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "n_q " << n_q;
    const auto ref = reference_scores(f32, q_rounded, n_q, w);
    for (size_t u = 0; u < ref.size(); ++u) ASSERT_NEAR(got[u], ref[u], 1e-4) << "unit " << u;
    score_units(bf16, q.data(), w, got, dots);  // the mean-query route
    score_units(f32, q_rounded.data(), w, want, dots);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "mean query";
  }
}

}  // namespace
}  // namespace ltri
