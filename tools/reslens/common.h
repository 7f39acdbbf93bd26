// Shared pieces of the reslens CLI: the options every model command takes, loading, turning a prompt
// into token ids, and small output helpers. The CLI is thin: it parses flags, calls the library and
// formats what comes back.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "reslens/explain_request.h"
#include "reslens/reslens.h"

namespace reslens::cli {

struct PromptArgs;

/// -t/--threads of every command: a whole number of worker threads; 0, the default, means every
/// core (reslens::default_threads()). A negative or non-numeric value is a usage error (exit 2).
CLI::Option* add_threads_option(CLI::App& app, int& threads, const std::string& what = "Worker threads");

/// The model every command uses when none is named: $RESLENS_MODEL, else the knowledge model that
/// ships in the source tree (models/knowledge-gpt2).
std::string default_model_path();

/// Flags shared by every command that loads a model: `[MODEL]` (first positional) or `-m MODEL`;
/// without either, the default model. With a prompt, a single positional that is not an existing
/// path is the prompt text: `reslens explain "The capital of France is"`.
struct ModelArgs {
  std::string model;      ///< the first positional
  std::string model_opt;  ///< -m/--model
  std::string tokenizer;
  bool weights_f32 = false;  ///< --weights-f32: convert every weight to float32 at load
  int threads = 0;
  PromptArgs* prompt = nullptr;  ///< set by PromptArgs::add on the same command
  void add(CLI::App& app, bool model_positional = true);
  /// Resolves which positional is the model and which the text, then loads the model.
  std::shared_ptr<const Model> load();
};

/// The prompt: TEXT, or --ids, with --bos yes|no|auto and --no-parse-special.
struct PromptArgs {
  std::string text;
  std::string ids;
  std::string bos = "auto";
  bool plain_special = false;  ///< --no-parse-special: special tokens' text is ordinary text
  bool chat = false;           ///< --chat: lay TEXT out as a user turn (the model's template)
  std::string chat_template;   ///< --chat-template NAME (implies --chat)
  std::string system;          ///< --system TEXT (implies --chat)
  bool text_required = false;
  bool text_given = false;          ///< TEXT was on the command line (possibly empty: "")
  CLI::Option* text_opt = nullptr;
  void add(CLI::App& app, bool text_required = false);
  /// Token ids for the model (validated: non-empty, in range).
  std::vector<int32_t> tokens(const Model& model) const;
  /// TEXT as the model reads it: laid out as a chat turn when --chat, --chat-template or --system.
  std::string prompt_text(const Tokenizer& tok) const;
  /// The text's ids as the options ask (no check that any are left).
  std::vector<int32_t> encode(const Tokenizer& tok) const;
  /// The text and `continuation` after it encoded together, as the options ask (explain
  /// --continuation). InvalidArgument with --ids: a continuation is tokenized with the prompt's text.
  std::vector<int32_t> encode_with(const Tokenizer& tok, const std::string& continuation) const;
};

std::vector<int32_t> parse_ids(const std::string& s);
std::vector<int64_t> parse_int_list(const std::string& s, const char* what);

/// softmax in double of a logit row.
std::vector<double> softmax(const float* logits, int64_t n);
/// The k largest entries (ties: lower index first).
std::vector<int32_t> top_k(const float* values, int64_t n, int64_t k);

/// A token's text for a terminal table: control characters escaped.
std::string printable(const std::string& s);

/// A file size for people: "812.3 MB", "2.78 GB".
std::string size_text(int64_t bytes);

/// JSON string safe for any bytes (invalid UTF-8 replaced by U+FFFD).
std::string json_safe(const std::string& s);

void print_json(const nlohmann::json& j);

/// Writes `text` to `path` through a temporary file in the same folder renamed over it, so a failed
/// write (full disk) throws IoError naming the file and the reason, and never leaves a partial file
/// under the name (core/file_write.h).
void write_text_file(const std::filesystem::path& path, const std::string& text);

/// InvalidArgument when a prompt is not valid UTF-8.
void require_valid_utf8_cli(const std::string& text);

/// A std::filesystem exception as one line naming the path, what failed and why:
/// "out/run: cannot create directories (Not a directory)" instead of libstdc++'s
/// "filesystem error: cannot create directories: Not a directory [out/run]".
std::string filesystem_error_message(const std::filesystem::filesystem_error& e);

/// main()'s error reporting, called inside `catch (...)`: one line on stderr and the exit code.
/// 0 after --help / --version (CLI11 prints them); 2 for usage and bad arguments (CLI11 parse
/// errors, InvalidArgument, OutOfRange); 3 for I/O and malformed files (IoError, FormatError, a
/// std::filesystem error as filesystem_error_message, out of memory); 4 unsupported; 70 internal
/// error; 1 anything else. Every message is printed through escape_message (reslens/error.h), so
/// neither the library's messages nor CLI11's or the standard library's (which may quote arguments
/// and paths) can put control characters on the terminal.
int report_current_exception(CLI::App& app);

}  // namespace reslens::cli

namespace reslens::cli {

/// A --target / --foil value as the library's TokenName (reslens/explain_request.h): none when empty,
/// an id when all digits, else a text.
std::optional<TokenName> token_name(const std::string& spec);

/// explain's --target / --foil: ids separated by commas ("262,3576": two or more) go to `ids`, anything
/// else to `name` (token_name's rule). An empty value given on the command line is InvalidArgument
/// ("the target is empty: name a token"); not given, both stay unset.
void set_target_spec(const std::string& spec, bool given, const char* what, std::optional<TokenName>& name,
                     std::vector<int32_t>& ids);

/// The library's notes (how a name was resolved) on stderr, one "note: ..." line each.
void print_notes(const std::vector<std::string>& notes);

}  // namespace reslens::cli
