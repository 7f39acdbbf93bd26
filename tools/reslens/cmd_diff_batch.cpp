// reslens diff MODEL_A MODEL_B --batch prompts.jsonl -o OUT (diff_batch.h).
//
// OUT holds diff-batch.json (what the results were computed from: both models' shapes, the batch
// file's checksum, the options; "complete" once every line is done), diffs.jsonl (one line per valid
// input line, in input order: the `diff --json` document with "batch": {"line", "id"} added, or
// {"batch", "error"} for a prompt that cannot be compared) and summary.json (diff_batch_summary.h),
// written at the end from diffs.jsonl. Reading the file, resuming, the farm and the ordered writing
// are explain --batch's (batch_run.h).
#include <iostream>
#include <sstream>

#include "batch_prompts.h"
#include "batch_run.h"
#include "diff_batch.h"
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
    DiffOptions dopt;
    dopt.top = args.top;
    dopt.split_top = args.split_top;
    const ModelDiff d = diff(a, b, req, dopt);
    ReportOptions rep;
    rep.top = args.top;
    return batch_document_line(diff_json(a, b, d, rep), tag);  // the document has the notes already
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
  return {{"model_a", a.path().string()},
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
}

}  // namespace

void run_diff_batch(const std::string& model_a, ModelArgs& margs, const PromptArgs& prompt, const DiffBatchArgs& args) {
  const auto farm = make_farm("diff --batch");
  const bool distributed = launcher_size() > 0;
  BatchRunSpec spec;
  spec.command = "diff --batch";
  spec.batch_file = args.batch;
  spec.out = args.out;
  spec.results_name = "diffs.jsonl";
  spec.settings_name = "diff-batch.json";
  spec.resume = args.resume;
  spec.force = args.force;
  spec.quiet = args.quiet;
  std::shared_ptr<const Model> a, b;
  BatchPrompts in;
  nlohmann::json settings;
  std::exception_ptr setup_error;
  try {
    if (farm->coordinator()) check_batch_out(spec);
    b = margs.load();
    if (prompt.text_given) {
      throw InvalidArgument("'" + prompt.text + "' is not a model file, and --batch takes no prompt TEXT (the file's "
                            "lines are the prompts)");
    }
    LoadOptions o;
    o.tokenizer_path = margs.tokenizer;
    o.weights_as_float32 = margs.weights_f32;
    a = Model::load(model_a, o);
    require_same_shape(*a, *b);  // refused once, before any prompt
    in = read_batch_prompts(args.batch, args.strict);
    settings = diff_settings_json(*a, *b, args.batch, in, prompt, args);
  } catch (...) {
    setup_error = std::current_exception();
  }
  if (!farm->ready(setup_error, "reslens diff batch farm 1\n" + settings.dump())) return;
  const int threads = distributed ? threads_per_rank(margs.threads) : margs.threads > 0 ? margs.threads : default_threads();
  // One prompt at a time per rank, on all of the rank's threads (the diff does not depend on them).
  const TaskFn work = [&](int64_t i) { return diff_line(*a, *b, prompt, args, in.prompts.at(static_cast<size_t>(i)), threads); };
  if (!farm->coordinator()) {
    farm->serve(1, work);
    return;
  }
  const BatchRunOutcome done = run_batch_coordinator(*farm, spec, in, settings, work, threads);
  // The summary from the whole results file, so a resumed run summarizes the lines it kept too.
  const std::filesystem::path jsonl_path = spec.out / spec.results_name;
  DiffBatchSummary summary(args.top);
  {
    std::istringstream lines(read_whole_file(jsonl_path));
    std::string text;
    while (std::getline(lines, text)) summary.add_line(text);
  }
  write_text_file(spec.out / "summary.json", summary.json(static_cast<int64_t>(in.skipped.size())).dump(2) + "\n");
  if (done.errors > 0) std::cerr << "warning: " << done.errors << " prompt(s) could not be compared; see \"error\" in " << jsonl_path.string() << "\n";
  if (!args.quiet) {
    std::cerr << "done: " << done.computed << " prompt(s) this run (" << done.errors << " failed), " << in.prompts.size()
              << " in " << jsonl_path.string() << ", summary in " << (spec.out / "summary.json").string() << "\n";
  }
}

}  // namespace reslens::cli
