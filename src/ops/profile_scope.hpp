#pragma once
// A phase of core/phase_profile.hpp, timed from construction to destruction, with the backend
// synchronised at both ends so asynchronous GPU work lands in the phase that enqueued it. Does
// nothing (no sync, no clock read) unless LTRI_PROFILE is set (and is not "gpu", whose per-op
// GPU times must not be disturbed by synchronisations).
#include "core/phase_profile.hpp"
#include "core/timer.hpp"
#include "ops/backend.hpp"

namespace ltri {

class ProfileScope {
 public:
  ProfileScope(Backend& backend, const char* name) : backend_(backend), name_(name), on_(PhaseProfile::phases_enabled()) {
    if (!on_) return;
    backend_.synchronize();
    timer_.reset();
  }
  ~ProfileScope() {
    if (!on_) return;
    try {
      backend_.synchronize();
    } catch (...) {  // a device error surfaces at the next op, with its own message
    }
    PhaseProfile::add(name_, timer_.elapsed_ms());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  Backend& backend_;
  const char* name_;
  bool on_;
  Timer timer_;
};

}  // namespace ltri
