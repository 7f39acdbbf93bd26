// Reports of an explanation: one JSON document (schema in docs/explain-schema.json), a terminal
// report, and the full score arrays as .npy files. Used by the CLI, the web server and Python.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "reslens/explain.h"
#include "reslens/explain_target.h"
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

/// A target of several tokens (explain_target()) as one JSON document (docs/explain.md, "Targets of
/// several tokens"): the prompt, the target's and foil's tokens with their log-probabilities,
/// "steps" (each step's explain_json() document), "foil_steps" (the foil's own steps) and
/// "summed" (every level summed over the steps, ranked, with each entry's per-step scores).
std::string target_json(const Model& model, const ExplainedTarget& done, const ReportOptions& ro = {});

/// The same document as JSON lines (`reslens explain --jsonl`): one line per step, {"kind": "step",
/// "sequence": "target" or "foil", "step": t, "explanation": the step's explain_json() document},
/// then one line with target_json()'s document less "steps" and "foil_steps" ("kind":
/// "target_summary"). A reader can show each token's explanation before the summary arrives.
std::string target_jsonl(const Model& model, const ExplainedTarget& done, const ReportOptions& ro = {});
/// target_jsonl()'s lines one at a time, for a reader that shows steps as they finish
/// (ExplainRequest::on_step_explained): step `t` of `pass` as its "step" line ("target" or "foil";
/// `index` is its step number in that sequence), and the closing "target_summary" line. Each ends
/// with a newline; the lines in target_jsonl()'s order are target_jsonl().
std::string target_step_line(const Model& model, const TeacherForcedPass& pass, size_t t, const char* sequence,
                             int index, const ReportOptions& ro = {});
std::string target_summary_line(const Model& model, const ExplainedTarget& done, const ReportOptions& ro = {});

/// The terminal report of a target of several tokens: the steps' log-probabilities, the summed
/// layers, heads and neurons with their per-step scores, then each step's top components.
std::string target_text(const Model& model, const ExplainedTarget& done, const ReportOptions& ro = {});

/// The HTML page of a target of several tokens: the target as a token strip; each token opens its
/// step's report, "all" the summed scores (docs/report.md). UnsupportedError as explain_html().
std::string target_html(const Model& model, const ExplainedTarget& done, const ReportOptions& ro = {});

/// What `reslens explain --out DIR` writes for a target of several tokens: every per-step array
/// under its single-position name with a leading step axis ([m, ...]; source-position axes padded
/// with 0 to the last step's P + m), the summed arrays as summed_<name>.npy, the foil's own steps
/// in DIR/foil_steps/ the same way. Creates DIR; the CLI writes target_json() beside them as
/// explanation.json.
void write_target_arrays(const std::filesystem::path& dir, const ExplainedTarget& done);

/// "L12 attn", "L12H3", "L12N345", "L12H3D7@4": the labels every report uses.
std::string label_layer(int64_t layer, bool ffn);
std::string label_head(int64_t layer, int64_t head);
std::string label_ffn_neuron(int64_t layer, int64_t neuron);
std::string label_attn_neuron(int64_t layer, int64_t head, int64_t dim, int64_t pos);

}  // namespace reslens
