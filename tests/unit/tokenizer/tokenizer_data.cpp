#include "unit/tokenizer/tokenizer_data.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <sstream>

#include "common/test_paths.h"
#include "io/gguf.h"
#include "tokenizer/factory.h"

namespace reslens::test {

namespace {

std::vector<int32_t> parse_ids(const std::string& s, char separator) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, separator)) {
    if (item.empty()) continue;
    ids.push_back(static_cast<int32_t>(std::stoi(item)));
  }
  return ids;
}

std::optional<std::vector<int32_t>> optional_ids(const nlohmann::json& c, const char* key) {
  const auto it = c.find(key);
  if (it == c.end() || it->is_null()) return std::nullopt;
  return it->get<std::vector<int32_t>>();
}

}  // namespace

std::vector<TextIds> read_vocab_vectors(const std::string& gguf_relative) {
  const std::string inp = read_file(shared_path(gguf_relative + ".inp"));
  const std::string out = read_file(shared_path(gguf_relative + ".out"));
  // Strings are separated by "\n__ggml_vocab_test__\n". Most files end with one (an empty tail);
  // some (gemma-4) end with the last string itself, which llama.cpp's reader then takes as a case.
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t hit = inp.find(separator, pos);
    if (hit == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, hit - pos));
    pos = hit + separator.size();
  }
  std::vector<std::string> lines;
  std::stringstream ss(out);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(line);
  if (lines.size() != texts.size()) {
    ADD_FAILURE() << gguf_relative << ": " << texts.size() << " strings but " << lines.size() << " id lines";
    return {};
  }
  std::vector<TextIds> cases;
  for (size_t i = 0; i < texts.size(); ++i) cases.push_back({texts[i], parse_ids(lines[i], ' ')});
  return cases;
}

std::vector<TextIds> read_prompt_vectors(const std::string& relative) {
  const std::string text = read_file(shared_path(relative));
  std::vector<TextIds> cases;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    const size_t arrow = line.rfind(" => ");
    if (arrow == std::string::npos) continue;
    cases.push_back({line.substr(0, arrow), parse_ids(line.substr(arrow + 4), ',')});
  }
  return cases;
}

std::vector<TokenizerCase> read_tokenizer_tests(const std::string& model) {
  const auto j = nlohmann::json::parse(read_file(shared_path("goldens/" + model + "/tokenizer_tests.json")));
  std::vector<TokenizerCase> cases;
  for (const auto& c : j.at("cases")) {
    TokenizerCase t;
    t.text = c.at("text").get<std::string>();
    t.ids_default = optional_ids(c, "ids_default");
    t.ids_no_bos = optional_ids(c, "ids_no_bos");
    t.hf_reference_ids_with_bos = optional_ids(c, "hf_reference_ids_with_bos");
    cases.push_back(std::move(t));
  }
  return cases;
}

std::vector<GoldenPrompt> read_golden_prompts(const std::string& model) {
  const auto j = nlohmann::json::parse(read_file(shared_path("goldens/" + model + "/goldens.json")));
  std::vector<GoldenPrompt> prompts;
  for (const auto& p : j.at("prompts")) {
    GoldenPrompt g;
    g.id = p.at("id").get<std::string>();
    g.text = p.at("text").get<std::string>();
    g.token_ids = p.at("token_ids").get<std::vector<int32_t>>();
    g.add_bos = p.at("add_bos").get<bool>();
    prompts.push_back(std::move(g));
  }
  return prompts;
}

std::string describe(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  std::string s;
  for (const int32_t id : ids) {
    s += '[';
    s += std::to_string(id);
    s += " '";
    s += id >= 0 && id < tokenizer.n_vocab() ? printable(tokenizer.piece(id)) : "?";
    s += "'] ";
  }
  return s;
}

std::string printable(const std::string& text) {
  std::string s;
  for (const char c : text) {
    if (c == '\n') {
      s += "\\n";
    } else if (c == '\t') {
      s += "\\t";
    } else if (c == '\r') {
      s += "\\r";
    } else {
      s += c;
    }
  }
  return s;
}

bool expect_ids(const Tokenizer& tokenizer, const std::string& text, const std::vector<int32_t>& expected,
                const std::vector<int32_t>& actual) {
  EXPECT_EQ(actual, expected) << "text: \"" << printable(text)
                              << "\"\n  expected: " << describe(tokenizer, expected)
                              << "\n  actual:   " << describe(tokenizer, actual);
  return actual == expected;
}

std::unique_ptr<Tokenizer> gguf_tokenizer(const std::string& relative) {
  const gguf::File file(shared_path(relative));
  return tokenizer_from_gguf(file);
}

void expect_golden_tokenization(const Tokenizer& tokenizer, const std::string& model) {
  const auto cases = read_tokenizer_tests(model);
  EXPECT_EQ(cases.size(), 30u) << model;
  for (const auto& c : cases) {
    const auto ids = tokenizer.encode(c.text, tokenizer.add_bos_default());
    if (c.ids_default) expect_ids(tokenizer, c.text, *c.ids_default, ids);
    if (c.hf_reference_ids_with_bos) expect_ids(tokenizer, c.text, *c.hf_reference_ids_with_bos, ids);
    EXPECT_TRUE(c.ids_default || c.hf_reference_ids_with_bos)
        << "no reference ids for \"" << printable(c.text) << "\"";
    if (c.ids_no_bos) {
      expect_ids(tokenizer, c.text, *c.ids_no_bos, tokenizer.encode(c.text, false));
      EXPECT_EQ(tokenizer.decode(ids), c.text) << "text: \"" << printable(c.text) << "\"";
    }
  }
  for (const auto& p : read_golden_prompts(model)) {
    expect_ids(tokenizer, p.text, p.token_ids, tokenizer.encode(p.text, p.add_bos));
  }
}

std::string repeated_prompts(const std::string& model, size_t bytes) {
  std::string unit;
  for (const auto& p : read_golden_prompts(model)) unit += p.text + "\n";
  std::string text;
  while (text.size() < bytes && !unit.empty()) text += unit;
  return text;
}

double seconds_to_encode(const Tokenizer& tokenizer, const std::string& text, std::vector<int32_t>& ids) {
  const auto start = std::chrono::steady_clock::now();
  ids = tokenizer.encode(text, false);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace reslens::test
