#pragma once
// Where the time goes: wall time summed per named phase over a whole process, for finding the
// slow part of a forward pass (which op, which step of a KV policy). Off unless the environment
// sets LTRI_PROFILE=1; then the totals go to stderr when the process exits, one line per phase,
// prefill and decode chunks apart (phase names get the mode's prefix). LTRI_PROFILE=gpu instead
// collects the CUDA backend's GPU time per op (kernels/cuda/cuda_op_timer.hpp) into the same
// report, with the phases' synchronisations off.
//
// Costs nothing when off (one branch). When on, ops/profile_scope.hpp synchronises the backend
// at both ends of a phase, so the GPU work a phase enqueued is charged to it and not to the next
// phase that waits; profiled runs are therefore slower than plain ones and only the split
// between phases is meaningful.
#include <cstdint>
#include <string>

namespace ltri {

class PhaseProfile {
 public:
  static bool enabled();         // LTRI_PROFILE set (to anything but "" or "0")
  static bool phases_enabled();  // enabled() and not LTRI_PROFILE=gpu: ProfileScope times phases
  // The mode prefixed to every phase until the next call ("prefill", "decode"; "load" before
  // the first call).
  static void set_mode(const char* mode);
  // Adds `ms` milliseconds to phase `name` under the current mode.
  static void add(const char* name, double ms);
  // The same under an explicit mode (times measured later than the mode they belong to).
  static void add_in(const std::string& mode, const std::string& name, double ms);
  static std::string mode();  // the current mode
  // One line per phase: "profile  decode/attention  1234.5 ms  32000 calls  0.039 ms/call",
  // sorted by name, so a phase's sub-phases ("policy", "policy/evict") follow it.
  static std::string report();
};

}  // namespace ltri
