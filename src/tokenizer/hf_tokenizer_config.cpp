// tokenizer_config.json: transformers' per-tokenizer settings. reslens reads only what changes the
// token ids of a prompt: whether BOS is added, and which tokens BOS and EOS are. Special tokens are
// written either as a string or as an AddedToken object {"content": ...}.
#include <nlohmann/json.hpp>

#include "reslens/error.h"
#include "tokenizer/hf_tokenizer_json.h"

namespace reslens::tokenizer_detail {

namespace {

std::optional<std::string> token_name(const nlohmann::json& root, const char* key,
                                      const std::string& source) {
  const auto it = root.find(key);
  if (it == root.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  throw FormatError(source + ": '" + key + "' should be a string or an object with a string 'content'");
}

}  // namespace

HfTokenizerConfig parse_hf_tokenizer_config(std::string_view text, const std::string& source) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(source + ": not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw FormatError(source + ": the top level is not an object");
  HfTokenizerConfig config;
  if (const auto it = root.find("add_bos_token"); it != root.end() && !it->is_null()) {
    if (!it->is_boolean()) throw FormatError(source + ": 'add_bos_token' should be true or false");
    config.add_bos_token = it->get<bool>();
  }
  // An EOS appended to every encoded text changes what the model reads; reslens does not append it,
  // so a config that asks for it is refused by name rather than dropped (as the GGUF key is).
  if (const auto it = root.find("add_eos_token"); it != root.end() && !it->is_null()) {
    if (!it->is_boolean()) throw FormatError(source + ": 'add_eos_token' should be true or false");
    if (it->get<bool>()) {
      throw UnsupportedError(source + ": 'add_eos_token' is true, which reslens does not apply (it would append "
                             "EOS to every prompt); set it to false if the model was not trained that way");
    }
  }
  config.bos_token = token_name(root, "bos_token", source);
  config.eos_token = token_name(root, "eos_token", source);
  if (const auto it = root.find("chat_template"); it != root.end() && !it->is_null()) {
    if (it->is_string()) {
      config.chat_template = it->get<std::string>();
    } else if (it->is_array()) {  // [{"name": ..., "template": ...}]: the default one, else the first
      for (const auto& t : *it) {
        if (!t.is_object() || !t.contains("template") || !t["template"].is_string()) {
          throw FormatError(source + ": 'chat_template' entries should be {\"name\", \"template\"}");
        }
        if (config.chat_template.empty() || t.value("name", "") == "default") config.chat_template = t["template"];
      }
    } else {
      throw FormatError(source + ": 'chat_template' should be a string or a list of named templates");
    }
  }
  return config;
}

}  // namespace reslens::tokenizer_detail
