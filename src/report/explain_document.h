// The pieces of the explanation reports that the multi-token target's reports reuse: the
// single-position JSON document (each step of a target is one), the arrays of `--out`, and the
// text helpers. Internal to the report module.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "reslens/explain.h"
#include "reslens/report.h"

namespace reslens::report {

inline constexpr int kSchemaVersion = 1;

/// Always valid UTF-8 for JSON and terminals (other bytes of invalid text become '?').
std::string clean(const std::string& s);
/// A token's text, clean.
std::string tok(const Model& m, int32_t id);
nlohmann::json token_texts(const Model& m, const std::vector<int32_t>& ids);
/// The knobs that decide how scores are computed (method as asked: "auto" stays "auto"), one object
/// for every document that records them: explain's and diff's `options`, graph's `generation_settings`.
nlohmann::json score_knobs(const ExplainOptions& eo);

/// A flat index of an attention-neuron array [L, H, d_head, n] as its four indices.
struct Unpacked {
  int64_t l, h, n, p;
};
Unpacked unpack_attn(const std::vector<int64_t>& shape, int64_t idx);

/// How many of the flat indices `top` fall in each of L layers of `per_layer` entries.
std::vector<int64_t> layer_counts(const std::vector<int64_t>& top, int64_t per_layer, int64_t L);

/// explain_json()'s document, before it is printed.
nlohmann::json explain_document(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                                const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro);

/// Every score array of an explanation under its `--out` name (without .npy), in the order
/// write_explain_arrays() writes them; empty arrays (no contrast, dense models) are left out.
std::vector<std::pair<std::string, ScoreArray>> explanation_arrays(const Explanation& ex);

/// Creates `dir` (and its parents); IoError naming it when that fails.
void create_output_folder(const std::filesystem::path& dir);

/// A number with `prec` decimals (and its sign when `sign`), right-aligned in `width` columns.
std::string num(double v, int prec, bool sign = false, int width = 0);
/// `s` then spaces up to `width` columns (at least one).
std::string pad(const std::string& s, size_t width);
/// The first `n` strings of a JSON array, each in single quotes.
std::string quoted(const nlohmann::json& texts, size_t n);

}  // namespace reslens::report
