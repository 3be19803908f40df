#include "core/phase_profile.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace ltri {

namespace {

struct Totals {
  double ms = 0.0;
  int64_t calls = 0;
};

// The process's totals; the destructor prints them, so a profiled run needs no extra call.
struct Registry {
  std::mutex mutex;
  // Until the first forward pass: model loading (weight uploads are GPU ops under LTRI_PROFILE=gpu).
  std::string mode = "load";
  std::map<std::string, Totals> phases;
  ~Registry() {
    if (!phases.empty()) std::fputs(report_locked().c_str(), stderr);
  }
  std::string report_locked() const {
    std::string out;
    char line[256];
    for (const auto& [name, t] : phases) {
      std::snprintf(line, sizeof line, "profile  %-34s %12.1f ms %9lld calls %10.4f ms/call\n", name.c_str(), t.ms,
                    static_cast<long long>(t.calls), t.calls > 0 ? t.ms / double(t.calls) : 0.0);
      out += line;
    }
    return out;
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

bool PhaseProfile::enabled() {
  static const bool on = [] {
    const char* v = std::getenv("LTRI_PROFILE");
    return v != nullptr && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
  }();
  return on;
}

bool PhaseProfile::phases_enabled() {
  static const bool on = enabled() && std::strcmp(std::getenv("LTRI_PROFILE"), "gpu") != 0;
  return on;
}

void PhaseProfile::set_mode(const char* mode) {
  if (!enabled()) return;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.mode = mode;
}

void PhaseProfile::add(const char* name, double ms) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  Totals& t = r.phases[r.mode + "/" + name];
  t.ms += ms;
  ++t.calls;
}

void PhaseProfile::add_in(const std::string& mode, const std::string& name, double ms) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  Totals& t = r.phases[mode + "/" + name];
  t.ms += ms;
  ++t.calls;
}

std::string PhaseProfile::mode() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.mode;
}

std::string PhaseProfile::report() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.report_locked();
}

}  // namespace ltri
