// The input of `reslens explain --batch FILE`: JSON lines {"prompt", "target"?, "foil"?, "position"?,
// "id"?}. A target or foil given as a JSON string is a text (" Paris"), as a number a token id; a
// list of numbers is a sequence of ids. "id" (any JSON value) is copied into the line's result.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "reslens/explain_request.h"

namespace reslens::cli {

struct BatchPrompt {
  int64_t line = 0;   ///< 1-based line in the file
  std::string prompt;
  std::optional<TokenName> target, foil;
  std::vector<int32_t> target_tokens, foil_tokens;
  int position = -1;
  nlohmann::json id;  ///< null when the line has none
};

struct BatchProblem {
  int64_t line = 0;
  std::string message;
};

struct BatchPrompts {
  std::vector<BatchPrompt> prompts;   ///< in file order; the n-th is task n
  std::vector<BatchProblem> skipped;  ///< malformed lines (reported, not explained)
  uint64_t fingerprint = 0;           ///< FNV-1a 64 of the file's bytes: resumes and ranks compare it
};

/// Reads FILE. A malformed line (not a JSON object, no string "prompt", a target, foil, position or id
/// of the wrong type) is listed in `skipped`, or with `strict` throws FormatError "FILE:LINE: ...".
/// Blank lines are ignored. IoError when the file cannot be read; FormatError when no prompt is left.
BatchPrompts read_batch_prompts(const std::filesystem::path& path, bool strict);

}  // namespace reslens::cli
