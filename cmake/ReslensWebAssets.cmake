# The page of the HTML report and of `reslens serve`: `npm ci` installs web/package-lock.json into
# BUILD/web/node_modules, web/build.mjs bundles web/src with esbuild into BUILD/web/dist, and
# ReslensEmbedFile turns the template, script and stylesheet into BUILD/web/web_assets.cpp, which
# the static library reslens_web_assets compiles (see src/report/web_assets.h).
#
# Without node and npm (or with RESLENS_BUILD_WEB=OFF) the library holds empty strings and
# kAvailable = false: everything still builds, and `reslens explain --html` and the explorer page say
# in one line that the page is missing. Sets the global property RESLENS_WEB_ASSETS (ON/OFF) and
# RESLENS_WEB_NODE_MODULES for the tests.
include(ReslensEmbedFile)

set(_web_src ${PROJECT_SOURCE_DIR}/web)
set(_web_bin ${PROJECT_BINARY_DIR}/web)
file(MAKE_DIRECTORY ${_web_bin})

set(_web_ok OFF)
if(RESLENS_BUILD_WEB)
  find_program(RESLENS_NODE NAMES node nodejs DOC "node, to bundle the web page")
  find_program(RESLENS_NPM NAMES npm DOC "npm, to install web/package-lock.json")
  if(RESLENS_NODE AND RESLENS_NPM)
    set(_web_ok ON)
  else()
    message(WARNING "reslens: node or npm not found; building without the web page "
                    "(`reslens explain --html` and the page of `reslens serve` will say so). "
                    "Install nodejs and npm to build it.")
  endif()
endif()
set_property(GLOBAL PROPERTY RESLENS_WEB_ASSETS ${_web_ok})
set_property(GLOBAL PROPERTY RESLENS_WEB_NODE_MODULES ${_web_bin}/node_modules)

if(_web_ok)
  add_custom_command(
    OUTPUT ${_web_bin}/npm-ci.stamp
    COMMAND ${CMAKE_COMMAND} -E copy ${_web_src}/package.json ${_web_src}/package-lock.json ${_web_bin}
    COMMAND ${RESLENS_NPM} ci --ignore-scripts --no-audit --no-fund --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch ${_web_bin}/npm-ci.stamp
    WORKING_DIRECTORY ${_web_bin}
    DEPENDS ${_web_src}/package.json ${_web_src}/package-lock.json
    COMMENT "npm ci: the packages of web/package-lock.json"
    VERBATIM)
  file(GLOB _web_sources CONFIGURE_DEPENDS ${_web_src}/src/*)
  set(_dist ${_web_bin}/dist)
  add_custom_command(
    OUTPUT ${_dist}/template.html ${_dist}/reslens.js ${_dist}/reslens.css
    COMMAND ${RESLENS_NODE} ${_web_src}/build.mjs --node-modules ${_web_bin}/node_modules --out ${_dist}
    DEPENDS ${_web_bin}/npm-ci.stamp ${_web_src}/build.mjs ${_web_sources}
    COMMENT "Bundling the web page (esbuild)"
    VERBATIM)
  reslens_embed_files(
    OUTPUT ${_web_bin}/web_assets.cpp
    NAMESPACE reslens::web_assets
    NAMES kPageTemplate kScript kStyle
    FILES ${_dist}/template.html ${_dist}/reslens.js ${_dist}/reslens.css)
  set(_flag true)
else()
  file(WRITE ${_web_bin}/web_assets.cpp.in
       "// Generated: this build has no web page.\n#include <string_view>\n\nnamespace reslens::web_assets {\n"
       "extern const std::string_view kPageTemplate, kScript, kStyle;\n"
       "const std::string_view kPageTemplate, kScript, kStyle;\n}  // namespace reslens::web_assets\n")
  configure_file(${_web_bin}/web_assets.cpp.in ${_web_bin}/web_assets.cpp COPYONLY)
  set(_flag false)
endif()
file(WRITE ${_web_bin}/web_assets_flag.cpp.in
     "// Generated: whether this build embedded the web page.\nnamespace reslens::web_assets {\n"
     "extern const bool kAvailable;\nconst bool kAvailable = ${_flag};\n}  // namespace reslens::web_assets\n")
configure_file(${_web_bin}/web_assets_flag.cpp.in ${_web_bin}/web_assets_flag.cpp COPYONLY)

# The circuit drawing (web/src/graph.js imports nothing) is embedded raw in every build: the
# standalone page of `reslens graph --html` uses the same drawing as the report, without node.
reslens_embed_files(
  OUTPUT ${_web_bin}/graph_script.cpp
  NAMESPACE reslens::web_assets
  NAMES kGraphScript
  FILES ${_web_src}/src/graph.js)

add_library(reslens_web_assets STATIC ${_web_bin}/web_assets.cpp ${_web_bin}/web_assets_flag.cpp
                                      ${_web_bin}/graph_script.cpp)
target_compile_features(reslens_web_assets PRIVATE cxx_std_20)
