// The explanation as one self-contained HTML file: the page of web/ (template, bundled script with
// its charting library, stylesheet) with the explain_json() document inlined as
// <script type="application/json" id="reslens-data">, and every head's per-position scores and
// attention weights as id="reslens-heads" so any head can be inspected offline.
#include <cmath>
#include <cstdio>

#include "report/html_page.h"
#include "report/web_assets.h"
#include "reslens/error.h"
#include "reslens/report.h"

namespace reslens {

namespace report {

using nlohmann::json;

bool web_page_available() { return web_assets::kAvailable; }

std::string web_page_missing_message() {
  return "this reslens was built without its web page (node and npm were not found when it was configured, "
         "or RESLENS_BUILD_WEB was off); install nodejs and npm and rebuild";
}

std::string script_safe_json(const json& j) {
  const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 64);
  for (const char c : text) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_page(std::string_view title, std::string_view data_blocks) {
  if (!web_page_available()) throw UnsupportedError(web_page_missing_message());
  const std::string_view tpl = web_assets::kPageTemplate;
  std::string out;
  out.reserve(tpl.size() + web_assets::kScript.size() + web_assets::kStyle.size() + data_blocks.size() + 256);
  // Each placeholder is replaced once, left to right; inserted text is never scanned again.
  size_t at = 0;
  while (true) {
    const size_t open = tpl.find("@@RESLENS_", at);
    if (open == std::string_view::npos) break;
    const size_t close = tpl.find("@@", open + 10);
    if (close == std::string_view::npos) throw InternalError("web page template: unterminated placeholder");
    out.append(tpl.substr(at, open - at));
    const std::string_view name = tpl.substr(open + 10, close - open - 10);
    if (name == "TITLE") out += html_escape(title);
    else if (name == "STYLE") out.append(web_assets::kStyle);
    else if (name == "SCRIPT") out.append(web_assets::kScript);
    else if (name == "DATA") out.append(data_blocks);
    else throw InternalError("web page template: unknown placeholder " + std::string(name));
    at = close + 2;
  }
  out.append(tpl.substr(at));
  return out;
}

namespace {

// "reslens: ...end of the prompt → target" as the window title; `tokens` [{"text"}], up to `position`.
std::string page_title(const json& tokens, int64_t position, const std::string& target) {
  std::string prompt;
  for (size_t i = 0; i < tokens.size() && static_cast<int64_t>(i) <= position; ++i) {
    prompt += tokens[i]["text"].get<std::string>();
  }
  if (prompt.size() > 60) {
    size_t cut = prompt.size() - 60;
    while (cut < prompt.size() && (static_cast<unsigned char>(prompt[cut]) & 0xC0) == 0x80) ++cut;  // whole characters
    prompt = "…" + prompt.substr(cut);
  }
  return "reslens: " + prompt + " → " + target;
}

}  // namespace

std::string report_page(const json& doc, const json& heads, std::string_view extra_blocks) {
  const std::string title = page_title(doc["tokens"], doc.value("position", int64_t{0}), doc["target"]["text"].get<std::string>());
  std::string blocks = "<script type=\"application/json\" id=\"reslens-data\">" + script_safe_json(doc) + "</script>\n";
  if (!heads.is_null()) {
    blocks += "<script type=\"application/json\" id=\"reslens-heads\">" + script_safe_json(heads) + "</script>\n";
  }
  blocks += extra_blocks;
  return render_page(title, blocks);
}

std::string explorer_page() {
  return render_page("reslens explorer", "<script type=\"application/json\" id=\"reslens-config\">{\"mode\":\"serve\"}</script>\n");
}

namespace {

// Five significant digits keep the per-head arrays small; the exact values are in the .npy output.
double short_number(double v) {
  if (!std::isfinite(v) || v == 0) return std::isfinite(v) ? v : 0.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.5g", v);
  return std::strtod(buf, nullptr);
}

json per_head(const ScoreArray& a) {  // [L, H, P+1] -> nested arrays
  json out = json::array();
  const int64_t L = a.shape.at(0), H = a.shape.at(1), P1 = a.shape.at(2);
  for (int64_t l = 0; l < L; ++l) {
    json row = json::array();
    for (int64_t h = 0; h < H; ++h) {
      json pos = json::array();
      for (int64_t p = 0; p < P1; ++p) pos.push_back(short_number(a.values[static_cast<size_t>((l * H + h) * P1 + p)]));
      row.push_back(std::move(pos));
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace

}  // namespace report

std::string report::explain_page(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                                 const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro,
                                 std::string_view extra_blocks) {
  if (!report::web_page_available()) throw UnsupportedError(report::web_page_missing_message());
  const nlohmann::json doc = nlohmann::json::parse(explain_json(model, run, tokens, ex, eo, ro));
  nlohmann::json heads = nullptr;
  if (ex.head_position.shape.size() == 3 && ex.attn_weight.shape == ex.head_position.shape) {
    heads = {{"head_pos", report::per_head(ex.head_position)}, {"attn_weight", report::per_head(ex.attn_weight)}};
  }
  return report::report_page(doc, heads, extra_blocks);
}

std::string explain_html(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro) {
  return report::explain_page(model, run, tokens, ex, eo, ro, {});
}

std::string target_html(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  if (!report::web_page_available()) throw UnsupportedError(report::web_page_missing_message());
  const nlohmann::json doc = nlohmann::json::parse(target_json(model, done, ro));
  // Every step's per-head arrays, so any head of any step can be inspected offline.
  nlohmann::json heads = nlohmann::json::array();
  for (const TargetStep& st : done.target_pass.steps) {
    const Explanation& ex = st.explanation;
    heads.push_back({{"head_pos", report::per_head(ex.head_position)}, {"attn_weight", report::per_head(ex.attn_weight)}});
  }
  const std::string title = report::page_title(doc["prompt"], done.position, doc["target"]["text"].get<std::string>());
  const std::string blocks =
      "<script type=\"application/json\" id=\"reslens-data\">" + report::script_safe_json(doc) + "</script>\n" +
      "<script type=\"application/json\" id=\"reslens-heads\">" + report::script_safe_json(heads) + "</script>\n";
  return report::render_page(title, blocks);
}

}  // namespace reslens
