#include "niah_task.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>

#include "core/error.hpp"

namespace ltri::eval {

const std::vector<NiahSpec>& niah_specs() {
  using H = NiahHaystack;
  using K = NiahKey;
  using V = NiahValue;
  static const std::vector<NiahSpec> specs = {
      {"niah_single_1", H::Noise, K::Word, V::Number, 0, 1, 1},
      {"niah_single_2", H::Prose, K::Word, V::Number, 0, 1, 1},
      {"niah_single_3", H::Prose, K::Word, V::Uuid, 0, 1, 1},
      {"niah_multikey_1", H::Prose, K::Word, V::Number, 3, 1, 1},
      {"niah_multikey_2", H::Needles, K::Word, V::Number, 0, 1, 1},
      {"niah_multikey_3", H::Needles, K::Uuid, V::Uuid, 0, 1, 1},
      {"niah_multivalue", H::Prose, K::Word, V::Number, 0, 4, 1},
      {"niah_multiquery", H::Prose, K::Word, V::Number, 0, 1, 4},
  };
  return specs;
}

std::string niah_task_names() {
  std::string names;
  for (const NiahSpec& s : niah_specs()) names += (names.empty() ? "" : ", ") + s.name;
  return names;
}

const NiahSpec& find_niah_spec(std::string_view name) {
  for (const NiahSpec& s : niah_specs()) {
    if (s.name == name) return s;
  }
  fail("--task: unknown task '", name, "' (one of: ", niah_task_names(), ")");
}

bool niah_needs_prose(const NiahSpec& spec) { return spec.haystack == NiahHaystack::Prose; }
bool niah_needs_words(const NiahSpec& spec) {
  return spec.key == NiahKey::Word || spec.value == NiahValue::Word;
}

std::string random_uuid(EvalRng& rng) {
  const uint64_t a = rng.next(), b = rng.next();
  char text[40];
  std::snprintf(text, sizeof text, "%08llx-%04llx-4%03llx-%c%03llx-%012llx",
                (unsigned long long)(a >> 32), (unsigned long long)((a >> 16) & 0xFFFF),
                (unsigned long long)(a & 0xFFF), "89ab"[b >> 62], (unsigned long long)((b >> 48) & 0xFFF),
                (unsigned long long)(b & 0xFFFFFFFFFFFFull));
  return text;
}

namespace {

const char* type_singular(NiahValue v) {
  return v == NiahValue::Number ? "number" : v == NiahValue::Uuid ? "uuid" : "word";
}
const char* type_plural(NiahValue v) {
  return v == NiahValue::Number ? "numbers" : v == NiahValue::Uuid ? "uuids" : "words";
}

const std::string& pick(const std::vector<std::string>& words, EvalRng& rng) {
  return words[rng.below(words.size())];
}

// Draws keys and values; shared with the needle-haystack stream, which draws with its own rng.
struct Drawer {
  const NiahSpec* spec;
  const WordList* words;

  std::string key(EvalRng& rng) const {
    if (spec->key == NiahKey::Uuid) return random_uuid(rng);
    const std::string& a = pick(words->heldout(), rng);
    return a + "-" + pick(words->heldout(), rng);
  }
  std::string value(EvalRng& rng) const {
    if (spec->value == NiahValue::Number) return cat(rng.between(1000000, 9999999));
    if (spec->value == NiahValue::Uuid) return random_uuid(rng);
    return pick(words->heldout(), rng);
  }
  std::string needle(const std::string& key, const std::string& value) const {
    return cat("One of the special magic ", type_plural(spec->value), " for ", key, " is: ", value, ".");
  }
};

// `count` different values from `make`.
template <class Make>
std::vector<std::string> distinct(size_t count, Make make) {
  std::vector<std::string> out;
  while (out.size() < count) {
    std::string v = make();
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

TaskInstance make_niah(const NiahSpec& spec, const NiahSources& sources, EvalRng& rng, double depth) {
  if (niah_needs_words(spec) && sources.words == nullptr) fail(spec.name, ": needs a word list (--words)");
  if (niah_needs_prose(spec) && sources.prose == nullptr) fail(spec.name, ": needs a prose haystack (--haystack)");
  const Drawer draw{&spec, sources.words};

  const std::vector<std::string> keys = distinct(size_t(spec.queries + spec.distractors), [&] { return draw.key(rng); });
  TaskInstance t;
  t.task = spec.name;
  t.scoring = Scoring::StringMatchAll;
  const int n_targets = spec.queries * spec.values;
  for (int q = 0; q < spec.queries; ++q) {
    for (const std::string& v : distinct(size_t(spec.values), [&] { return draw.value(rng); })) {
      const int i = int(t.needles.size());
      const double d = std::clamp(depth + 0.1 * (i - (n_targets - 1) / 2.0), 0.0, 1.0);
      t.needles.push_back({draw.needle(keys[size_t(q)], v), d, true});
      t.expected.push_back(v);
    }
  }
  for (int k = 0; k < spec.distractors; ++k) {
    t.needles.push_back({draw.needle(keys[size_t(spec.queries + k)], draw.value(rng)), rng.unit(), false});
  }

  if (spec.haystack == NiahHaystack::Prose) {
    t.haystack = prose_units(*sources.prose, rng);
  } else if (spec.haystack == NiahHaystack::Needles) {
    // Other keys' needles, drawn from their own stream so the haystack's length does not
    // change what else is drawn; a key equal to an asked one is drawn again.
    auto hay_rng = std::make_shared<EvalRng>(rng.next());
    std::vector<std::string> asked(keys.begin(), keys.begin() + spec.queries);
    t.haystack = UnitStream(
        [draw, hay_rng, asked](size_t) {
          std::string key = draw.key(*hay_rng);
          while (std::find(asked.begin(), asked.end(), key) != asked.end()) key = draw.key(*hay_rng);
          return HaystackUnit{draw.needle(key, draw.value(*hay_rng)), ' '};
        },
        std::numeric_limits<size_t>::max());
  }

  const std::string types = type_plural(spec.value);
  std::vector<std::string> asked(keys.begin(), keys.begin() + spec.queries);
  const std::string asked_text = join_values(asked);
  t.parts.before = cat("Some special magic ", types, " are hidden within the following text. Make sure to memorize it. ",
                       "I will quiz you about the ", types, " afterwards.\n");
  t.parts.after = "\n";
  if (n_targets == 1) {
    const std::string type = type_singular(spec.value);
    t.parts.question = cat("What is the special magic ", type, " for ", asked_text, " mentioned in the provided text?");
    t.parts.answer_prefix = cat("The special magic ", type, " for ", asked_text, " mentioned in the provided text is");
  } else {
    t.parts.question = cat("What are all the special magic ", types, " for ", asked_text, " mentioned in the provided text?");
    t.parts.answer_prefix = cat("The special magic ", types, " for ", asked_text, " mentioned in the provided text are");
  }
  return t;
}

}  // namespace ltri::eval
