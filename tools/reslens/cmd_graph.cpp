// reslens graph MODEL TEXT: the prediction's circuit (value neurons and heads, the query neurons
// that activate them, the input tokens, the target logit) as Neuronpedia's attribution-graph JSON
// (reslens/graph.h, docs/graph.md), on stdout or into --out FILE; --html FILE a page with the
// layered graph.
#include <iostream>

#include "commands.h"
#include "common.h"
#include "explain_progress.h"
#include "score_method_args.h"
#include "reslens/graph.h"

namespace reslens::cli {

void register_graph(CLI::App& app) {
  auto* cmd = app.add_subcommand("graph", "The prediction's circuit of value and query neurons, as attribution-graph JSON");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto target = std::make_shared<std::string>();
  auto position = std::make_shared<int>(-1);
  auto out = std::make_shared<std::string>();
  auto html = std::make_shared<std::string>();
  auto opt = std::make_shared<GraphOptions>();
  auto final_bias = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("--target", *target, "Target token: text or id (default: the top prediction)");
  cmd->add_option("-p,--position", *position, "Position to explain (0-based; -1 = last)");
  cmd->add_option("--top-values", opt->top_values, "FFN and attention value neurons (each) by score")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-heads", opt->top_heads, "Heads by score")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-queries", opt->top_queries, "Query FFN neurons by the weight of their edges")
      ->check(CLI::NonNegativeNumber);
  // Checked by the library (one line naming the flag and the range), not by CLI11.
  cmd->add_option("--node-threshold", opt->node_threshold,
                  "Keep the fewest nodes whose influence reaches this share of the total, in [0, 1] (default 0.8)");
  cmd->add_option("--edge-threshold", opt->edge_threshold,
                  "Then the fewest edges whose |weight| reaches this share of the total, in [0, 1] (default 0.98)");
  cmd->add_option("-o,--out", *out, "Write the JSON to this file instead of stdout");
  cmd->add_option("--html", *html, "Also write the graph as one self-contained HTML page (click a node for its edges)");
  cmd->add_flag("--include-final-bias", *final_bias, "GPT-2: include ln_f's bias in the vocabulary projection");
  // --method, --bound-tol, --no-projection-cache, --no-sketch: the explanation's, as explain's.
  auto score = std::make_shared<ScoreMethodArgs>();
  score->add(*cmd);
  cmd->callback([=] {
    const auto model = args->load();
    ExplainRequest req;
    req.tokens = prompt->tokens(*model);
    req.position = *position;
    if (cmd->count("--target") > 0) {
      req.target = token_name(*target);
      if (!req.target) throw InvalidArgument("the target is empty: name a token");
    }
    req.options.include_final_bias = *final_bias;
    req.options.n_threads = args->threads;
    score->apply(req.options);
    // On a terminal, the explain's phases (a 7B model's take 20-60 s).
    cli::ExplainProgressLine line;
    req.on_progress = line.callback();
    const CircuitGraph g = graph(*model, req, *opt);
    line.finish();
    print_notes(g.explained.notes);
    if (!html->empty()) write_text_file(*html, graph_html(*model, g));
    const std::string text = graph_json(*model, g) + "\n";
    if (out->empty()) {
      std::cout << text;
    } else {
      write_text_file(*out, text);
    }
  });
}

}  // namespace reslens::cli
