// reslens explain MODEL --batch prompts.jsonl -o OUT (explain_batch.h).
//
// OUT holds batch.json (what the results were computed from: model, batch file checksum, options;
// "complete" once every line is done), explanations.jsonl (one line per valid input line, in input
// order: the `explain --json` document with "batch": {"line", "id"} added, or {"batch", "error"} for
// a prompt that cannot be explained), and with --arrays, arrays/<line>/ (explain --out's .npy files).
// Lines are appended in input order as they finish, so a killed run keeps a prefix of the results
// and --resume continues after it. Under mpirun or srun, rank 0 hands out the prompts and writes
// explanations.jsonl; every rank writes its own prompts' arrays (OUT must then be on a shared disk).
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "batch_prompts.h"
#include "explain_batch.h"
#include "farm.h"
#include "progress.h"

namespace reslens::cli {

namespace {

namespace fs = std::filesystem;

std::string read_batch_out_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError(p.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(doc);  // the document's own key order
    j["batch"] = tag;
    if (!done.notes.empty()) j["batch"]["notes"] = done.notes;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const InvalidArgument& e) {
    return nlohmann::ordered_json{{"batch", tag}, {"error", e.what()}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const OutOfRange& e) {
    return nlohmann::ordered_json{{"batch", tag}, {"error", e.what()}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const UnsupportedError& e) {
    return nlohmann::ordered_json{{"batch", tag}, {"error", e.what()}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

nlohmann::json settings_json(const std::string& model, const std::string& batch, const BatchPrompts& in,
                             const PromptArgs& pa, const ExplainBatchArgs& b) {
  return {{"model", model},
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
}

// The readable prefix of an interrupted run's explanations.jsonl: lines that parse and belong to the
// prompts in order. The rest (a half-written last line) is dropped and computed again.
size_t done_prefix(const fs::path& file, const BatchPrompts& in) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return 0;
  std::istringstream lines(read_batch_out_file(file));
  std::string text;
  size_t n = 0;
  while (n < in.prompts.size() && std::getline(lines, text)) {
    try {
      const auto j = nlohmann::json::parse(text);
      if (j.at("batch").at("line").get<int64_t>() != in.prompts[n].line) break;
    } catch (const nlohmann::json::exception&) {
      break;
    }
    ++n;
  }
  return n;
}

}  // namespace

void run_explain_batch(ModelArgs& margs, const PromptArgs& prompt, const ExplainBatchArgs& b) {
  const auto farm = make_farm("explain --batch");
  const bool distributed = launcher_size() > 0;
  if (b.out.empty()) throw InvalidArgument("explain --batch needs an output folder: -o OUT");
  if (b.resume && b.force) throw InvalidArgument("--resume and --force contradict each other: choose one");
  const fs::path out(b.out);
  const fs::path jsonl_path = out / "explanations.jsonl", settings_path = out / "batch.json";
  std::shared_ptr<const Model> model;
  BatchPrompts in;
  nlohmann::json settings;
  std::exception_ptr setup_error;
  try {
    if (farm->coordinator()) {
      std::error_code ec;
      if (fs::exists(out, ec) && !fs::is_directory(out, ec)) throw InvalidArgument(out.string() + " exists and is not a folder");
      const bool has = fs::exists(out, ec) && !fs::is_empty(out, ec);
      if (has && !b.resume && !b.force) {
        throw InvalidArgument(out.string() + " already exists: pass --resume to continue the batch in it, or --force to "
                              "replace its results");
      }
      if (b.resume && has && !fs::exists(settings_path, ec)) {
        throw InvalidArgument(out.string() + " has no batch.json: not a reslens explain --batch folder to resume");
      }
    }
    model = margs.load();
    if (prompt.text_given) {
      throw InvalidArgument("'" + prompt.text + "' is not a model file, and --batch takes no prompt TEXT (the file's "
                            "lines are the prompts)");
    }
    in = read_batch_prompts(b.batch, b.strict);
    settings = settings_json(model->path().string(), b.batch, in, prompt, b);
  } catch (...) {
    setup_error = std::current_exception();
  }
  if (!farm->ready(setup_error, "reslens explain batch farm 1\n" + settings.dump())) return;
  const int threads = distributed ? threads_per_rank(margs.threads) : margs.threads > 0 ? margs.threads : default_threads();
  const fs::path arrays_dir = b.arrays ? out / "arrays" : fs::path();
  // One prompt at a time per rank, on all of the rank's threads (explain's numbers do not depend on them).
  const TaskFn work = [&](int64_t i) {
    return explain_line(*model, prompt, b, in.prompts.at(static_cast<size_t>(i)), threads, arrays_dir);
  };
  if (!farm->coordinator()) {
    farm->serve(1, work);
    return;
  }
  for (size_t i = 0; i < in.skipped.size() && i < 10; ++i) {
    std::cerr << "warning: " << b.batch << ":" << in.skipped[i].line << ": " << in.skipped[i].message << " (line skipped)\n";
  }
  if (in.skipped.size() > 10) std::cerr << "warning: ... and " << in.skipped.size() - 10 << " more malformed lines\n";

  size_t already = 0;
  std::error_code ec;
  if (b.resume && fs::exists(settings_path, ec)) {
    nlohmann::json old;
    try {
      old = nlohmann::json::parse(read_batch_out_file(settings_path));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(settings_path.string() + ": " + e.what());
    }
    nlohmann::json want = settings, have = old.value("settings", nlohmann::json());
    want.erase("model");  // paths are for people; the checksum and the model's shape decide
    want.erase("batch");
    have.erase("model");
    have.erase("batch");
    if (want != have) {
      throw InvalidArgument(out.string() + " holds a batch run with another batch file or other options: resume it "
                            "with the same ones, or pass --force to start over");
    }
    already = done_prefix(jsonl_path, in);
    if (!b.quiet) std::cerr << "resuming: " << already << " prompt(s) already done\n";
  }
  fs::create_directories(out, ec);
  if (ec) throw IoError(out.string() + ": cannot create the output folder (" + ec.message() + ")");
  // Keep exactly the readable prefix, then append.
  {
    std::string keep;
    if (already > 0) {
      std::istringstream lines(read_batch_out_file(jsonl_path));
      std::string text;
      for (size_t n = 0; n < already && std::getline(lines, text); ++n) keep += text + "\n";
    }
    write_text_file(jsonl_path, keep);
  }
  const auto write_settings = [&](bool complete) {
    write_text_file(settings_path, nlohmann::json{{"complete", complete}, {"settings", settings}}.dump(2) + "\n");
  };
  write_settings(false);
  std::vector<int64_t> tasks;
  for (size_t i = already; i < in.prompts.size(); ++i) tasks.push_back(static_cast<int64_t>(i));
  if (!b.quiet) {
    std::cerr << "explain --batch: " << tasks.size() << " prompt(s) to explain"
              << (distributed ? " on " + std::to_string(farm->size()) + " rank(s) x " : std::string(" on "))
              << threads << " thread(s)\n";
  }
  std::ofstream jsonl(jsonl_path, std::ios::binary | std::ios::app);
  if (!jsonl) throw IoError(jsonl_path.string() + ": cannot open for appending");
  ProgressDisplay progress("prompts", "prompt", static_cast<int64_t>(already), static_cast<int64_t>(in.prompts.size()), b.quiet);
  // Results arrive in completion order and are written in input order: the finished prompts wait
  // here until every earlier one is written.
  std::map<int64_t, std::string> waiting;
  auto next = static_cast<int64_t>(already);
  int64_t finished = 0, errors = 0;
  farm->coordinate(tasks, 1, work, [&](int64_t task, const std::string& line) {
    waiting.emplace(task, line);
    ++finished;
    for (auto it = waiting.find(next); it != waiting.end(); it = waiting.find(next)) {
      if (it->second.rfind("{\"batch\":", 0) == 0) ++errors;  // an error line; a document starts with its schema_version
      jsonl << it->second << '\n';
      waiting.erase(it);
      ++next;
    }
    jsonl.flush();
    if (!jsonl) throw IoError(jsonl_path.string() + ": cannot write (disk full?)");
    progress.update(finished, errors > 0 ? std::to_string(errors) + " failed" : std::string());
  });
  jsonl.close();
  write_settings(true);
  if (!in.skipped.empty()) std::cerr << "warning: " << in.skipped.size() << " malformed line(s) of " << b.batch << " skipped\n";
  if (errors > 0) std::cerr << "warning: " << errors << " prompt(s) could not be explained; see \"error\" in " << jsonl_path.string() << "\n";
  if (!b.quiet) {
    std::cerr << "done: " << tasks.size() << " prompt(s) this run (" << errors << " failed), " << in.prompts.size()
              << " in " << jsonl_path.string() << "\n";
  }
}

}  // namespace reslens::cli
