// reslens diff MODEL_A MODEL_B --batch prompts.jsonl -o OUT (diff_batch.h).
//
// OUT holds diff-batch.json (what the results were computed from: both models' shapes, the batch
// file's checksum, the options; "complete" once every line is done), diffs.jsonl (one line per valid
// input line, in input order: the `diff --json` document with "batch": {"line", "id"} added, or
// {"batch", "error"} for a prompt that cannot be compared), arrays/ (every compared prompt's scores
// at the summary's four levels, whole: diff_batch_arrays.h) and summary.json (diff_batch_summary.h),
// written at the end from diffs.jsonl and arrays/. Reading the file, resuming, the farm and the
// ordered writing are explain --batch's (batch_run.h); arrays/ is the driver's sidecar, so it is
// written in input order with the lines and cut back with them on --resume.
#include <iostream>
#include <sstream>

#include "batch_prompts.h"
#include "batch_run.h"
#include "diff_batch.h"
#include "diff_batch_arrays.h"
#include "diff_batch_summary.h"
#include "farm.h"
#include "reslens/diff.h"

namespace reslens::cli {

namespace {

// One prompt: the request as `reslens diff` builds it, compared, as one line. A problem of the prompt
// itself (bad position, unknown token, prompt too long) is the line's "error"; anything else ends the job.
std::string diff_line(const Model& a, const Model& b, const PromptArgs& prompt_opts, const DiffBatchArgs& args,
                      const BatchPrompt& p, int threads) {
  const nlohmann::ordered_json tag = {{"line", p.line}, {"id", p.id}};
  try {
    if (!p.target_tokens.empty() || !p.foil_tokens.empty()) {
      throw UnsupportedError("diff compares one target token: a target or foil of several tokens is not supported");
    }
    PromptArgs pa = prompt_opts;
    pa.text = p.prompt;
    pa.text_given = true;
    ExplainRequest req;
    req.tokens = pa.tokens(a);
    req.position = p.position;
    req.target = p.target;
    req.foil = p.foil;
    req.options.include_final_bias = args.final_bias;
    req.options.n_threads = threads;
    args.score.apply(req.options);
    DiffOptions dopt;
    dopt.top = args.top;
    dopt.split_top = args.split_top;
    const ModelDiff d = diff(a, b, req, dopt);
    ReportOptions rep;
    rep.top = args.top;
    // The line is the single diff's document (the notes included); the record carries every level
    // whole, which the document inlines only up to 4096 elements.
    return batch_result(batch_document_line(diff_json(a, b, d, rep), tag), diff_arrays_record(p.line, d));
  } catch (const InvalidArgument& e) {
    return batch_error_line(tag, e.what());
  } catch (const OutOfRange& e) {
    return batch_error_line(tag, e.what());
  } catch (const UnsupportedError& e) {
    return batch_error_line(tag, e.what());
  }
}

nlohmann::json diff_settings_json(const Model& a, const Model& b, const std::string& batch, const BatchPrompts& in,
                             const PromptArgs& pa, const DiffBatchArgs& args) {
  nlohmann::json j = {{"model_a", a.path().string()},
                      {"model_b", b.path().string()},
                      {"shape", shape_text(a)},
                      {"batch", batch},
                      {"batch_fingerprint", std::to_string(in.fingerprint)},
                      {"prompts", in.prompts.size()},
                      {"skipped_lines", in.skipped.size()},
                      {"options",
                       {{"top", args.top},
                        {"split_top", args.split_top},
                        {"include_final_bias", args.final_bias},
                        {"bos", pa.bos},
                        {"parse_special", !pa.plain_special},
                        {"chat", pa.chat},
                        {"chat_template", pa.chat_template},
                        {"system", pa.system}}}};
  // The knobs set away from their defaults, as explain --batch records them: a resume must use the
  // same ones, and a batch begun before they existed (all defaults) still resumes.
  j["options"].update(args.score.changed());
  return j;
}

}  // namespace

void run_diff_batch(const std::string& model_a, ModelArgs& margs, const PromptArgs& prompt, const DiffBatchArgs& args) {
  BatchCommand c;
  c.spec.command = "diff --batch";
  c.spec.batch_file = args.batch;
  c.spec.out = args.out;
  c.spec.results_name = "diffs.jsonl";
  c.spec.settings_name = "diff-batch.json";
  c.spec.resume = args.resume;
  c.spec.force = args.force;
  c.spec.quiet = args.quiet;
  c.protocol = "reslens diff batch farm 1";
  c.threads = margs.threads;
  c.strict = args.strict;
  std::shared_ptr<const Model> a, b;
  c.load = [&] {
    b = margs.load();
    refuse_batch_text(prompt.text_given, prompt.text);
    LoadOptions o;
    o.tokenizer_path = margs.tokenizer;
    o.weights_as_float32 = margs.weights_f32;
    a = Model::load(model_a, o);
    require_same_shape(*a, *b);  // refused once, before any prompt
  };
  c.settings = [&](const BatchPrompts& in) { return diff_settings_json(*a, *b, args.batch, in, prompt, args); };
  c.line = [&](const BatchPrompt& p, int threads) { return diff_line(*a, *b, prompt, args, p, threads); };
  DiffBatchArrays arrays;
  c.sidecar = &arrays;
  BatchPrompts in;
  const auto done = run_batch_command(c, in);
  if (!done) return;
  // The summary from the whole results file and arrays/, so a resumed run summarizes what it kept too.
  const std::filesystem::path jsonl_path = c.spec.out / c.spec.results_name;
  DiffBatchSummary summary(args.top);
  {
    std::istringstream lines(read_whole_file(jsonl_path));
    std::string text;
    while (std::getline(lines, text)) summary.add_line(text);
  }
  summary.add_arrays(c.spec.out / "arrays");
  write_text_file(c.spec.out / "summary.json", summary.json(static_cast<int64_t>(in.skipped.size())).dump(2) + "\n");
  report_batch_done(c.spec, *done, in.prompts.size(), "compared", ", summary in " + (c.spec.out / "summary.json").string());
}

}  // namespace reslens::cli
