// Chat layouts (reslens/chat.h): each built-in template's text for one system and one user
// message, as llama.cpp's llama_chat_apply_template writes it, the detection of a model's Jinja
// source by llama.cpp's markers, and where Hugging Face directories keep the template.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/test_paths.h"
#include "reslens/chat.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"

namespace reslens {
namespace {

TEST(Chat, EachLayoutOpensTheAssistantTurn) {
  const struct {
    const char* name;
    const char* with_system;
    const char* user_only;
  } cases[] = {
      {"chatml", "<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n",
       "<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n"},
      {"llama3",
       "<|start_header_id|>system<|end_header_id|>\n\nBe brief<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
       "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
      {"llama2", "[INST] Be brief\n Hi  [/INST]", "[INST]  Hi  [/INST]"},
      {"llama2-sys", "[INST] <<SYS>>\nBe brief\n<</SYS>>\n\n Hi  [/INST]", "[INST]  Hi  [/INST]"},
      {"llama2-sys-strip", "[INST] <<SYS>>\nBe brief\n<</SYS>>\n\nHi [/INST]", "[INST] Hi [/INST]"},
      {"mistral-v1", " [INST] Be brief\n\n Hi  [/INST]", " [INST]  Hi  [/INST]"},
      {"mistral-v3", "[INST] Be brief\n\n Hi [/INST]", "[INST]  Hi [/INST]"},
      {"mistral-v3-tekken", "[INST]Be brief\n\n Hi [/INST]", "[INST] Hi [/INST]"},
      {"mistral-v7", "[SYSTEM_PROMPT] Be brief[/SYSTEM_PROMPT][INST]  Hi [/INST]", "[INST]  Hi [/INST]"},
      {"mistral-v7-tekken", "[SYSTEM_PROMPT]Be brief[/SYSTEM_PROMPT][INST] Hi [/INST]", "[INST] Hi [/INST]"},
      {"phi3", "<|system|>\nBe brief<|end|>\n<|user|>\n Hi <|end|>\n<|assistant|>\n", "<|user|>\n Hi <|end|>\n<|assistant|>\n"},
      {"phi4", "<|im_start|>system<|im_sep|>Be brief<|im_end|><|im_start|>user<|im_sep|> Hi <|im_end|><|im_start|>assistant<|im_sep|>",
       "<|im_start|>user<|im_sep|> Hi <|im_end|><|im_start|>assistant<|im_sep|>"},
      {"falcon3", "<|system|>\nBe brief\n<|user|>\n Hi \n<|assistant|>\n", "<|user|>\n Hi \n<|assistant|>\n"},
      {"zephyr", "<|system|>\nBe brief<|endoftext|>\n<|user|>\n Hi <|endoftext|>\n<|assistant|>\n",
       "<|user|>\n Hi <|endoftext|>\n<|assistant|>\n"},
      {"gemma", "<start_of_turn>user\nBe brief\n\nHi<end_of_turn>\n<start_of_turn>model\n",
       "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"},
  };
  for (const auto& c : cases) {
    const ChatTemplate t = chat_template_named(c.name);
    EXPECT_STREQ(chat_template_name(t), c.name);
    EXPECT_EQ(format_chat(t, " Hi ", "Be brief"), c.with_system) << c.name;
    EXPECT_EQ(format_chat(t, " Hi "), c.user_only) << c.name;
  }
  EXPECT_EQ(chat_template_names().size(), 16U);
}

TEST(Chat, DetectsTheModelsTemplateByLlamaCppsMarkers) {
  const std::pair<const char*, const char*> cases[] = {
      {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'}}", "chatml"},
      {"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}",
       "llama3"},
      {"{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{{ '<<SYS>>\\n' + system_message }}", "llama2-sys-strip"},
      {"{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}", "llama2"},
      {"{{ '<<SYS>>\\n' }}{{ '[INST] ' + message['content'] + ' [/INST]' }}", "llama2-sys"},
      {"[SYSTEM_PROMPT]{{ system }}[/SYSTEM_PROMPT][INST]{{ user }}[/INST]", "mistral-v7"},
      {"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", "gemma"},
      {"{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{{ '<|assistant|>\\n' }}", "phi3"},
      {"{{ '<|user|>\\n' + message['content'] + '<|endoftext|>' }}", "zephyr"},
      {"llama3", "llama3"},  // a name is accepted as the template
  };
  for (const auto& [source, name] : cases) EXPECT_STREQ(chat_template_name(detect_chat_template(source)), name) << source;
  EXPECT_THROW(detect_chat_template(""), InvalidArgument);
  EXPECT_THROW(detect_chat_template("{{ messages }}"), UnsupportedError);
  try {
    detect_chat_template("{{ 'USER: ' + content }}{{ 'ASSISTANT: ' }}");
    FAIL() << "vicuna is not laid out";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("vicuna"), std::string::npos) << e.what();
  }
  try {
    chat_template_named("chatgpt");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("chatml"), std::string::npos) << e.what();  // lists the names
  }
}

TEST(Chat, HuggingFaceDirectoriesKeepTheTemplateInTheConfigOrAJinjaFile) {
  const auto src = test::shared_path("models/TinyStories-656K");
  const auto dir = test::scratch_dir("chat-template");
  std::filesystem::copy_file(src / "tokenizer.json", dir / "tokenizer.json");
  auto write = [&](const char* name, const std::string& text) { std::ofstream(dir / name) << text; };
  write("tokenizer_config.json", R"({"chat_template": "{{ '<|im_start|>' }}"})");
  EXPECT_EQ(load_hf_tokenizer(dir)->chat_template(), "{{ '<|im_start|>' }}");
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "A"}, {"name": "default", "template": "B"}]})");
  EXPECT_EQ(load_hf_tokenizer(dir)->chat_template(), "B");
  write("chat_template.jinja", "{{ '<start_of_turn>' }}");
  EXPECT_EQ(load_hf_tokenizer(dir)->chat_template(), "{{ '<start_of_turn>' }}");
  write("tokenizer_config.json", R"({"chat_template": 3})");
  std::filesystem::remove(dir / "chat_template.jinja");
  EXPECT_THROW(load_hf_tokenizer(dir), FormatError);
  EXPECT_TRUE(load_hf_tokenizer(src)->chat_template().empty());
}

}  // namespace
}  // namespace reslens
