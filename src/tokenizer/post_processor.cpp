// Post-processors: what encode(add_special_tokens=True) adds around a single sequence. Llama-2
// files use TemplateProcessing ([<s>, $A]); byte-level files often only have ByteLevel, whose
// job (trimming offsets) does not touch ids -- so such a Llama-3 file adds no BOS, exactly as
// HF's `tokenizers` behaves with it.
#include <vector>

#include "tokenizer/components.hpp"

namespace ltri {
namespace {

class NoOpPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
  std::vector<int32_t> leading_ids() const override { return {}; }
};

// The "single" template: a list of special-token id runs and the sequence ($A) between them.
class TemplatePostProcessor final : public PostProcessor {
 public:
  TemplatePostProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }
  std::vector<int32_t> leading_ids() const override { return before_; }

 private:
  std::vector<int32_t> before_;  // special ids before the sequence
  std::vector<int32_t> after_;   // special ids after it
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& step : steps_) step->process(ids);
  }
  std::vector<int32_t> leading_ids() const override {
    std::vector<int32_t> ids;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      std::vector<int32_t> lead = (*it)->leading_ids();
      ids.insert(ids.begin(), lead.begin(), lead.end());
    }
    return ids;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> make_template(const Json& json, const JsonPath& path) {
  const JsonPath single_path = path / "single";
  const Json& single = as_array(require_field(json, "single", path), single_path);
  const JsonPath specials_path = path / "special_tokens";
  const Json* specials = optional_field(json, "special_tokens", path);
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const JsonPath item_path = single_path[i];
    const Json& item = as_object(single[i], item_path);
    if (const Json* seq = optional_field(item, "Sequence", item_path)) {
      const std::string id = string_field(*seq, "id", item_path / "Sequence");
      if (id != "A") (item_path / "Sequence" / "id").fail("a single-sequence template must use $A, got '", id, "'");
      if (seen_sequence) item_path.fail("$A appears twice");
      seen_sequence = true;
      continue;
    }
    const Json* special = optional_field(item, "SpecialToken", item_path);
    if (!special) item_path.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    const std::string name = string_field(*special, "id", item_path / "SpecialToken");
    if (!specials) specials_path.fail("missing, but the template uses '", name, "'");
    const Json& entry = require_field(*specials, name, specials_path);
    const JsonPath ids_path = specials_path / name / "ids";
    const Json& ids = as_array(require_field(entry, "ids", specials_path / name), ids_path);
    for (size_t k = 0; k < ids.size(); ++k) {
      const int64_t id = as_int(ids[k], ids_path[k]);
      if (id < 0 || id >= (int64_t{1} << 24)) ids_path[k].fail("id ", id, " is out of range");
      (seen_sequence ? after : before).push_back(static_cast<int32_t>(id));
    }
  }
  if (!seen_sequence) single_path.fail("the template has no $A");
  return std::make_unique<TemplatePostProcessor>(std::move(before), std::move(after));
}

// BertProcessing / RobertaProcessing: [cls] $A [sep], the tokens given as ["text", id].
std::unique_ptr<PostProcessor> make_cls_sep(const Json& json, const JsonPath& path) {
  const auto read = [&](const char* key) {
    const JsonPath p = path / key;
    const Json& pair = as_array(require_field(json, key, path), p);
    if (pair.size() != 2) p.fail("expected [\"token\", id]");
    const int64_t id = as_int(pair[1], p[1]);
    if (id < 0 || id >= (int64_t{1} << 24)) p[1].fail("id ", id, " is out of range");
    return static_cast<int32_t>(id);
  };
  return std::make_unique<TemplatePostProcessor>(std::vector<int32_t>{read("cls")},
                                                 std::vector<int32_t>{read("sep")});
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& json, const JsonPath& path) {
  if (json.is_null()) return nullptr;
  const std::string type = component_type(json, path);
  if (type == "ByteLevel") return std::make_unique<NoOpPostProcessor>();
  if (type == "TemplateProcessing") return make_template(json, path);
  if (type == "BertProcessing" || type == "RobertaProcessing") return make_cls_sep(json, path);
  if (type == "Sequence") {
    const JsonPath list_path = path / "processors";
    const Json& list = as_array(require_field(json, "processors", path), list_path);
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_null()) list_path[i].fail("expected a post-processor, got null");
      steps.push_back(make_post_processor(list[i], list_path[i]));
    }
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  path.fail("type '", type,
            "' is not supported (supported post-processors: TemplateProcessing, ByteLevel, "
            "BertProcessing, RobertaProcessing, Sequence)");
}

}  // namespace ltri
