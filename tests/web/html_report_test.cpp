// The HTML report: self-contained (nothing loaded from elsewhere), the explain_json() document
// inlined exactly, and no token text can end the <script> element it sits in.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "report/html_page.h"
#include "reslens/graph.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using nlohmann::json;

// The text of <script type="application/json" id="ID">...</script>.
std::string script_text(const std::string& html, const std::string& id) {
  const std::string open = "<script type=\"application/json\" id=\"" + id + "\">";
  const size_t a = html.find(open);
  if (a == std::string::npos) return "";
  const size_t b = html.find("</script>", a);
  return html.substr(a + open.size(), b - a - open.size());
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(HtmlPage, ScriptSafeJsonEscapesEverythingThatCouldCloseTheElement) {
  const json j = {{"text", "</script><script>alert(1)</script> <!-- & -->"}, {"n", 1.5}};
  const std::string s = report::script_safe_json(j);
  EXPECT_EQ(s.find('<'), std::string::npos) << s;
  EXPECT_EQ(s.find('>'), std::string::npos) << s;
  EXPECT_EQ(s.find('&'), std::string::npos) << s;
  EXPECT_EQ(json::parse(s), j);
}

TEST(HtmlPage, HtmlEscape) {
  EXPECT_EQ(report::html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(HtmlPage, HostileTokenTextStaysInsideTheDataElement) {
  if (!report::web_page_available()) GTEST_SKIP() << report::web_page_missing_message();
  const std::string evil = "</script><script>document.title='pwned'</script><!--";
  json doc = {{"tokens", {{{"id", 1}, {"text", evil}}}}, {"position", 0}, {"target", {{"id", 2}, {"text", evil}}}};
  const std::string html = report::report_page(doc, nullptr);
  EXPECT_EQ(json::parse(script_text(html, "reslens-data")), doc);
  EXPECT_EQ(html.find(evil), std::string::npos);
  // The title holds the token text, escaped.
  EXPECT_NE(html.find("<title>reslens: &lt;/script&gt;"), std::string::npos);
  // One closing tag per script element: the data block and the page script.
  EXPECT_EQ(count(html, "</script>"), 2u);
}

// A target of several tokens: the target document inlined exactly, and each step's per-head arrays.
TEST(HtmlPage, TargetPageCarriesTheTargetDocumentAndEveryStepsHeads) {
  if (!report::web_page_available()) GTEST_SKIP() << report::web_page_missing_message();
  const auto model = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
  ExplainRequest req;
  req.prompt = "Once upon a time";
  req.target = TokenName{-1, " there was a"};
  const ExplainedTarget done = explain_target(*model, req);
  const std::string html = target_html(*model, done);
  EXPECT_EQ(json::parse(script_text(html, "reslens-data")), json::parse(target_json(*model, done)));
  const json heads = json::parse(script_text(html, "reslens-heads"));
  ASSERT_EQ(heads.size(), 3u);
  for (size_t t = 0; t < 3; ++t) {  // [L][H][P + t + 1]: each step its own source positions
    EXPECT_EQ(heads[t]["head_pos"][0][0].size(), done.target_pass.steps[t].explanation.head_position.shape[2]);
  }
  EXPECT_NE(html.find("<title>reslens: "), std::string::npos);
  EXPECT_NE(html.find(" there was a</title>"), std::string::npos);
}

TEST(HtmlPage, MissingPageGivesAClearError) {
  if (report::web_page_available()) GTEST_SKIP() << "this build has the page";
  EXPECT_THROW(report::explorer_page(), UnsupportedError);
}

class ExplainHtml : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
    tokens_ = model_->tokenizer().encode("Once upon a time", true);
    RunOptions ro;
    ro.capture = explain_capture();
    ro.all_logits = true;
    run_ = new RunResult(run(*model_, tokens_, ro));
    ex_ = new Explanation(explain(*model_, *run_, tokens_, eo_));
  }
  static void TearDownTestSuite() {
    delete ex_;
    delete run_;
    model_.reset();
  }
  static inline std::shared_ptr<const Model> model_;
  static inline std::vector<int32_t> tokens_;
  static inline RunResult* run_ = nullptr;
  static inline Explanation* ex_ = nullptr;
  static inline ExplainOptions eo_;
};

TEST_F(ExplainHtml, EmbedsTheJsonDocumentAndEveryHead) {
  if (!report::web_page_available()) {
    EXPECT_THROW(explain_html(*model_, *run_, tokens_, *ex_, eo_), UnsupportedError);
    GTEST_SKIP() << report::web_page_missing_message();
  }
  const std::string html = explain_html(*model_, *run_, tokens_, *ex_, eo_);
  const json data = json::parse(script_text(html, "reslens-data"));
  EXPECT_EQ(data, json::parse(explain_json(*model_, *run_, tokens_, *ex_, eo_)));
  const json heads = json::parse(script_text(html, "reslens-heads"));
  const auto& c = model_->config();
  ASSERT_EQ(heads["head_pos"].size(), static_cast<size_t>(c.n_layers));
  ASSERT_EQ(heads["head_pos"][0].size(), static_cast<size_t>(c.n_heads));
  ASSERT_EQ(heads["head_pos"][0][0].size(), tokens_.size());
  ASSERT_EQ(heads["attn_weight"][static_cast<size_t>(c.n_layers - 1)][static_cast<size_t>(c.n_heads - 1)].size(), tokens_.size());
  EXPECT_NEAR(heads["head_pos"][1][0][2].get<double>(), ex_->head_position.at({1, 0, 2}), 1e-4 * std::abs(ex_->head_position.at({1, 0, 2})) + 1e-12);
}

TEST_F(ExplainHtml, IsSelfContained) {
  if (!report::web_page_available()) GTEST_SKIP() << report::web_page_missing_message();
  const std::string html = explain_html(*model_, *run_, tokens_, *ex_, eo_);
  // No element loads anything from elsewhere (the browser test also watches the network).
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(count(html, "<script src"), 0u);
  EXPECT_EQ(count(html, "<link rel=\"stylesheet\""), 0u);
  EXPECT_NE(html.find("<title>reslens: "), std::string::npos);
}

// The circuit section's data: graph_json() of the same request (same tokens, position and target,
// default thresholds), and none on the page without the graph.
TEST_F(ExplainHtml, EmbedsTheCircuitOfTheSameRequest) {
  if (!report::web_page_available()) GTEST_SKIP() << report::web_page_missing_message();
  const std::string html = explain_html_with_graph(*model_, *run_, tokens_, *ex_, eo_);
  ExplainRequest req;
  req.tokens = tokens_;  // the top prediction at the last position, as the explanation above
  const json expected = json::parse(graph_json(*model_, graph(*model_, req)));
  const json embedded = json::parse(script_text(html, "reslens-graph"));
  EXPECT_EQ(embedded, expected);
  EXPECT_GT(embedded["links"].size(), 0u);
  EXPECT_EQ(json::parse(script_text(html, "reslens-data")), json::parse(explain_json(*model_, *run_, tokens_, *ex_, eo_)));
  EXPECT_EQ(count(html, "id=\"reslens-graph\""), 1u);
  EXPECT_EQ(script_text(explain_html(*model_, *run_, tokens_, *ex_, eo_), "reslens-graph"), "");
}

// A refused graph (here: nothing left after pruning at node share 0) leaves the report whole and
// puts the reason where the graph would be.
TEST_F(ExplainHtml, RefusedCircuitIsOneLineOnThePage) {
  if (!report::web_page_available()) GTEST_SKIP() << report::web_page_missing_message();
  GraphOptions go;
  go.node_threshold = 0;
  const std::string html = explain_html_with_graph(*model_, *run_, tokens_, *ex_, eo_, {}, go);
  const json embedded = json::parse(script_text(html, "reslens-graph"));
  ASSERT_TRUE(embedded.contains("unavailable")) << embedded.dump();
  EXPECT_NE(embedded["unavailable"].get<std::string>().find("empty after pruning"), std::string::npos);
  EXPECT_EQ(json::parse(script_text(html, "reslens-data")), json::parse(explain_json(*model_, *run_, tokens_, *ex_, eo_)));
}

// The standalone `graph --html` page draws with the same web/src/graph.js (in every build).
TEST(GraphHtml, UsesTheOneDrawingAndEmbedsTheDocument) {
  const auto model = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
  ExplainRequest req;
  req.prompt = "Once upon a time";
  const CircuitGraph g = graph(*model, req);
  const std::string html = graph_html(*model, g);
  EXPECT_EQ(json::parse(script_text(html, "reslens-graph")), json::parse(graph_json(*model, g)));
  EXPECT_NE(html.find("export function drawGraph("), std::string::npos);
  EXPECT_EQ(count(html, "</script>"), 2u);  // the data and the module, nothing closes early
}

}  // namespace
}  // namespace reslens
