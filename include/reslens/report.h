// Reports of an explanation: one JSON document (schema in docs/explain-schema.json), a terminal
// report, and the full score arrays as .npy files. Used by the CLI, the web server and Python.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "reslens/explain.h"
#include "reslens/model.h"
#include "reslens/run.h"

namespace reslens {

struct ReportOptions {
  int top = 20;        ///< entries in each ranked list
  int token_k = 10;    ///< tokens in each vocabulary view
  int view_heads = 3;  ///< heads whose source positions get the per-position token views
  int view_neurons = 10;  ///< top neurons that get their vocabulary views
};

/// The explanation as one JSON document (pretty-printed).
std::string explain_json(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro = {});

/// A readable terminal report (plain text, UTF-8, no colours).
std::string explain_text(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro = {});

/// The explanation as one self-contained HTML page (docs/report.md): scripts, styles and data inline,
/// opens offline. The explain_json() document sits in <script type="application/json"
/// id="reslens-data"> (escaped so no token text can close the element). Throws UnsupportedError
/// when this build has no web page (node and npm were missing when it was configured).
std::string explain_html(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro = {});

/// Every score array as DIR/<name>.npy (float64) plus DIR/explanation.json; creates DIR.
void write_explain_arrays(const std::filesystem::path& dir, const Explanation& ex);

/// "L12 attn", "L12H3", "L12N345", "L12H3D7@4": the labels every report uses.
std::string label_layer(int64_t layer, bool ffn);
std::string label_head(int64_t layer, int64_t head);
std::string label_ffn_neuron(int64_t layer, int64_t neuron);
std::string label_attn_neuron(int64_t layer, int64_t head, int64_t dim, int64_t pos);

}  // namespace reslens
