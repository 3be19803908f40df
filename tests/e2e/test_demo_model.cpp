// The bundled demo model really retrieves: a pass key hidden in ~1K tokens of held-out prose
// (data/heldout, never trained on), asked in the InfiniteBench / Landmark passkey format of
// docs/eval.md, is answered exactly by greedy decoding through the runtime Engine, and the
// model stops by itself (an EOS id of the model directory) right after the answer.
#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "core/mapped_file.hpp"
#include "runtime/engine.hpp"
#include "runtime/generator.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

const char* kHeader =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
const char* kQuestion = "What is the pass key? The pass key is";

// About `chars` characters of held-out prose from a paragraph start, cut after a sentence, with
// the needle put after the first sentence end past `depth` of it.
std::string haystack_with_needle(const std::string& prose, size_t start, size_t chars, double depth,
                                 const std::string& needle) {
  start = prose.find('\n', start) + 1;
  std::string hay = prose.substr(start, chars);
  hay = hay.substr(0, hay.rfind(". ") + 1);
  const size_t at = hay.find(". ", size_t(depth * double(hay.size()))) + 1;
  return hay.substr(0, at) + " " + needle + hay.substr(at);
}

TEST(DemoModel, answers_a_passkey_hidden_in_held_out_prose) {
  ModelLoadOptions load;
  load.threads = 2;
  const Engine engine = Engine::load(test::source_dir() + "/models/ltri-demo", load);
  const std::string prose = read_text_file(test::source_dir() + "/data/heldout/austen_persuasion.txt");
  const std::string key = "71942";
  const std::string needle = "The pass key is " + key + ". Remember it. " + key + " is the pass key.";
  const std::string prompt =
      std::string(kHeader) + "\n\n" + haystack_with_needle(prose, 120000, 4200, 0.4, needle) + "\n\n" + kQuestion;

  const std::vector<int32_t> ids = engine.tokenizer().encode(prompt);
  ASSERT_GT(ids.size(), 900u);
  ASSERT_LT(ids.size(), 1300u);

  SessionOptions so;
  so.max_context = 2048;
  const std::unique_ptr<Session> session = engine.model().new_session(so);
  GenerateOptions go;
  go.n_predict = 12;
  go.sampling.temperature = 0.0f;  // greedy
  go.eos_ids = engine.eos_ids();
  std::string text;
  const GenerateStats stats = generate(*session, engine.model().config().vocab_size, engine.tokenizer(), ids, go,
                                       [&](std::string_view piece) { text += piece; });

  // Scored as InfiniteBench passkey: the first number of the answer is the key.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("[0-9]+"))) << "answer: '" << text << "'";
  EXPECT_EQ(m.str(), key) << "answer: '" << text << "'";
  EXPECT_EQ(stats.stop_reason, StopReason::Eos) << "answer: '" << text << "'";
}

}  // namespace
}  // namespace ltri
