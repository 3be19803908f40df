#pragma once
// The --attn flag and the --attn-* parameters of the KV policies, shared by every subcommand
// that runs a model (run, bench, eval, ...), so each spells and checks them the same way.
#include <CLI/CLI.hpp>

#include "kv/attention_options.hpp"

namespace ltri::cli {

// Registers --attn and the --attn-* options on `app`, writing into `options` (which must
// outlive parsing). Value checks that need no model happen here, as usage errors.
void add_attention_flags(CLI::App* app, AttentionOptions& options);

// The --attn-* parameters alone, for a command that registers its own --attn (ltri bench takes
// a list of policies there).
void add_attention_parameter_flags(CLI::App* app, AttentionOptions& options);

// The help group both put their options in.
constexpr const char* kAttentionFlagGroup = "Attention (KV policy, see docs/kv-policies.md)";

}  // namespace ltri::cli
