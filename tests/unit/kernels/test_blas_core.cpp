// When ltri restarts itself with OPENBLAS_CORETYPE set: only where OpenBLAS fell back to its
// Prescott kernels on a CPU with AVX2 and FMA, and never twice or against the user's choice.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ops/blas_core.hpp"

namespace ltri {
namespace {

std::string forced(const char* chosen, bool avx512f, bool avx2_fma, bool coretype_set = false,
                   bool restarted = false) {
  const char* core = openblas_core_to_force(chosen, avx512f, avx2_fma, coretype_set, restarted);
  return core ? core : "-";
}

TEST(BlasCore, a_prescott_fallback_on_a_modern_cpu_gets_its_kernels) {
  EXPECT_EQ(forced("Prescott", true, true), "SkylakeX");
  EXPECT_EQ(forced("Prescott", false, true), "Haswell");
  EXPECT_EQ(forced(nullptr, true, true), "SkylakeX");
  EXPECT_EQ(forced("", false, true), "Haswell");
}

TEST(BlasCore, a_known_core_an_old_cpu_the_users_choice_or_a_restart_are_left_alone) {
  EXPECT_EQ(forced("Cooperlake", true, true), "-");
  EXPECT_EQ(forced("Zen", false, true), "-");
  EXPECT_EQ(forced("Prescott", false, false), "-");  // no AVX2: Prescott may be right
  EXPECT_EQ(forced("Prescott", true, true, /*coretype_set=*/true), "-");
  EXPECT_EQ(forced("Prescott", true, true, false, /*restarted=*/true), "-");
}

}  // namespace
}  // namespace ltri
