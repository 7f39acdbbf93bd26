// reslens explain MODEL TEXT: every score of the paper for the next-token prediction at a position,
// as a terminal report, one JSON document (--json), the full arrays as .npy (--out DIR) and a
// self-contained HTML page (--html FILE). A --target of several tokens (" New Delhi"), or a given
// answer (--continuation TEXT, tokenized with the prompt), is explained step by step by teacher
// forcing, with the steps' scores summed (reslens/explain_target.h). --generate N explains the model's
// own answer the same way (explain_generated); --jsonl prints one line per step, then the summary.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "common.h"
#include "explain_batch.h"
#include "explain_progress.h"
#include "progress.h"
#include "score_method_args.h"
#include "report/html_page.h"
#include "reslens/graph.h"

namespace reslens::cli {

void register_explain(CLI::App& app) {
  auto* cmd = app.add_subcommand("explain", "Attribute the next-token prediction to layers, heads, positions and neurons");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto target = std::make_shared<std::string>();
  auto foil = std::make_shared<std::string>();
  auto continuation = std::make_shared<std::string>();
  auto position = std::make_shared<int>(-1);
  auto top = std::make_shared<int>(20);
  auto json = std::make_shared<bool>(false);
  auto out = std::make_shared<std::string>();
  auto html = std::make_shared<std::string>();
  auto final_bias = std::make_shared<bool>(false);
  auto compat = std::make_shared<std::string>("paper");
  auto baselines = std::make_shared<bool>(false);
  auto query_n = std::make_shared<int>(30);
  auto generate_n = std::make_shared<int64_t>(0);
  auto temp = std::make_shared<double>(0.0);
  auto seed = std::make_shared<uint64_t>(0);
  auto jsonl = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  // --batch FILE -o OUT: many prompts, one JSON line each (cmd_explain_batch.cpp).
  auto batch = std::make_shared<ExplainBatchArgs>();
  cmd->add_option("--batch", batch->batch,
                  "Explain every line of a JSONL file ({\"prompt\", \"target\"?, \"foil\"?, \"position\"?, \"id\"?}) into "
                  "OUT/explanations.jsonl (-o OUT); runs over MPI ranks under mpirun or srun (docs/distributed.md)");
  cmd->add_flag("--resume", batch->resume, "With --batch: continue the interrupted batch in OUT");
  cmd->add_flag("--force", batch->force, "With --batch: replace the results in an existing OUT");
  cmd->add_flag("--strict", batch->strict, "With --batch: a malformed line is fatal instead of skipped");
  cmd->add_flag("--arrays", batch->arrays, "With --batch: also write each prompt's .npy arrays to OUT/arrays/LINE/");
  cmd->add_flag("-q,--quiet", batch->quiet, "With --batch: no progress output");
  cmd->add_option("--target", *target,
                  "Target: text (' Paris', ' New Delhi': several tokens are explained step by step) or ids (262 or "
                  "262,3576) (default: the top prediction)");
  auto* target_opt = cmd->get_option("--target");
  cmd->add_option("--foil", *foil, "Contrast text or ids: scores become log p(target) - log p(foil)");
  cmd->add_option("--continuation", *continuation,
                  "A given answer: its text tokenized after the prompt's (it must start at a token boundary and "
                  "decode back to itself), every token explained step by step")
      ->excludes(target_opt);
  auto* generate_opt =
      cmd->add_option("--generate", *generate_n,
                      "Generate up to N tokens (stopping at the end of the turn), then explain every generated token "
                      "at its position and the whole answer")
          ->excludes(target_opt)
          ->excludes(cmd->get_option("--continuation"));
  cmd->add_option("--temp", *temp, "With --generate: sampling temperature, as `reslens generate` (0 = greedy)")
      ->check(CLI::NonNegativeNumber)
      ->needs(generate_opt);
  cmd->add_option("--seed", *seed, "With --generate: random seed for sampling, as `reslens generate`")->needs(generate_opt);
  cmd->add_option("-p,--position", *position, "Position to explain (0-based; -1 = last)");
  cmd->add_option("--top", *top, "Entries per ranked list")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", *json, "Print one JSON document (schema: docs/explain-schema.json)");
  cmd->add_flag("--jsonl", *jsonl,
                "Print JSON lines: one explanation per answer token (explain-schema.json, with its step), then the "
                "answer's summary")
      ->excludes(cmd->get_option("--json"));
  cmd->add_option("-o,--out", *out, "Also write every score array as .npy (and explanation.json) into this folder");
  cmd->add_option("--html", *html, "Also write the explanation as one self-contained HTML page (docs/report.md)");
  cmd->add_flag("--include-final-bias", *final_bias, "GPT-2: include ln_f's bias in the vocabulary projection");
  cmd->add_option("--compat", *compat, "paper (default) or notebook: reproduce the authors' notebooks")
      ->check(CLI::IsMember({"paper", "notebook"}));
  cmd->add_flag("--baselines", *baselines, "Also compute the alternative scores of spec 3.3 for every FFN neuron");
  cmd->add_option("--query-top", *query_n, "Value neurons the query analyses start from")->check(CLI::PositiveNumber);
  // --method, --bound-tol, --no-projection-cache, --no-sketch (score_method_args.h).
  auto score = std::make_shared<ScoreMethodArgs>();
  score->add(*cmd);
  cmd->callback([=] {
    if (!batch->batch.empty()) {
      for (const char* o : {"--target", "--foil", "--continuation", "--generate", "--position", "--json", "--jsonl", "--html", "--ids"}) {
        if (cmd->count(o) > 0) throw InvalidArgument(std::string(o) + " cannot be combined with --batch: each line of the file gives its own");
      }
      batch->out = *out;
      batch->top = *top;
      batch->final_bias = *final_bias;
      batch->compat_notebook = *compat == "notebook";
      batch->baselines = *baselines;
      batch->query_top = *query_n;
      batch->score = *score;
      run_explain_batch(*args, *prompt, *batch);
      return;
    }
    for (const char* o : {"--resume", "--force", "--strict", "--arrays", "--quiet"}) {
      if (cmd->count(o) > 0) throw InvalidArgument(std::string(o) + " applies to --batch only");
    }
    if (!html->empty() && !report::web_page_available()) throw UnsupportedError("--html: " + report::web_page_missing_message());
    const auto model = args->load();
    ExplainRequest req;
    req.tokens = prompt->tokens(*model);
    req.position = *position;
    set_target_spec(*target, cmd->count("--target") > 0, "target", req.target, req.target_tokens);
    if (cmd->count("--continuation") > 0) {
      // The answer as the model reads it after this prompt: both texts encoded together.
      req.target_tokens = continuation_tokens(*model, req.tokens, prompt->encode_with(model->tokenizer(), *continuation),
                                              *continuation);
    }
    set_target_spec(*foil, cmd->count("--foil") > 0, "foil", req.foil, req.foil_tokens);
    req.options.include_final_bias = *final_bias;
    req.options.compat_notebook = *compat == "notebook";
    req.options.baselines = *baselines;
    req.options.query_top_n = *query_n;
    req.options.n_threads = args->threads;
    score->apply(req.options);
    // A target (or foil) of several tokens is explained step by step (teacher forcing); one token
    // each gives explain()'s single-position result and documents, as before.
    ReportOptions rep;
    rep.top = *top;
    // --jsonl prints each step's line as soon as it is explained (a reader follows the answer as it
    // is explained); the foil's own steps and the summary follow at the end.
    if (*jsonl) {
      req.on_step_explained = [&](const TeacherForcedPass& pass, size_t t) {
        std::cout << target_step_line(*model, pass, t, "target", static_cast<int>(t), rep) << std::flush;
      };
    }
    // On a terminal: one line for the phases of an explain (a 7B model's take 20-60 s, and
    // its first also builds the model's bounds), and for an answer of several tokens, once its
    // first step is explained, a bar over the steps whose note names the running step's phase.
    const bool tty = ::isatty(2) == 1;
    cli::ExplainProgressLine line;
    std::unique_ptr<cli::ProgressDisplay> bar;
    int steps_done = 0, steps_total = 0;
    req.on_step = [&](int done, int total) {
      steps_done = done, steps_total = total;
      if (total < 2 || !tty) return;
      line.finish();
      if (!bar) bar = std::make_unique<cli::ProgressDisplay>("tokens", "tok", 0, total, false);
      bar->update(done);
    };
    req.on_progress = [&](const ExplainProgress& p) {
      if (bar == nullptr || steps_done >= steps_total) {  // before the bar, and after its last step
        line.update(p);
      } else if (p.total > 1 && p.done < p.total) {
        bar->update(steps_done, "step " + std::to_string(steps_done + 1) + ": " + std::string(p.phase) + " " +
                                    std::to_string(p.done) + "/" + std::to_string(p.total));
      }
    };
    GenerateOptions go;
    go.max_tokens = *generate_n;
    go.temperature = *temp;
    go.seed = *seed;
    const ExplainedTarget done = cmd->count("--generate") > 0 ? explain_generated(*model, req, go)
                                                              : explain_target(*model, req);
    line.finish();
    print_notes(done.notes);
    // The bounded method ran without a projection cache: on a terminal, say how to make it faster
    // (logs and pipes are left alone).
    if (done.target_pass.steps.front().explanation.method_counts.count("ffn_bounded") != 0 && ::isatty(2) == 1) {
      const ProjectionCacheInfo info = projection_cache_info(*model);
      if (!info.present && !info.path.empty()) {
        std::cerr << "tip: `reslens precompute " << model->path().string() << "` builds this model's projection cache ("
                  << size_text(info.bytes) << ", once), which makes its explains several times faster\n";
      }
    }
    bar.reset();
    // A generated answer always gets the answer's documents, even when it is one token long.
    if (!done.single() || done.generated || *jsonl) {
      if (!out->empty()) {
        write_target_arrays(*out, done);
        write_text_file(std::filesystem::path(*out) / "explanation.json", target_json(*model, done, rep) + "\n");
      }
      if (!html->empty()) write_text_file(*html, target_html(*model, done, rep));
      if (*jsonl) {  // the target's steps are printed already
        for (size_t t = 0; t < done.foil_pass.steps.size(); ++t) {
          std::cout << target_step_line(*model, done.foil_pass, t, "foil", done.first_foil_step + static_cast<int>(t), rep);
        }
        std::cout << target_summary_line(*model, done, rep);
      } else {
        std::cout << (*json ? target_json(*model, done, rep) + "\n" : target_text(*model, done, rep));
      }
      return;
    }
    const std::vector<int32_t>& tokens = done.target_pass.tokens;
    const RunResult& run = *done.target_pass.run;
    const ExplainOptions& eo = done.target_pass.steps.front().options;
    const Explanation& ex = done.target_pass.steps.front().explanation;
    if (!out->empty()) {
      write_explain_arrays(*out, ex);
      write_text_file(std::filesystem::path(*out) / "explanation.json", explain_json(*model, run, tokens, ex, eo, rep) + "\n");
    }
    if (!html->empty()) {
      // With the circuit of the same prediction (default thresholds; docs/report.md, "Circuit").
      const std::string page = explain_html_with_graph(*model, run, tokens, ex, eo, rep);
      write_text_file(*html, page);
    }
    if (*json) {
      std::cout << explain_json(*model, run, tokens, ex, eo, rep) << "\n";
    } else {
      std::cout << explain_text(*model, run, tokens, ex, eo, rep);
    }
  });
}

}  // namespace reslens::cli
