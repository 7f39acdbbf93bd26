// Datasets: JSONL parsing with per-line problems, the same-type competitor lists, and shards.
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "reslens/error.h"
#include "reslens/experiment.h"

namespace reslens {

namespace {

uint64_t fnv1a(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// A required non-empty string field; the message says what is wrong with it.
std::string string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) throw FormatError(std::string("no \"") + key + "\"");
  if (!it->is_string()) throw FormatError(std::string("\"") + key + "\" is not a string");
  std::string s = it->get<std::string>();
  if (s.empty()) throw FormatError(std::string("\"") + key + "\" is empty");
  return s;
}

ExperimentSentence parse_line(std::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at ...".
    std::string what = e.what();
    if (const auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw FormatError("not valid JSON (" + what + ")");
  }
  if (!j.is_object()) throw FormatError("not a JSON object");
  ExperimentSentence s;
  s.prompt = string_field(j, "prompt");
  s.target = string_field(j, "target");
  s.type = string_field(j, "type");
  if (const auto it = j.find("competitors"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw FormatError("\"competitors\" is not a list");
    for (const auto& c : *it) {
      if (!c.is_string() || c.get<std::string>().empty()) throw FormatError("\"competitors\" holds a non-string or empty entry");
      s.competitors.push_back(c.get<std::string>());
    }
    s.competitors_given = true;
  }
  return s;
}

// Sentences without their own list compete with every other target of their type, in first-seen
// order (the order only affects which competitor a message names).
void fill_competitors(std::vector<ExperimentSentence>& sentences) {
  std::map<std::string, std::vector<std::string>> targets;
  std::map<std::string, std::set<std::string>> seen;
  for (const auto& s : sentences) {
    if (seen[s.type].insert(s.target).second) targets[s.type].push_back(s.target);
  }
  for (auto& s : sentences) {
    if (s.competitors_given) continue;
    for (const auto& t : targets[s.type]) {
      if (t != s.target) s.competitors.push_back(t);
    }
  }
}

}  // namespace

Dataset parse_dataset(std::string_view text, const std::string& name, bool strict) {
  Dataset d;
  d.name = name;
  d.fingerprint = fnv1a(text);
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;
    ExperimentSentence s;
    try {
      s = parse_line(l);
    } catch (const FormatError& e) {
      if (strict) throw FormatError(name + ":" + std::to_string(line) + ": " + e.what());
      d.skipped.push_back({line, e.what()});
      continue;
    }
    // Not a malformed line to skip: the whole dataset is refused, since its summaries would be wrong.
    if (s.type == kAllTypes) {
      throw FormatError(name + ":" + std::to_string(line) + ": the type \"" + s.type +
                        "\" is reserved: the summaries' row \"all\" aggregates every type, and a type of that "
                        "name would be mixed up with it (rename the type)");
    }
    s.line = line;
    s.index = static_cast<int64_t>(d.sentences.size());
    d.sentences.push_back(std::move(s));
  }
  d.n_lines = line;
  if (d.sentences.empty()) {
    std::string msg = name + ": the dataset has no sentences";
    if (!d.skipped.empty()) {
      msg += " (" + std::to_string(d.skipped.size()) + " malformed line" + (d.skipped.size() == 1 ? "" : "s") +
             "; the first, line " + std::to_string(d.skipped[0].line) + ": " + d.skipped[0].message + ")";
    }
    throw FormatError(msg);
  }
  fill_competitors(d.sentences);
  return d;
}

Dataset read_dataset(const std::filesystem::path& path, bool strict) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError(path.string() + ": no such file (the dataset)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open the dataset");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path.string() + ": cannot read the dataset");
  return parse_dataset(ss.str(), path.string(), strict);
}

Shard parse_shard(std::string_view spec) {
  const std::string s(spec);
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("bad shard '" + s + "': " + why + " (write i/n with 1 <= i <= n, e.g. 2/4)");
  };
  const size_t slash = spec.find('/');
  if (slash == std::string_view::npos) throw bad("no '/'");
  auto number = [&](std::string_view part) {
    int v = 0;
    const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || p != part.data() + part.size()) throw bad("'" + std::string(part) + "' is not a whole number");
    return v;
  };
  Shard sh;
  sh.index = number(spec.substr(0, slash));
  sh.count = number(spec.substr(slash + 1));
  if (sh.count < 1) throw bad("the number of shards must be at least 1");
  if (sh.index < 1 || sh.index > sh.count) throw bad("the shard index must be between 1 and " + std::to_string(sh.count));
  return sh;
}

}  // namespace reslens
