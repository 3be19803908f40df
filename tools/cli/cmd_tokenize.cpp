// ltri tokenize: the ids of a text, as one JSON array on stdout. Needs only tokenizer.json, so
// -m may name a directory that holds nothing else, or the tokenizer.json file itself.
#include <memory>
#include <string>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri::cli {

namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::string prompt;
  std::string prompt_file;
  bool no_bos = false;
  bool no_special = false;
};

int run_tokenize(const TokenizeOptions& o, bool prompt_given, bool file_given) {
  const std::string dir = model_dir_from_flag(o.model_dir);
  const std::string text = prompt_text(o.prompt, o.prompt_file, prompt_given, file_given);
  const Tokenizer tokenizer = Tokenizer::load(dir);
  EncodeOptions encode;
  encode.add_special_tokens = !o.no_bos;
  encode.parse_special = !o.no_special;
  const std::vector<int32_t> ids = tokenizer.encode(text, encode);
  std::string json = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) json += ", ";
    json += std::to_string(ids[i]);
  }
  json += "]\n";
  write_stdout(json);
  return 0;
}

}  // namespace

Subcommand add_tokenize_command(CLI::App& parent) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* app = parent.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  app->add_option("-m,--model", o->model_dir,
                  "Model directory holding tokenizer.json, or the tokenizer.json file "
                  "(default: $LTRI_MODEL_DIR, else the bundled model)");
  CLI::Option* p = app->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  CLI::Option* f = app->add_option("-f,--file", o->prompt_file, "Read the text from FILE");
  p->excludes(f);
  f->excludes(p);
  app->add_flag("--no-bos", o->no_bos,
                "Do not add the tokenizer's special tokens (BOS) around the text");
  app->add_flag("--no-special", o->no_special,
                "Treat special tokens written in the text (<|eot_id|>) as plain text");
  return {app, [o, p, f] {
            require_prompt(p, f);
            return run_tokenize(*o, p->count() > 0, f->count() > 0);
          }};
}

}  // namespace ltri::cli
