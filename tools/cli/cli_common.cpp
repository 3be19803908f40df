#include "cli_common.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "runtime/model_dir.hpp"

#ifndef LTRI_DEFAULT_MODEL_DIR
#define LTRI_DEFAULT_MODEL_DIR ""
#endif

namespace ltri::cli {

std::string model_dir_from_flag(const std::string& flag) {
  return resolve_model_dir(flag, LTRI_DEFAULT_MODEL_DIR);
}

std::string prompt_text(const std::string& text_flag, const std::string& file_flag, bool text_given,
                        bool file_given) {
  if (text_given) return text_flag;
  if (file_given) return read_text_file(file_flag);
  fail("no prompt: give -p TEXT or -f FILE");
}

void require_prompt(const CLI::Option* text_option, const CLI::Option* file_option) {
  if (text_option->count() == 0 && file_option->count() == 0) {
    throw CLI::RequiredError("no prompt: give -p TEXT or -f FILE", CLI::ExitCodes::RequiredError);
  }
}

namespace {

// strtod / strtoll over the whole string; false if anything is left over.
bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

CLI::Validator integer_at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || end != value.c_str() + value.size() || errno == ERANGE) {
          return cat("expected an integer, got '", value, "'");
        }
        if (v < min) return cat("must be >= ", min, ", got ", v);
        return {};
      },
      cat(">=", min));
}

CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double v = 0.0;
        if (!parse_double(value, v)) return cat("expected a number, got '", value, "'");
        if (!std::isfinite(v)) return cat("must be a finite number, got '", value, "'");
        return {};
      },
      "finite");
}

CLI::Validator probability_in_open_closed_unit() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double v = 0.0;
        if (!parse_double(value, v)) return cat("expected a number, got '", value, "'");
        if (!(v > 0.0 && v <= 1.0)) return cat("must be in (0, 1], got ", value);
        return {};
      },
      "in (0,1]");
}

bool built_with_cuda() {
#ifdef LTRI_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") {
    if (!built_with_cuda()) fail("--device cuda: this build has no CUDA backend (rebuild with -DLTRI_CUDA=ON)");
    return Device::Cuda;
  }
  fail("--device: expected cpu or cuda, got '", name, "'");
}

WeightPrecision parse_weight_precision(const std::string& name) {
  if (name == "auto") return WeightPrecision::Auto;
  if (name == "f32") return WeightPrecision::F32;
  if (name == "bf16") return WeightPrecision::Bf16;
  fail("--weights: expected auto, f32 or bf16, got '", name, "'");
}

void add_weights_flag(CLI::App* app, std::string& value) {
  app->add_option("--weights", value,
                  "Weight matrices computed in: bf16 (CUDA only: half the memory, tensor cores), f32, or auto "
                  "(bf16 for --random-weights of a bfloat16 config on CUDA, else f32)")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}))
      ->capture_default_str();
}

void write_stdout(std::string_view text) {
  if (text.empty()) return;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    fail("stdout: write failed: ", std::strerror(errno));
  }
}

}  // namespace ltri::cli
