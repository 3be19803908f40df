#include "kernels/cuda/cuda_op_timer.hpp"

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

#include "core/phase_profile.hpp"
#include "kernels/cuda/cuda_check.hpp"

namespace ltri {

namespace {

// Pending ops resolved at once: enough that a flush (which waits for the GPU) comes rarely, few
// enough that the events stay a small pool (two per op).
constexpr size_t kFlushEvery = 4096;

}  // namespace

bool CudaOpTimer::enabled() {
  static const bool on = [] {
    const char* v = std::getenv("LTRI_PROFILE");
    return v != nullptr && std::strcmp(v, "gpu") == 0;
  }();
  return on;
}

CudaOpTimer::CudaOpTimer(CUstream_st* stream, bool on) : stream_(stream), on_(on) {}

CudaOpTimer::~CudaOpTimer() {
  try {
    flush();
  } catch (...) {  // a device error was reported by the op that met it
  }
  for (CUevent_st* e : free_) cudaEventDestroy(e);
}

CUevent_st* CudaOpTimer::take_event() {
  if (!free_.empty()) {
    CUevent_st* e = free_.back();
    free_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  LTRI_CUDA_CHECK(cudaEventCreate(&e));
  return e;
}

void CudaOpTimer::flush() {
  if (pending_.empty()) return;
  LTRI_CUDA_CHECK(cudaEventSynchronize(pending_.back().end));
  for (const Pending& p : pending_) {
    float ms = 0.0f;
    LTRI_CUDA_CHECK(cudaEventElapsedTime(&ms, p.start, p.end));
    PhaseProfile::add_in(p.mode, std::string("gpu/") + p.name, ms);
    free_.push_back(p.start);
    free_.push_back(p.end);
  }
  pending_.clear();
}

CudaOpTimer::Scope::Scope(CudaOpTimer& timer, const char* name) {
  if (!timer.on_) return;
  // Nested ops (matmul_weight calling matmul) are charged to the outer one only.
  if (!timer.pending_.empty() && timer.pending_.back().end == nullptr) return;
  if (timer.pending_.size() >= kFlushEvery) timer.flush();
  timer_ = &timer;
  index_ = timer.pending_.size();
  CUevent_st* start = timer.take_event();
  LTRI_CUDA_CHECK(cudaEventRecord(start, timer.stream_));
  timer.pending_.push_back({start, nullptr, name, PhaseProfile::mode()});
}

CudaOpTimer::Scope::~Scope() {
  if (!timer_) return;
  try {
    CUevent_st* end = timer_->take_event();
    LTRI_CUDA_CHECK(cudaEventRecord(end, timer_->stream_));
    timer_->pending_[index_].end = end;
  } catch (...) {  // the op's own error is the one worth reporting
    timer_->free_.push_back(timer_->pending_[index_].start);
    timer_->pending_.resize(index_);
  }
}

}  // namespace ltri
