// Parsing explain --batch's JSON lines (batch_prompts.h).
#include "batch_prompts.h"

#include <fstream>
#include <sstream>

#include "reslens/error.h"

namespace reslens::cli {

namespace {

// A target or foil: a string is a text, a whole number an id, a list of whole numbers several ids.
void read_batch_token_spec(const nlohmann::json& v, const char* key, std::optional<TokenName>& name, std::vector<int32_t>& ids) {
  const auto id_of = [&](const nlohmann::json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX) {
      throw FormatError(std::string("\"") + key + "\" must be a text, a token id or a list of token ids");
    }
    return static_cast<int32_t>(x.get<int64_t>());
  };
  if (v.is_null()) return;
  if (v.is_string()) {
    if (v.get<std::string>().empty()) throw FormatError(std::string("\"") + key + "\" is empty");
    name = TokenName{-1, v.get<std::string>()};
  } else if (v.is_array()) {
    if (v.empty()) throw FormatError(std::string("\"") + key + "\" is an empty list");
    for (const auto& x : v) ids.push_back(id_of(x));
  } else {
    name = TokenName{id_of(v), ""};
  }
}

BatchPrompt parse_batch_line(const std::string& text, int64_t line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw FormatError("not a JSON object");
  }
  if (!j.is_object()) throw FormatError("not a JSON object");
  BatchPrompt p;
  p.line = line;
  if (!j.contains("prompt") || !j["prompt"].is_string()) throw FormatError("no \"prompt\" text");
  p.prompt = j["prompt"].get<std::string>();
  if (j.contains("target")) read_batch_token_spec(j["target"], "target", p.target, p.target_tokens);
  if (j.contains("foil")) read_batch_token_spec(j["foil"], "foil", p.foil, p.foil_tokens);
  if (j.contains("position") && !j["position"].is_null()) {
    const auto& v = j["position"];
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
      throw FormatError("\"position\" must be a whole number (0-based; -1 for the last token)");
    }
    p.position = static_cast<int>(v.get<int64_t>());
  }
  if (j.contains("id")) p.id = j["id"];
  return p;
}

}  // namespace

BatchPrompts read_batch_prompts(const std::filesystem::path& path, bool strict) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open the batch file");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  BatchPrompts out;
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  out.fingerprint = h;
  std::istringstream lines(bytes);
  std::string text;
  int64_t n = 0;
  while (std::getline(lines, text)) {
    ++n;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      out.prompts.push_back(parse_batch_line(text, n));
    } catch (const FormatError& e) {
      if (strict) throw FormatError(path.string() + ":" + std::to_string(n) + ": " + e.what());
      out.skipped.push_back({n, e.what()});
    }
  }
  if (out.prompts.empty()) throw FormatError(path.string() + ": no prompt to explain (empty batch file)");
  return out;
}

}  // namespace reslens::cli
