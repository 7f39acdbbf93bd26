// Chat layouts: llama.cpp's llama_chat_apply_template for one optional system message, one user
// message and the assistant's opening (add_ass), and its template detection by marker strings.
#include "reslens/chat.h"

#include <array>
#include <string>

#include "reslens/error.h"

namespace reslens {

namespace {

constexpr std::array<const char*, 16> kNames = {
    "chatml",     "llama2",        "llama2-sys",        "llama2-sys-bos", "llama2-sys-strip", "mistral-v1",
    "mistral-v3", "mistral-v3-tekken", "mistral-v7",    "mistral-v7-tekken", "phi3",          "phi4",
    "falcon3",    "zephyr",        "gemma",             "llama3"};

// The text without leading and trailing whitespace (several templates strip message contents).
std::string trim(std::string_view s) {
  const auto ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

std::string llama2(ChatTemplate t, std::string_view user, std::string_view system) {
  const bool with_sys = t != ChatTemplate::kLlama2, strip = t == ChatTemplate::kLlama2SysStrip;
  std::string s = "[INST] ";
  if (!system.empty()) {
    const std::string content = strip ? trim(system) : std::string(system);
    s += with_sys ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
  }
  return s + (strip ? trim(user) : std::string(user)) + " [/INST]";
}

std::string mistral(ChatTemplate t, std::string_view user, std::string_view system) {
  if (t == ChatTemplate::kMistralV7 || t == ChatTemplate::kMistralV7Tekken) {
    const std::string sp = t == ChatTemplate::kMistralV7 ? " " : "";
    std::string s;
    if (!system.empty()) s += "[SYSTEM_PROMPT]" + sp + std::string(system) + "[/SYSTEM_PROMPT]";
    return s + "[INST]" + sp + std::string(user) + "[/INST]";
  }
  const std::string lead = t == ChatTemplate::kMistralV1 ? " " : "";
  const std::string trail = t == ChatTemplate::kMistralV3Tekken ? "" : " ";
  std::string s = lead + "[INST]" + trail;
  if (!system.empty()) s += std::string(system) + "\n\n";
  return s + std::string(user) + lead + "[/INST]";
}

}  // namespace

std::vector<std::string> chat_template_names() { return {kNames.begin(), kNames.end()}; }

const char* chat_template_name(ChatTemplate t) { return kNames[static_cast<size_t>(t)]; }

ChatTemplate chat_template_named(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<ChatTemplate>(i);
  }
  std::string known;
  for (const char* n : kNames) known += std::string(known.empty() ? "" : ", ") + n;
  throw InvalidArgument("unknown chat template '" + std::string(name) + "' (known: " + known + ")");
}

ChatTemplate detect_chat_template(std::string_view src) {
  if (src.empty()) throw InvalidArgument("the model has no chat template: name one with --chat-template");
  auto has = [src](std::string_view s) { return src.find(s) != std::string_view::npos; };
  // A name given as the template, as llama.cpp accepts.
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (src == kNames[i]) return static_cast<ChatTemplate>(i);
  }
  // llama.cpp's order: the first match decides, including layouts reslens does not implement.
  auto unsupported = [](const char* name) -> ChatTemplate {
    throw UnsupportedError(std::string("the model's chat template is llama.cpp's '") + name +
                           "', which reslens does not lay out: name another with --chat-template");
  };
  if (has("<|im_start|>")) {
    if (has("<|im_sep|>")) return ChatTemplate::kPhi4;
    if (has("<end_of_utterance>")) return unsupported("smolvlm");
    return ChatTemplate::kChatml;
  }
  if (src.substr(0, 7) == "mistral" || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) return ChatTemplate::kMistralV7;
    if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      if (has(" [INST]")) return ChatTemplate::kMistralV1;
      if (has("\"[INST]\"")) return ChatTemplate::kMistralV3Tekken;
      return ChatTemplate::kMistralV3;
    }
    if (has("content.strip()")) return ChatTemplate::kLlama2SysStrip;
    if (has("bos_token + '[INST]")) return ChatTemplate::kLlama2SysBos;
    if (has("<<SYS>>")) return ChatTemplate::kLlama2Sys;
    return ChatTemplate::kLlama2;
  }
  if (has("<|assistant|>") && has("<|end|>")) return ChatTemplate::kPhi3;
  if (has("[gMASK]<sop>")) return unsupported("chatglm4");
  if (has("<|assistant|>") && has("<|user|>")) return has("</s>") ? ChatTemplate::kFalcon3 : unsupported("glmedge");
  if (has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>")) return unsupported("glmedge");
  if (has("<|user|>") && has("<|endoftext|>")) return ChatTemplate::kZephyr;
  if (has("bos_token + message['role']")) return unsupported("monarch");
  if (has("<start_of_turn>")) return ChatTemplate::kGemma;
  if (has("'\\n\\nAssistant: ' + eos_token")) return unsupported("orion");
  if (has("GPT4 Correct ")) return unsupported("openchat");
  if (has("USER: ") && has("ASSISTANT: ")) return unsupported("vicuna");
  if (has("### Instruction:") && has("<|EOT|>")) return unsupported("deepseek");
  if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return unsupported("command-r");
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatTemplate::kLlama3;
  throw UnsupportedError("the model's chat template matches none of the built-in layouts: name one with "
                         "--chat-template (see `reslens explain --help`)");
}

