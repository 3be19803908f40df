#include "ops/blas_core.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

// OpenBLAS's report of the kernels it chose (declared in its cblas.h on Debian, not in every one).
extern "C" char* openblas_get_corename(void);

namespace ltri {

const char* openblas_core_to_force(const char* chosen, bool avx512f, bool avx2_fma, bool coretype_set,
                                   bool restarted) {
  if (coretype_set || restarted || !avx2_fma) return nullptr;
  const bool fallback = chosen == nullptr || *chosen == '\0' || std::strcmp(chosen, "Prescott") == 0;
  if (!fallback) return nullptr;
  return avx512f ? "SkylakeX" : "Haswell";
}

void use_the_cpus_blas_kernels(char** argv) {
  __builtin_cpu_init();
  const bool avx512f = __builtin_cpu_supports("avx512f");
  const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* core = openblas_core_to_force(openblas_get_corename(), avx512f, avx2_fma,
                                            std::getenv("OPENBLAS_CORETYPE") != nullptr,
                                            std::getenv("LTRI_BLAS_RESTARTED") != nullptr);
  if (core == nullptr) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  setenv("LTRI_BLAS_RESTARTED", "1", 1);
  execv("/proc/self/exe", argv);
  // The restart failed: go on with the kernels OpenBLAS chose, and leave the environment as it was.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("LTRI_BLAS_RESTARTED");
}

}  // namespace ltri
