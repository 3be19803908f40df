// Built-in chat templates give the exact text of the models' Jinja templates, and the special
// token names come from tokenizer_config.json.
#include <gtest/gtest.h>

#include "real_tokenizers.hpp"
#include "tiny_tokenizers.hpp"

namespace ltri {
namespace {

TEST(ChatTemplate, llama3_prompt_is_the_instruct_template_text) {
  // Content is trimmed, as the template's "| trim" does.
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, {{"user", "  Hello!\n"}}),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."},
                                                     {"user", "Bye"}}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, llama2_prompt_folds_the_system_message_into_the_first_turn) {
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama2, {{"user", "hi"}}), "<s>[INST] hi [/INST]");
  EXPECT_EQ(apply_chat_template(ChatFormat::Llama2, {{"system", "You are helpful."},
                                                     {"user", "What is 2+2? "},
                                                     {"assistant", " 4"},
                                                     {"user", "Thanks"}}),
            "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] Thanks [/INST]");
}

TEST(ChatTemplate, chatml_prompt_wraps_each_message) {
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, {{"system", "Be brief."}, {"user", "Hi"}}),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, llama3_prompt_encodes_to_header_and_turn_tokens) {
  const Tokenizer* t = test::real_tokenizer("llama3");
  ASSERT_NE(t, nullptr);
  EncodeOptions o;
  o.add_special_tokens = false;
  const std::vector<int32_t> ids = t->encode(apply_chat_template(ChatFormat::Llama3, {{"user", "Hello!"}}), o);
  const int32_t header = t->token_to_id("<|start_header_id|>");
  const int32_t end_header = t->token_to_id("<|end_header_id|>");
  ASSERT_GE(ids.size(), 8u);
  EXPECT_EQ(ids[0], t->bos_id());
  EXPECT_EQ(ids[1], header);
  EXPECT_EQ(t->decode({ids[2]}), "user");
  EXPECT_EQ(ids[3], end_header);
  EXPECT_EQ(ids[ids.size() - 4], header);
  EXPECT_EQ(t->decode({ids[ids.size() - 3]}), "assistant");
  EXPECT_EQ(ids[ids.size() - 2], end_header);
  EXPECT_EQ(t->decode({ids.back()}), "\n\n");
}

TEST(ChatTemplate, format_and_special_ids_come_from_the_tokenizer_files) {
  const Tokenizer* llama3 = test::real_tokenizer("llama3");
  const Tokenizer* llama2 = test::real_tokenizer("llama2");
  ASSERT_NE(llama3, nullptr);
  ASSERT_NE(llama2, nullptr);
  EXPECT_EQ(detect_chat_format(*llama3), ChatFormat::Llama3);
  EXPECT_EQ(detect_chat_format(*llama2), ChatFormat::Llama2);
  EXPECT_EQ(llama3->bos_id(), llama3->token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(llama3->eos_ids(), (std::vector<int32_t>{llama3->token_to_id("<|end_of_text|>"),
                                                     llama3->token_to_id("<|eot_id|>")}));
  EXPECT_EQ(llama2->bos_id(), 1);
  EXPECT_EQ(llama2->eos_ids(), (std::vector<int32_t>{2}));
  EXPECT_TRUE(llama3->is_special(llama3->token_to_id("<|eot_id|>")));
  EXPECT_FALSE(llama3->is_special(llama3->encode("hello", {false, true}).at(0)));
}

TEST(ChatTemplate, chatml_is_detected_from_the_vocabulary) {
  test::json doc = test::tokenizer_doc(test::bpe_model({"a"}, {}));
  doc["added_tokens"] = test::json::array({test::added_token(1, "<|im_start|>", true),
                                           test::added_token(2, "<|im_end|>", true)});
  const Tokenizer t = test::build(doc);
  EXPECT_EQ(detect_chat_format(t), ChatFormat::ChatML);
  EXPECT_EQ(t.eos_ids(), (std::vector<int32_t>{2}));
  EXPECT_EQ(t.bos_id(), -1);
}

}  // namespace
}  // namespace ltri
