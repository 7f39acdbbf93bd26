// Assembling the page of web/ into HTML: the report file (explain_html) and the explorer of
// `reslens serve` share the template, the script and the stylesheet. Internal to the report module
// and the server.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "reslens/report.h"

namespace reslens::report {

/// Whether this build embedded the page (node and npm were found when it was configured).
bool web_page_available();

/// The one-line reason a page cannot be made in this build (for errors).
std::string web_page_missing_message();

/// JSON text that can sit inside <script type="application/json">: compact, and '<', '>' and '&'
/// written as \u escapes (they only occur inside strings), so "</script>" or "<!--" in a token's
/// text cannot end the element early.
std::string script_safe_json(const nlohmann::json& j);

/// Text for HTML element content or a quoted attribute.
std::string html_escape(std::string_view s);

/// The page with `title` and `data_blocks` (ready-made <script type="application/json"> elements).
/// Throws UnsupportedError when the page was not embedded.
std::string render_page(std::string_view title, std::string_view data_blocks);

/// The report page for an explain_json() document, with optional extra per-head arrays
/// ({"head_pos": [L][H][P+1], "attn_weight": [L][H][P+1]}; null to leave them out) and
/// `extra_blocks` (more ready-made data elements, e.g. the circuit's id="reslens-graph").
std::string report_page(const nlohmann::json& doc, const nlohmann::json& heads, std::string_view extra_blocks = {});

/// explain_html()'s page with `extra_blocks` after its data (explain_html_with_graph() adds the circuit).
std::string explain_page(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro,
                         std::string_view extra_blocks);

/// The explorer page served by `reslens serve` (no data: it calls the JSON API).
std::string explorer_page();

}  // namespace reslens::report
