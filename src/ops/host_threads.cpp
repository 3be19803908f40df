#include "ops/host_threads.hpp"

#include <omp.h>

// OpenBLAS's own thread control (declared in its cblas.h on Debian, but not in every cblas.h).
extern "C" void openblas_set_num_threads(int num_threads);

namespace ltri {

int set_host_threads(int threads) {
  const int n = threads > 0 ? threads : omp_get_num_procs();
  omp_set_num_threads(n);
  openblas_set_num_threads(1);
  return n;
}

}  // namespace ltri
