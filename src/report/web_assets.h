// The page of the HTML report and of the `reslens serve` explorer, embedded at build time from
// web/ (cmake/ReslensWebAssets.cmake bundles web/src with esbuild and embeds the result with
// cmake/ReslensEmbedFile.cmake). When node and npm were missing at configure time the strings are
// empty and kAvailable is false. Internal.
#pragma once

#include <string_view>

namespace reslens::web_assets {

extern const bool kAvailable;
extern const std::string_view kPageTemplate;  ///< web/src/template.html, with @@RESLENS_*@@ placeholders
extern const std::string_view kScript;        ///< the bundled page script (ECharts inside)
extern const std::string_view kStyle;         ///< the bundled stylesheet
/// web/src/graph.js as written (an ES module that imports nothing): the circuit drawing, in every
/// build, for graph_html()'s standalone page.
extern const std::string_view kGraphScript;

}  // namespace reslens::web_assets
