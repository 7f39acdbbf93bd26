// reslens explain MODEL --batch prompts.jsonl -o OUT (explain_batch.h).
//
// OUT holds batch.json (what the results were computed from: model, batch file checksum, options;
// "complete" once every line is done), explanations.jsonl (one line per valid input line, in input
// order: the `explain --json` document with "batch": {"line", "id"} added, or {"batch", "error"} for
// a prompt that cannot be explained), and with --arrays, arrays/<line>/ (explain --out's .npy files).
// Lines are appended in input order as they finish, so a killed run keeps a prefix of the results
// and --resume continues after it. Under mpirun or srun, rank 0 hands out the prompts and writes
// explanations.jsonl; every rank writes its own prompts' arrays (OUT must then be on a shared disk).
// The folder, resume, farm and ordered writing are batch_run.h's, shared with `diff --batch`.
#include <chrono>
#include <iostream>

#include "batch_prompts.h"
#include "batch_run.h"
#include "explain_batch.h"
#include "farm.h"

namespace reslens::cli {

namespace {

namespace fs = std::filesystem;

// One prompt: the request as `reslens explain` builds it, explained, as one line. A problem of the
// prompt itself (bad position, unknown token, prompt too long) is the line's "error"; anything else
// (out of memory, a bug) ends the job.
std::string explain_line(const Model& model, const PromptArgs& prompt_opts, const ExplainBatchArgs& b,
                         const BatchPrompt& p, int threads, const fs::path& arrays_dir) {
  const nlohmann::ordered_json tag = {{"line", p.line}, {"id", p.id}};
  try {
    PromptArgs pa = prompt_opts;
    pa.text = p.prompt;
    pa.text_given = true;
    ExplainRequest req;
    req.tokens = pa.tokens(model);
    req.position = p.position;
    req.target = p.target;
    req.target_tokens = p.target_tokens;
    req.foil = p.foil;
    req.foil_tokens = p.foil_tokens;
    req.options.include_final_bias = b.final_bias;
    req.options.compat_notebook = b.compat_notebook;
    req.options.baselines = b.baselines;
    req.options.query_top_n = b.query_top;
    req.options.n_threads = threads;
    b.score.apply(req.options);
    const ExplainedTarget done = explain_target(model, req);
    ReportOptions rep;
    rep.top = b.top;
    std::string doc;
    const fs::path dir = arrays_dir / std::to_string(p.line);
    if (!done.single()) {
      doc = target_json(model, done, rep);
      if (!arrays_dir.empty()) write_target_arrays(dir, done);
    } else {
      const auto& step = done.target_pass.steps.front();
      doc = explain_json(model, *done.target_pass.run, done.target_pass.tokens, step.explanation, step.options, rep);
      if (!arrays_dir.empty()) write_explain_arrays(dir, step.explanation);
    }
    nlohmann::ordered_json full_tag = tag;
    if (!done.notes.empty()) full_tag["notes"] = done.notes;
    return batch_document_line(doc, full_tag);
  } catch (const InvalidArgument& e) {
    return batch_error_line(tag, e.what());
  } catch (const OutOfRange& e) {
    return batch_error_line(tag, e.what());
  } catch (const UnsupportedError& e) {
    return batch_error_line(tag, e.what());
  }
}

nlohmann::json settings_json(const std::string& model, const std::string& batch, const BatchPrompts& in,
                             const PromptArgs& pa, const ExplainBatchArgs& b) {
  nlohmann::json j = {{"model", model},
          {"batch", batch},
          {"batch_fingerprint", std::to_string(in.fingerprint)},
          {"prompts", in.prompts.size()},
          {"skipped_lines", in.skipped.size()},
          {"options",
           {{"top", b.top},
            {"include_final_bias", b.final_bias},
            {"compat", b.compat_notebook ? "notebook" : "paper"},
            {"baselines", b.baselines},
            {"query_top", b.query_top},
            {"arrays", b.arrays},
            {"bos", pa.bos},
            {"parse_special", !pa.plain_special},
            {"chat", pa.chat},
            {"chat_template", pa.chat_template},
            {"system", pa.system}}}};
  // Only the knobs set away from their defaults, so that a batch begun before they existed resumes.
  j["options"].update(b.score.changed());
  return j;
}

}  // namespace

void run_explain_batch(ModelArgs& margs, const PromptArgs& prompt, const ExplainBatchArgs& b) {
  BatchCommand c;
  c.spec.command = "explain --batch";
  c.spec.batch_file = b.batch;
  c.spec.out = b.out;
  c.spec.results_name = "explanations.jsonl";
  c.spec.settings_name = "batch.json";
  c.spec.resume = b.resume;
  c.spec.force = b.force;
  c.spec.quiet = b.quiet;
  c.protocol = "reslens explain batch farm 1";
  c.threads = margs.threads;
  c.strict = b.strict;
  std::shared_ptr<const Model> model;
  c.load = [&] {
    model = margs.load();
    refuse_batch_text(prompt.text_given, prompt.text);
  };
  c.settings = [&](const BatchPrompts& in) { return settings_json(model->path().string(), b.batch, in, prompt, b); };
  const fs::path arrays_dir = b.arrays ? fs::path(b.out) / "arrays" : fs::path();
  c.line = [&](const BatchPrompt& p, int threads) { return explain_line(*model, prompt, b, p, threads, arrays_dir); };
  BatchPrompts in;
  const auto done = run_batch_command(c, in);
  if (done) report_batch_done(c.spec, *done, in.prompts.size(), "explained");
}

}  // namespace reslens::cli
