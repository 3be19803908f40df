// CudaOpTimer (LTRI_PROFILE=gpu): an op's GPU time lands in the phase profile under
// "<mode>/gpu/<op>", once per op, with nested ops charged to the outer one; a timer that is off
// records nothing. Skips when no GPU is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>

#include "core/phase_profile.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cuda/cuda_op_timer.hpp"

namespace ltri {
namespace {

// The report line of `phase`, or "" when it has none.
std::string line_of(const std::string& phase) {
  const std::string report = PhaseProfile::report();
  const size_t at = report.find(phase + " ");
  return at == std::string::npos ? "" : report.substr(at, report.find('\n', at) - at);
}

TEST(CudaOpTimer, times_outer_ops_on_the_stream_and_nothing_when_off) {
  LTRI_SKIP_WITHOUT_CUDA();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  void* buf = nullptr;
  constexpr size_t bytes = size_t(256) << 20;  // long enough to take well over a microsecond
  ASSERT_EQ(cudaMalloc(&buf, bytes), cudaSuccess);
  const std::string mode = PhaseProfile::mode();
  {
    CudaOpTimer timer(stream, true);
    for (int i = 0; i < 3; ++i) {
      const CudaOpTimer::Scope outer(timer, "test_memset");
      const CudaOpTimer::Scope inner(timer, "test_inner");  // nested: charged to test_memset
      ASSERT_EQ(cudaMemsetAsync(buf, i, bytes, stream), cudaSuccess);
    }
    CudaOpTimer off(stream, false);
    const CudaOpTimer::Scope scope(off, "test_off");
    ASSERT_EQ(cudaMemsetAsync(buf, 0, bytes, stream), cudaSuccess);
  }  // the timers' destructors wait for the events and file the times
  const std::string line = line_of(mode + "/gpu/test_memset");
  ASSERT_FALSE(line.empty()) << PhaseProfile::report();
  EXPECT_NE(line.find(" 3 calls"), std::string::npos) << line;
  const double ms = std::stod(line.substr(line.find("test_memset") + 11));
  EXPECT_GT(ms, 0.0) << line;
  EXPECT_EQ(line_of(mode + "/gpu/test_inner"), "") << PhaseProfile::report();
  EXPECT_EQ(line_of(mode + "/gpu/test_off"), "") << PhaseProfile::report();
  cudaFree(buf);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace ltri
