#pragma once
// What the ltri subcommands share: how each one registers itself, the model-directory and
// prompt options, and flag validators whose messages name the flag and the value given.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>

#include "model/model.hpp"

namespace ltri::cli {

constexpr const char* kVersion = "0.1.0";

// A registered subcommand: its CLI11 app and the function that runs it after parsing
// (returns the exit status; throws ltri::Error for failures main turns into "error: ...").
struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> execute;
};

Subcommand add_run_command(CLI::App& parent);
Subcommand add_tokenize_command(CLI::App& parent);
Subcommand add_bench_command(CLI::App& parent);
Subcommand add_eval_command(CLI::App& parent);
Subcommand add_heads_command(CLI::App& parent);
Subcommand add_calibrate_command(CLI::App& parent);
Subcommand add_attn_command(CLI::App& parent);

// -m DIR, else $LTRI_MODEL_DIR, else the bundled model (LTRI_DEFAULT_MODEL_DIR at build time).
std::string model_dir_from_flag(const std::string& flag);

// The prompt of -p TEXT or -f FILE (exactly one must be given; CLI11 enforces "not both").
std::string prompt_text(const std::string& text_flag, const std::string& file_flag,
                        bool text_given, bool file_given);

// Throws CLI::RequiredError (a usage error) unless -p or -f was given.
void require_prompt(const CLI::Option* text_option, const CLI::Option* file_option);

// Flag validators: the error reads "<flag>: must be ..., got <value>".
CLI::Validator integer_at_least(int64_t min);
CLI::Validator finite_number();
CLI::Validator probability_in_open_closed_unit();  // (0, 1]

// --device cpu|cuda. A build without the CUDA backend refuses cuda here, before any loading.
Device parse_device(const std::string& name);
// --weights auto|f32|bf16: the dtype weight matrices are computed in (model/model.hpp).
WeightPrecision parse_weight_precision(const std::string& name);
// Registers --weights on `app`, bound to `value` (default "auto").
void add_weights_flag(CLI::App* app, std::string& value);
// Whether this binary was built with the CUDA backend.
bool built_with_cuda();

// Writes a piece of generated text to stdout and flushes it, so it appears as it is made.
void write_stdout(std::string_view text);

}  // namespace ltri::cli
