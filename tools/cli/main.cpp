// ltri: the command-line tool. Generated text goes to stdout; everything else (progress,
// timings, errors) to stderr. Every failure becomes one line "error: <message>" on stderr:
// exit 1 for run-time errors (bad files, prompt over the context), 2 for command-line misuse.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <new>
#include <regex>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "ops/blas_core.hpp"

namespace {

// One line, whatever the message holds (a CLI11 or library message could carry a newline).
void print_error(const std::string& message, const std::string& hint = "") {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "error: %s%s\n", line.c_str(), hint.c_str());
}

// CLI11's wording, made plain where it is cryptic: "--temp: 1 required FLOAT:finite missing"
// becomes "--temp: needs a value", "--prompt excludes --file" becomes "--prompt and --file
// cannot be used together".
std::string usage_message(const CLI::ParseError& e) {
  const std::string message = e.what();
  std::smatch m;
  if (std::regex_match(message, m, std::regex(R"((\S+): [0-9]+ required .+ missing)"))) {
    return m[1].str() + ": needs a value";
  }
  if (std::regex_match(message, m, std::regex(R"((\S+) excludes (\S+))"))) {
    return m[1].str() + " and " + m[2].str() + " cannot be used together";
  }
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  ltri::use_the_cpus_blas_kernels(argv);  // may restart the program once (ops/blas_core.hpp)
  using namespace ltri::cli;
  CLI::App app{"ltri: inference for Llama-family models in Hugging Face format", "ltri"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ltri ") + kVersion +
                                        (built_with_cuda() ? " (CPU; CUDA backend built)" : " (CPU)"));
  std::vector<Subcommand> commands;
  try {
    commands.push_back(add_run_command(app));
    commands.push_back(add_tokenize_command(app));
    commands.push_back(add_bench_command(app));
    commands.push_back(add_eval_command(app));
    commands.push_back(add_heads_command(app));
    commands.push_back(add_calibrate_command(app));
    commands.push_back(add_attn_command(app));
  } catch (const std::exception& e) {  // a defect in the option tables themselves
    print_error(e.what());
    return 1;
  }

  // CLI11 words a missing or misspelt command as "A subcommand is required"; say which exist.
  std::string names;
  bool known = false;
  for (const Subcommand& c : commands) {
    names += (names.empty() ? "" : ", ") + c.app->get_name();
    known = known || (argc > 1 && c.app->get_name() == argv[1]);
  }
  if (argc == 1) {
    print_error("no command given (one of: " + names + "; see 'ltri --help')");
    return 2;
  }
  if (argv[1][0] != '-' && !known) {
    print_error(std::string("unknown command '") + argv[1] + "' (one of: " + names + "; see 'ltri --help')");
    return 2;
  }

  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
      return app.exit(e);
    }
    for (const Subcommand& c : commands) {
      if (c.app->parsed()) return c.execute();
    }
    print_error("no command given (see 'ltri --help')");
    return 2;
  } catch (const CLI::ParseError& e) {
    // Command-line misuse (also found after parsing, e.g. neither -p nor -f): point at the
    // help of the subcommand being parsed.
    std::string name = "ltri";
    for (const Subcommand& c : commands) {
      if (c.app->parsed()) name = "ltri " + c.app->get_name();
    }
    print_error(usage_message(e), " (see '" + name + " --help')");
    return 2;
  } catch (const ltri::Error& e) {
    std::fflush(stdout);
    print_error(e.what());
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    print_error("out of memory");
  } catch (const std::exception& e) {
    std::fflush(stdout);
    print_error(e.what());
  } catch (...) {
    print_error("unexpected failure");
  }
  return 1;
}
