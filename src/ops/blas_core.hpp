#pragma once
// OpenBLAS chooses its kernels from the CPU model when the library loads. Some virtual machines
// report a model it does not know ("Intel(R) Xeon(R) Processor"), and it then falls back to its
// Prescott kernels (SSE3) on CPUs that have AVX-512: the bundled model's full-attention prefill
// of 2K tokens ran at 752 tok/s with them and 3,158 tok/s with the SkylakeX kernels on such a
// machine (2 threads). The choice can only be made before the library initialises, so the
// program restarts itself once with OPENBLAS_CORETYPE set.

namespace ltri {

// The OpenBLAS core to force, or null to leave OpenBLAS's choice: only when it chose Prescott
// (or reports nothing) while the CPU has AVX2 and FMA, and neither OPENBLAS_CORETYPE nor a
// previous restart (`restarted`) is in the way. SkylakeX with AVX-512F, else Haswell.
const char* openblas_core_to_force(const char* chosen, bool avx512f, bool avx2_fma, bool coretype_set,
                                   bool restarted);

// Called first in main(): re-executes the program (argv as given) with OPENBLAS_CORETYPE set
// when openblas_core_to_force says so; LTRI_BLAS_RESTARTED=1 marks the restart. Returns when
// there is nothing to do or the restart fails (the program then runs with the slow kernels).
void use_the_cpus_blas_kernels(char** argv);

}  // namespace ltri
