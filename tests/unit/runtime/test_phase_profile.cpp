// PhaseProfile sums milliseconds and calls per phase under the current mode, and reports the
// phases sorted by name (so a phase's sub-phases follow it).
#include <gtest/gtest.h>

#include <string>

#include "core/phase_profile.hpp"

namespace ltri {
namespace {

TEST(PhaseProfile, sums_time_and_calls_per_mode_and_phase) {
  PhaseProfile::set_mode("prefill");  // ignored when LTRI_PROFILE is unset: the mode stays as it was
  const std::string mode = PhaseProfile::mode();
  PhaseProfile::add("test_zeta", 1.5);
  PhaseProfile::add("test_zeta", 2.0);
  PhaseProfile::add("test_alpha", 0.25);
  const std::string report = PhaseProfile::report();
  const size_t alpha = report.find(mode + "/test_alpha");
  const size_t zeta = report.find(mode + "/test_zeta");
  ASSERT_NE(alpha, std::string::npos) << report;
  ASSERT_NE(zeta, std::string::npos) << report;
  EXPECT_LT(alpha, zeta) << "phases are listed by name";
  const std::string zeta_line = report.substr(zeta, report.find('\n', zeta) - zeta);
  EXPECT_NE(zeta_line.find(" 3.5 ms"), std::string::npos) << zeta_line;
  EXPECT_NE(zeta_line.find(" 2 calls"), std::string::npos) << zeta_line;
  EXPECT_NE(zeta_line.find("1.7500 ms/call"), std::string::npos) << zeta_line;
}

TEST(PhaseProfile, add_in_files_a_time_under_the_mode_given) {
  PhaseProfile::add_in("decode", "test_gpu/op", 0.5);
  PhaseProfile::add_in("decode", "test_gpu/op", 1.5);
  const std::string report = PhaseProfile::report();
  const size_t at = report.find("decode/test_gpu/op");
  ASSERT_NE(at, std::string::npos) << report;
  const std::string line = report.substr(at, report.find('\n', at) - at);
  EXPECT_NE(line.find(" 2.0 ms"), std::string::npos) << line;
  EXPECT_NE(line.find(" 2 calls"), std::string::npos) << line;
  EXPECT_FALSE(PhaseProfile::mode().empty());
}

}  // namespace
}  // namespace ltri
