// Loading: tokenizer.json -> Tokenizer::Impl, plus the names tokenizer_config.json gives
// (bos/eos token, chat template). Each stage is built by its own factory; this file only
// wires them together and checks that the pieces agree (added-token ids vs the vocab).
#include <algorithm>
#include <filesystem>

#include "core/mapped_file.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace ltri {
namespace {

namespace fs = std::filesystem;

// A token name in tokenizer_config.json: "<s>" or {"content": "<s>", ...} (AddedToken form).
std::string config_token(const Json& config, const char* key, const JsonPath& path) {
  const Json* v = optional_field(config, key, path);
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return string_field(*v, "content", path / key);
  (path / key).fail("expected a string or {\"content\": ...}, got ", v->type_name());
}

// chat_template is a string, or a list of {"name", "template"} (we take "default").
std::string config_chat_template(const Json& config, const JsonPath& path) {
  const Json* v = optional_field(config, "chat_template", path);
  if (!v) return {};
  if (v->is_string()) return v->get<std::string>();
  const JsonPath list_path = path / "chat_template";
  const Json& list = as_array(*v, list_path);
  std::string first;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = string_field(list[i], "name", list_path[i]);
    const std::string text = string_field(list[i], "template", list_path[i]);
    if (name == "default") return text;
    if (i == 0) first = text;
  }
  return first;
}

void build(Tokenizer::Impl& impl, const Json& root) {
  const JsonPath top(impl.source, "");
  as_object(root, top);
  impl.model = BpeModel::from_json(require_field(root, "model", top), top / "model");
  const auto stage = [&](const char* key) -> const Json& {
    static const Json kNull;
    const Json* v = optional_field(root, key, top);
    return v ? *v : kNull;
  };
  impl.normalizer = make_normalizer(stage("normalizer"), top / "normalizer");
  impl.pre_tokenizer = make_pre_tokenizer(stage("pre_tokenizer"), top / "pre_tokenizer");
  impl.post_processor = make_post_processor(stage("post_processor"), top / "post_processor");
  impl.decoder = make_decoder(stage("decoder"), top / "decoder");

  const JsonPath added_path = top / "added_tokens";
  if (const Json* list = optional_field(root, "added_tokens", top)) {
    impl.added = parse_added_tokens(*list, added_path, impl.normalizer.get());
  }
  int32_t max_id = impl.model->max_id();
  for (size_t i = 0; i < impl.added.size(); ++i) {
    const AddedToken& t = impl.added[i];
    // HF takes the vocab's id for a content the vocab already has; a file that says
    // otherwise is inconsistent, and we would rather say so than guess.
    const int32_t vocab_id = impl.model->token_to_id(t.content);
    if (vocab_id >= 0 && vocab_id != t.id) {
      added_path.fail("'", t.content, "' has id ", t.id, " but the vocab gives it id ", vocab_id);
    }
    const std::string* vocab_token = impl.model->id_to_token(t.id);
    if (vocab_token && *vocab_token != t.content) {
      added_path.fail("'", t.content, "' has id ", t.id, ", which the vocab gives to '", *vocab_token, "'");
    }
    impl.added_by_id.emplace(t.id, i);
    impl.added_by_content.emplace(t.content, t.id);
    max_id = std::max(max_id, t.id);
  }
  impl.vocab_size = max_id + 1;
  if (impl.post_processor) {
    // The ids a post-processor adds must be tokens, or the model would index past its table.
    std::vector<int32_t> added_ids;
    impl.post_processor->process(added_ids);
    for (int32_t id : added_ids) {
      if (!impl.token_text(id)) (top / "post_processor").fail("special token id ", id, " is not in the vocabulary");
    }
  }
  impl.raw_matcher = AddedTokenMatcher(impl.added, /*normalized_tokens=*/false);
  impl.normalized_matcher = AddedTokenMatcher(impl.added, /*normalized_tokens=*/true);
}

}  // namespace

Tokenizer Tokenizer::from_json(const std::string& json_text, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    fail(source, ": not valid JSON: ", e.what());
  }
  try {
    build(*impl, root);
  } catch (const Json::exception& e) {
    // Field access goes through json_fields.hpp, which checks types first; this is a net.
    fail(source, ": ", e.what());
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  const std::string file = is_dir ? (fs::path(path) / "tokenizer.json").string() : path;
  if (!fs::exists(file, ec)) {
    fail(file, ": no such file", is_dir ? " (the directory has no tokenizer.json)" : "");
  }
  Tokenizer tokenizer = from_json(read_text_file(file), file);

  const fs::path config_path = fs::path(file).parent_path() / "tokenizer_config.json";
  if (fs::exists(config_path, ec)) {
    const std::string config_file = config_path.string();
    Json config;
    try {
      config = Json::parse(read_text_file(config_file));
    } catch (const Json::exception& e) {
      fail(config_file, ": not valid JSON: ", e.what());
    }
    const JsonPath top(config_file, "");
    try {
      as_object(config, top);
      Impl& impl = *tokenizer.impl_;
      impl.bos_token = config_token(config, "bos_token", top);
      impl.eos_token = config_token(config, "eos_token", top);
      impl.chat_template = config_chat_template(config, top);
    } catch (const Json::exception& e) {
      fail(config_file, ": ", e.what());
    }
  }
  return tokenizer;
}

}  // namespace ltri
