#pragma once
// GPU time per backend op, from CUDA events on the backend's stream: what each kernel (and each
// copy) costs on the device, without the host synchronisations of LTRI_PROFILE=1's phases, which
// change the timeline they measure (a decode step's ops are a few microseconds each, the same
// order as a synchronisation). On when LTRI_PROFILE=gpu; the totals join core/phase_profile.hpp's
// report as "<mode>/gpu/<op>" lines.
//
// An op's time is from the event before its first launch to the event after its last, so it
// includes the gaps the GPU waited on the host in between (a synchronous download, a launch the
// host had not issued yet): an op that is all gaps shows host-bound code, not a slow kernel.
#include <string>
#include <vector>

struct CUevent_st;
struct CUstream_st;

namespace ltri {

class CudaOpTimer {
 public:
  // Records on `stream` when `on` (CudaBackend passes enabled()); else every Scope is a no-op.
  CudaOpTimer(CUstream_st* stream, bool on);
  ~CudaOpTimer();  // adds what is still pending to the profile
  CudaOpTimer(const CudaOpTimer&) = delete;
  CudaOpTimer& operator=(const CudaOpTimer&) = delete;

  static bool enabled();  // LTRI_PROFILE=gpu
  bool on() const { return on_; }

  class Scope {
   public:
    Scope(CudaOpTimer& timer, const char* name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CudaOpTimer* timer_ = nullptr;  // null when off
    size_t index_ = 0;              // into timer_->pending_
  };

 private:
  struct Pending {
    CUevent_st* start;
    CUevent_st* end;
    const char* name;
    std::string mode;  // the profile mode when the op ran ("prefill", "decode")
  };
  CUevent_st* take_event();
  // Waits for every pending op's end event, adds the times to the profile, recycles the events.
  void flush();

  CUstream_st* stream_;
  bool on_;
  std::vector<Pending> pending_;
  std::vector<CUevent_st*> free_;
};

}  // namespace ltri
