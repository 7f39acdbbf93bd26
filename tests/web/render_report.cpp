// web_render_report DOC.json [HEADS.json] OUT.html: the report page for an explain_json() document
// without a model, through the same code as explain_html(). The browser tests use it for a
// synthetic explanation of the largest size (32 layers x 32 heads, 1000 neurons per list).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/html_page.h"

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: web_render_report DOC.json [HEADS.json] OUT.html\n";
    return 2;
  }
  try {
    auto read = [](const char* path) {
      std::ifstream in(path, std::ios::binary);
      if (!in) throw std::runtime_error(std::string("cannot read ") + path);
      return nlohmann::json::parse(in);
    };
    const nlohmann::json doc = read(argv[1]);
    const nlohmann::json heads = argc == 4 ? read(argv[2]) : nlohmann::json(nullptr);
    std::ofstream out(argv[argc - 1], std::ios::binary);
    out << reslens::report::report_page(doc, heads);
    if (!out.flush()) throw std::runtime_error(std::string("cannot write ") + argv[argc - 1]);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
