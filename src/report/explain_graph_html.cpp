// explain_html_with_graph(): the explain report with the prediction's circuit (docs/report.md,
// "Circuit"). The graph is graph() of the same tokens, position and target with the explain
// options, so the embedded document equals what `reslens graph` writes for that request; a refused
// graph (mixture of experts, empty after pruning) becomes one line on the page instead of no report.
#include "report/html_page.h"
#include "reslens/error.h"
#include "reslens/graph.h"

namespace reslens {

std::string explain_html_with_graph(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                                    const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro,
                                    const GraphOptions& options) {
  if (!report::web_page_available()) throw UnsupportedError(report::web_page_missing_message());
  ExplainRequest req;
  req.tokens.assign(tokens.begin(), tokens.end());
  req.position = eo.position;
  req.target = TokenName{ex.target, ""};
  // As `reslens graph` explains (its flags: threads and the final bias), so the embedded document is
  // the one that command writes for this prompt, position and target.
  req.options.include_final_bias = eo.include_final_bias;
  req.options.n_threads = eo.n_threads;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(graph_json(model, graph(model, req, options)));
  } catch (const UnsupportedError& e) {
    doc = {{"unavailable", e.what()}};
  } catch (const InvalidArgument& e) {
    doc = {{"unavailable", e.what()}};
  }
  const std::string block =
      "<script type=\"application/json\" id=\"reslens-graph\">" + report::script_safe_json(doc) + "</script>\n";
  return report::explain_page(model, run, tokens, ex, eo, ro, block);
}

}  // namespace reslens