std::string format_chat(ChatTemplate t, std::string_view user, std::string_view system) {
  const std::string u(user), sys(system);
  switch (t) {
    case ChatTemplate::kChatml:
      return (sys.empty() ? "" : "<|im_start|>system\n" + sys + "<|im_end|>\n") + "<|im_start|>user\n" + u +
             "<|im_end|>\n<|im_start|>assistant\n";
    case ChatTemplate::kLlama2:
    case ChatTemplate::kLlama2Sys:
    case ChatTemplate::kLlama2SysBos:
    case ChatTemplate::kLlama2SysStrip:
      return llama2(t, user, system);
    case ChatTemplate::kMistralV1:
    case ChatTemplate::kMistralV3:
    case ChatTemplate::kMistralV3Tekken:
    case ChatTemplate::kMistralV7:
    case ChatTemplate::kMistralV7Tekken:
      return mistral(t, user, system);
    case ChatTemplate::kPhi3:
      return (sys.empty() ? "" : "<|system|>\n" + sys + "<|end|>\n") + "<|user|>\n" + u + "<|end|>\n<|assistant|>\n";
    case ChatTemplate::kPhi4:
      return (sys.empty() ? "" : "<|im_start|>system<|im_sep|>" + sys + "<|im_end|>") + "<|im_start|>user<|im_sep|>" +
             u + "<|im_end|><|im_start|>assistant<|im_sep|>";
    case ChatTemplate::kFalcon3:
      return (sys.empty() ? "" : "<|system|>\n" + sys + "\n") + "<|user|>\n" + u + "\n<|assistant|>\n";
    case ChatTemplate::kZephyr:
      return (sys.empty() ? "" : "<|system|>\n" + sys + "<|endoftext|>\n") + "<|user|>\n" + u +
             "<|endoftext|>\n<|assistant|>\n";
    case ChatTemplate::kGemma:
      // No system turn: llama.cpp puts the system text first in the user's turn.
      return "<start_of_turn>user\n" + (sys.empty() ? "" : trim(sys) + "\n\n") + trim(user) +
             "<end_of_turn>\n<start_of_turn>model\n";
    case ChatTemplate::kLlama3:
      return (sys.empty() ? "" : "<|start_header_id|>system<|end_header_id|>\n\n" + trim(sys) + "<|eot_id|>") +
             "<|start_header_id|>user<|end_header_id|>\n\n" + trim(user) +
             "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  }
  throw InternalError("unknown chat template");
}

}  // namespace reslens
