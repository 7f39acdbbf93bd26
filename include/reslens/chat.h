// Chat prompts for instruction-tuned models: one user message (and an optional system message)
// laid out the way the model was trained to read it, ending where the assistant's reply begins,
// so that `explain` attributes the reply's first token. The layouts are llama.cpp's built-in
// templates (llama_chat_apply_template): a model's Jinja template (GGUF tokenizer.chat_template,
// Hugging Face tokenizer_config.json / chat_template.jinja) is recognised by the same marker
// strings llama.cpp looks for; it is not executed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reslens {

/// The built-in layouts, by llama.cpp's names.
enum class ChatTemplate {
  kChatml, kLlama2, kLlama2Sys, kLlama2SysBos, kLlama2SysStrip, kMistralV1, kMistralV3, kMistralV3Tekken,
  kMistralV7, kMistralV7Tekken, kPhi3, kPhi4, kFalcon3, kZephyr, kGemma, kLlama3,
};

/// "chatml", "llama3", ... for every template, in the enum's order.
std::vector<std::string> chat_template_names();
const char* chat_template_name(ChatTemplate t);

/// A template by name; InvalidArgument naming the known names otherwise.
ChatTemplate chat_template_named(std::string_view name);

/// The built-in layout a model's template source matches (llama.cpp's detection order and
/// markers). UnsupportedError when it matches none (pass a name with --chat-template then);
/// InvalidArgument when `source` is empty (the model has no chat template).
ChatTemplate detect_chat_template(std::string_view source);

/// The prompt text: the system message (if any), the user message, then the assistant's turn
/// opening. No BOS: the tokenizer adds it as the model's settings say. Special tokens are written
/// as text, so encode it with SpecialText::kParse (the default).
std::string format_chat(ChatTemplate t, std::string_view user, std::string_view system = {});

}  // namespace reslens
