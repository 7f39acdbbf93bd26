#include "common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <cmath>
#include <limits>
#include <iostream>
#include <numeric>

#include "core/file_write.h"
#include "core/utf8.h"

namespace reslens::cli {

namespace {
// PromptArgs::add finds the command's ModelArgs here, so commands declare them independently.
std::map<const CLI::App*, ModelArgs*>& model_args_of() {
  static std::map<const CLI::App*, ModelArgs*> m;
  return m;
}
}  // namespace

std::string default_model_path() {
  if (const char* e = std::getenv("RESLENS_MODEL"); e != nullptr && *e) return e;
  return RESLENS_DEFAULT_MODEL;
}

CLI::Option* add_threads_option(CLI::App& app, int& threads, const std::string& what) {
  const CLI::Validator count(
      [](std::string& value) -> std::string {
        size_t used = 0;
        long long n = -1;
        try {
          n = std::stoll(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == value.size() && n >= 0 && n <= std::numeric_limits<int>::max()) return "";
        return "'" + value + "' is not a thread count (a whole number; 0 or absent: all cores)";
      },
      "INT>=0");
  return app.add_option("-t,--threads", threads, what + " (0 or absent: all cores)")->check(count);
}

void ModelArgs::add(CLI::App& app, bool model_positional) {
  if (model_positional) {
    app.add_option("model", model,
                   "Model: a .gguf file, a llama2.c .bin, or a Hugging Face directory (default: " + default_model_path() + ")");
  }
  app.add_option("-m,--model", model_opt, "Model path (instead of the positional MODEL)");
  app.add_option("--tokenizer", tokenizer,
                 "Tokenizer: a llama2.c tokenizer .bin, or for a Hugging Face directory a tokenizer.json (or a "
                 "folder holding one); refused for a GGUF, which carries its own");
  app.add_flag("--weights-f32", weights_f32,
               "Convert every weight to float32 at load (4 bytes per weight) instead of keeping the file's "
               "encoding (F16, BF16, quantized) and decoding rows as they are used: the same results, bit for bit, "
               "faster for a few tokens, in more memory");
  add_threads_option(app, threads);
  model_args_of()[&app] = this;
}

std::shared_ptr<const Model> ModelArgs::load() {
  std::string chosen = model_opt;
  std::error_code ec;
  if (prompt != nullptr) prompt->text_given = prompt->text_opt != nullptr && prompt->text_opt->count() > 0;
  if (!model.empty()) {
    const bool wants_text = prompt != nullptr && !prompt->text_given && prompt->ids.empty();
    if (!model_opt.empty() || (wants_text && !std::filesystem::exists(model, ec))) {
      // The one positional is the prompt: reslens explain "The capital of France is".
      if (prompt == nullptr || prompt->text_given) {
        throw InvalidArgument("too many arguments: the model is given by --model and '" + model + "' is extra");
      }
      prompt->text = model;
      prompt->text_given = true;
    } else {
      chosen = model;
    }
  }
  if (chosen.empty()) {
    chosen = default_model_path();
    if (!std::filesystem::exists(chosen, ec)) {
      throw IoError("no model given and the default model " + chosen + " was not found: pass MODEL or set RESLENS_MODEL");
    }
  }
  if (prompt != nullptr && prompt->text_required && !prompt->text_given && prompt->ids.empty()) {
    throw InvalidArgument("no text given: pass TEXT after the model");
  }
  LoadOptions o;
  o.tokenizer_path = tokenizer;
  o.weights_as_float32 = weights_f32;
  return Model::load(chosen, o);
}

void PromptArgs::add(CLI::App& app, bool required) {
  text_required = required;
  auto* t = app.add_option("text", text, "Prompt text");
  text_opt = t;
  if (!required) app.add_option("--ids", ids, "Token ids instead of text, comma-separated: 1,2,3")->excludes(t);
  app.add_option("--bos", bos, "Prepend BOS: yes, no, or auto (the model's own setting)")
      ->check(CLI::IsMember({"yes", "no", "auto"}));
  app.add_flag("--no-parse-special", plain_special,
               "Read the text of control tokens (<s>, <|endoftext|>, <|im_start|>) as ordinary text instead of as those tokens");
  app.add_flag("--chat", chat,
               "Lay TEXT out as a user message and open the assistant's reply, with the model's chat template "
               "(recognised as llama.cpp does)");
  std::string names;
  for (const std::string& n : chat_template_names()) names += (names.empty() ? "" : ", ") + n;
  app.add_option("--chat-template", chat_template, "Use this built-in chat layout (implies --chat): " + names);
  app.add_option("--system", system, "A system message before TEXT (implies --chat)");
  if (auto it = model_args_of().find(&app); it != model_args_of().end()) it->second->prompt = this;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  for (int64_t v : parse_int_list(s, "token id")) {
    if (v < INT32_MIN || v > INT32_MAX) throw OutOfRange("token id " + std::to_string(v) + " is out of range");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

std::vector<int64_t> parse_int_list(const std::string& s, const char* what) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    std::string tok = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    tok.erase(0, tok.find_first_not_of(" \t"));
    tok.erase(tok.find_last_not_of(" \t") + 1);
    if (tok.empty()) throw InvalidArgument(std::string("empty ") + what + " in '" + s + "'");
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size()) throw InvalidArgument(std::string("not a valid ") + what + ": '" + tok + "'");
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::vector<int32_t> PromptArgs::tokens(const Model& model) const {
  if (!ids.empty()) {
    if (chat || !chat_template.empty() || !system.empty() || plain_special) {
      throw InvalidArgument("--chat, --chat-template, --system and --no-parse-special apply to TEXT, not to --ids");
    }
    return parse_ids(ids);
  }
  require_valid_utf8(text, "the prompt");
  std::vector<int32_t> out = encode(model.tokenizer());
  if (out.empty()) {
    throw InvalidArgument("the prompt is empty and no BOS token is added: nothing to run (pass text, or "
                          "--bos yes)");
  }
  return out;
}

std::string PromptArgs::prompt_text(const Tokenizer& tok) const {
  if (!chat && chat_template.empty() && system.empty()) return text;
  if (plain_special) {
    throw InvalidArgument("--chat writes the template's special tokens into the prompt; it cannot be combined "
                          "with --no-parse-special");
  }
  const ChatTemplate t = chat_template.empty() ? detect_chat_template(tok.chat_template())
                                               : chat_template_named(chat_template);
  return format_chat(t, text, system);
}

std::vector<int32_t> PromptArgs::encode(const Tokenizer& tok) const {
  const bool add_bos = bos == "auto" ? tok.add_bos_default() : bos == "yes";
  if (add_bos && tok.bos_id() < 0) throw InvalidArgument("--bos yes: this model's tokenizer has no BOS token");
  return tok.encode(prompt_text(tok), add_bos, plain_special ? SpecialText::kPlain : SpecialText::kParse);
}

std::vector<int32_t> PromptArgs::encode_with(const Tokenizer& tok, const std::string& continuation) const {
  if (!ids.empty()) {
    throw InvalidArgument("--continuation is tokenized together with the prompt's text; with --ids, give the "
                          "answer's ids as --target instead");
  }
  require_valid_utf8(continuation, "the continuation");
  const bool add_bos = bos == "auto" ? tok.add_bos_default() : bos == "yes";
  return tok.encode(prompt_text(tok) + continuation, add_bos, plain_special ? SpecialText::kPlain : SpecialText::kParse);
}

std::vector<double> softmax(const float* logits, int64_t n) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (p[static_cast<size_t>(i)] = std::exp(static_cast<double>(logits[i]) - mx));
  for (double& v : p) v /= sum;
  return p;
}

std::vector<int32_t> top_k(const float* values, int64_t n, int64_t k) {
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

std::string printable(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return json_safe(out);
}

std::string json_safe(const std::string& s) {
  if (find_invalid_utf8(s) == std::string_view::npos) return s;
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t bad = find_invalid_utf8(std::string_view(s).substr(i));
    if (bad == std::string_view::npos) {
      out += s.substr(i);
      break;
    }
    out += s.substr(i, bad);
    out += "\xef\xbf\xbd";
    i += bad + 1;
  }
  return out;
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  write_file_atomically(path, {text});
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

void require_valid_utf8_cli(const std::string& text) { require_valid_utf8(text, "the prompt"); }

std::string filesystem_error_message(const std::filesystem::filesystem_error& e) {
  // libstdc++ writes "filesystem error: <what failed>: <reason> [<path1>] [<path2>]".
  std::string what = e.what();
  const std::string prefix = "filesystem error: ";
  if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
  if (!e.path1().empty()) {
    if (const size_t p = what.find(" [" + e.path1().string() + "]"); p != std::string::npos) what.erase(p);
  }
  const std::string reason = e.code().message();
  const std::string tail = ": " + reason;
  if (what.size() >= tail.size() && what.compare(what.size() - tail.size(), tail.size(), tail) == 0) {
    what.erase(what.size() - tail.size());
  }
  std::string out = e.path1().empty() ? std::string() : e.path1().string() + ": ";
  out += what + " (" + reason + ")";
  if (!e.path2().empty()) out += " (to " + e.path2().string() + ")";
  return out;
}

int report_current_exception(CLI::App& app) {
  const auto say = [](const char* prefix, const std::string& message) {
    std::cerr << prefix << escape_message(message) << "\n";
  };
  try {
    throw;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    say("error: ", std::string(e.what()) + " (run with --help for usage)");
    return 2;
  } catch (const InvalidArgument& e) {
    say("error: ", e.what());
    return 2;
  } catch (const OutOfRange& e) {
    say("error: ", e.what());
    return 2;
  } catch (const UnsupportedError& e) {
    say("error: ", e.what());
    return 4;
  } catch (const Error& e) {  // IoError, FormatError
    say("error: ", e.what());
    return 3;
  } catch (const InternalError& e) {
    say("internal error (please report): ", e.what());
    return 70;
  } catch (const std::filesystem::filesystem_error& e) {  // a file or folder the command writes or reads
    say("error: ", filesystem_error_message(e));
    return 3;
  } catch (const std::bad_alloc&) {
    say("error: ", "out of memory");
    return 3;
  } catch (const std::exception& e) {
    say("error: ", e.what());
    return 1;
  } catch (...) {
    say("internal error (please report): ", "an exception that is not a std::exception");
    return 70;
  }
}

}  // namespace reslens::cli

namespace reslens::cli {

std::optional<TokenName> token_name(const std::string& spec) {
  if (spec.empty()) return std::nullopt;
  return TokenName::parse(spec);
}

void set_target_spec(const std::string& spec, bool given, const char* what, std::optional<TokenName>& name,
                     std::vector<int32_t>& ids) {
  if (spec.empty()) {
    if (given) throw InvalidArgument(std::string("the ") + what + " is empty: name a token");
    return;
  }
  // "262,3576": digits (fewer than 10 each, as TokenName::parse reads an id) between single commas.
  bool id_list = spec.find(',') != std::string::npos;
  for (size_t at = 0; id_list && at <= spec.size();) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string part = spec.substr(at, comma - at);
    id_list = !part.empty() && part.size() < 10 && part.find_first_not_of("0123456789") == std::string::npos;
    at = comma + 1;
  }
  if (id_list) {
    ids = parse_ids(spec);
  } else {
    name = TokenName::parse(spec);
  }
}

void print_notes(const std::vector<std::string>& notes) {
  for (const std::string& n : notes) std::cerr << "note: " << printable(n) << "\n";
}

std::string size_text(int64_t bytes) {
  char buf[32];
  const auto b = static_cast<double>(bytes);
  if (b >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  }
  return buf;
}

}  // namespace reslens::cli
