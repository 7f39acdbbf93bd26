// reslens diff MODEL_A MODEL_B TEXT: one prompt explained under two models of the same shape (F16
// vs Q8_0, base vs fine-tuned): both predictions, every level side by side with B - A, the
// components that moved most, and each top neuron's change split into weights and activation
// (reslens/diff.h, docs/diff.md). --json prints one document, --out DIR writes the arrays as .npy,
// --html FILE a side-by-side page.
#include <iostream>

#include "commands.h"
#include "common.h"
#include "diff_batch.h"
#include "explain_progress.h"
#include "score_method_args.h"
#include "reslens/diff.h"

namespace reslens::cli {

void register_diff(CLI::App& app) {
  auto* cmd = app.add_subcommand("diff", "Compare the explanation of one prompt under two models of the same shape");
  auto model_a = std::make_shared<std::string>();
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto target = std::make_shared<std::string>();
  auto foil = std::make_shared<std::string>();
  auto position = std::make_shared<int>(-1);
  auto top = std::make_shared<int>(20);
  auto split_top = std::make_shared<int>(20);
  auto json = std::make_shared<bool>(false);
  auto out = std::make_shared<std::string>();
  auto html = std::make_shared<std::string>();
  auto final_bias = std::make_shared<bool>(false);
  cmd->add_option("model_a", *model_a, "Model A (the reference side: its prediction is the default target)")->required();
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("--target", *target, "Target token: text or id (default: model A's top prediction)");
  cmd->add_option("--foil", *foil, "Contrast token: text or id");
  cmd->add_option("-p,--position", *position, "Position to explain (0-based; -1 = last)");
  cmd->add_option("--top", *top, "Entries per ranked list")->check(CLI::PositiveNumber);
  cmd->add_option("--split-top", *split_top, "FFN and attention neurons (each) whose change is split into weights and activation")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", *json, "Print one JSON document (schema: docs/diff-schema.json)");
  cmd->add_option("-o,--out", *out, "Also write a/, b/ and delta/ .npy arrays, splits.npy and diff.json into this folder");
  cmd->add_option("--html", *html, "Also write the comparison as one self-contained HTML page (docs/diff.md)");
  cmd->add_flag("--include-final-bias", *final_bias, "GPT-2: include ln_f's bias in the vocabulary projection");
  // --batch FILE -o OUT: every line of a JSONL file, and a summary over them (cmd_diff_batch.cpp).
  auto batch = std::make_shared<DiffBatchArgs>();
  cmd->add_option("--batch", batch->batch,
                  "JSONL file of prompts ({\"prompt\", \"target\"?, \"foil\"?, \"position\"?, \"id\"?} per line): "
                  "write OUT/diffs.jsonl and OUT/summary.json (-o OUT)");
  cmd->add_flag("--resume", batch->resume, "With --batch: continue the interrupted batch in OUT");
  cmd->add_flag("--force", batch->force, "With --batch: replace the results in an existing OUT");
  cmd->add_flag("--strict", batch->strict, "With --batch: a malformed line is fatal instead of skipped");
  cmd->add_flag("-q,--quiet", batch->quiet, "With --batch: no progress output");
  // --method, --bound-tol, --no-projection-cache, --no-sketch: both sides' explanations, as explain's.
  auto score = std::make_shared<ScoreMethodArgs>();
  score->add(*cmd);
  cmd->callback([=] {
    if (!batch->batch.empty()) {
      for (const char* o : {"--target", "--foil", "--position", "--json", "--html", "--ids"}) {
        if (cmd->count(o) > 0) throw InvalidArgument(std::string(o) + " cannot be combined with --batch: each line of the file gives its own");
      }
      batch->out = *out;
      batch->top = *top;
      batch->split_top = *split_top;
      batch->final_bias = *final_bias;
      batch->score = *score;
      run_diff_batch(*model_a, *args, *prompt, *batch);
      return;
    }
    for (const char* o : {"--resume", "--force", "--strict", "--quiet"}) {
      if (cmd->count(o) > 0) throw InvalidArgument(std::string(o) + " applies to --batch only");
    }
    const auto b = args->load();  // the second positional; resolves the prompt's positionals too
    LoadOptions o;
    o.tokenizer_path = args->tokenizer;
    o.weights_as_float32 = args->weights_f32;
    const auto a = Model::load(*model_a, o);
    ExplainRequest req;
    req.tokens = prompt->tokens(*a);
    req.position = *position;
    if (cmd->count("--target") > 0) {
      req.target = token_name(*target);
      if (!req.target) throw InvalidArgument("the target is empty: name a token");
    }
    if (cmd->count("--foil") > 0) {
      req.foil = token_name(*foil);
      if (!req.foil) throw InvalidArgument("the foil is empty: name a token");
    }
    req.options.include_final_bias = *final_bias;
    req.options.n_threads = args->threads;
    score->apply(req.options);
    DiffOptions dopt;
    dopt.top = *top;
    dopt.split_top = *split_top;
    // On a terminal, the phases of both explains (two 7B models take two minutes or more).
    cli::ExplainProgressLine line;
    req.on_progress = line.callback();
    const ModelDiff d = diff(*a, *b, req, dopt);
    line.finish();
    print_notes(d.a.notes);
    ReportOptions rep;
    rep.top = *top;
    if (!out->empty()) {
      write_diff_arrays(*out, d);
      write_text_file(std::filesystem::path(*out) / "diff.json", diff_json(*a, *b, d, rep) + "\n");
    }
    if (!html->empty()) write_text_file(*html, diff_html(*a, *b, d, rep));
    std::cout << (*json ? diff_json(*a, *b, d, rep) + "\n" : diff_text(*a, *b, d, rep));
  });
}

}  // namespace reslens::cli
