// The shared driver of `explain --batch` and `diff --batch` (batch_run.h).
#include "batch_run.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "common.h"
#include "progress.h"
#include "reslens/run.h"

namespace reslens::cli {

namespace {
namespace fs = std::filesystem;
}  // namespace

std::string read_whole_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError(p.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string batch_error_line(const nlohmann::ordered_json& tag, const std::string& message) {
  return nlohmann::ordered_json{{"batch", tag}, {"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string batch_result(const std::string& line, const std::string& payload) {
  return payload.empty() ? line : line + '\n' + payload;
}

std::string batch_document_line(const std::string& document, const nlohmann::ordered_json& tag) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(document);  // the document's own key order
  j["batch"] = tag;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void check_batch_out(const BatchRunSpec& spec) {
  if (spec.out.empty()) throw InvalidArgument(spec.command + " needs an output folder: -o OUT");
  if (spec.resume && spec.force) throw InvalidArgument("--resume and --force contradict each other: choose one");
  std::error_code ec;
  const fs::path& out = spec.out;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) throw InvalidArgument(out.string() + " exists and is not a folder");
  const bool has = fs::exists(out, ec) && !fs::is_empty(out, ec);
  if (has && !spec.resume && !spec.force) {
    throw InvalidArgument(out.string() + " already exists: pass --resume to continue the batch in it, or --force to "
                          "replace its results");
  }
  if (spec.resume && has && !fs::exists(out / spec.settings_name, ec)) {
    throw InvalidArgument(out.string() + " has no " + spec.settings_name + ": not a reslens " + spec.command +
                          " folder to resume");
  }
}

namespace {

// The readable prefix of an interrupted run's results: lines that parse and belong to the prompts in
// order. The rest (a half-written last line) is dropped and computed again.
size_t done_prefix(const fs::path& file, const BatchPrompts& in) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return 0;
  std::istringstream lines(read_whole_file(file));
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

BatchRunOutcome run_batch_coordinator(Farm& farm, const BatchRunSpec& spec, const BatchPrompts& in,
                                      const nlohmann::json& settings, const TaskFn& work, int threads,
                                      BatchSidecar* sidecar) {
  const bool distributed = launcher_size() > 0;
  const fs::path& out = spec.out;
  const fs::path jsonl_path = out / spec.results_name, settings_path = out / spec.settings_name;
  for (size_t i = 0; i < in.skipped.size() && i < 10; ++i) {
    std::cerr << "warning: " << spec.batch_file << ":" << in.skipped[i].line << ": " << in.skipped[i].message << " (line skipped)\n";
  }
  if (in.skipped.size() > 10) std::cerr << "warning: ... and " << in.skipped.size() - 10 << " more malformed lines\n";

  BatchRunOutcome res;
  std::error_code ec;
  if (spec.resume && fs::exists(settings_path, ec)) {
    nlohmann::json old;
    try {
      old = nlohmann::json::parse(read_whole_file(settings_path));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(settings_path.string() + ": " + e.what());
    }
    nlohmann::json want = settings, have = old.value("settings", nlohmann::json());
    for (const char* path_key : {"model", "model_a", "model_b", "batch"}) {  // paths are for people; checksums and shapes decide
      want.erase(path_key);
      have.erase(path_key);
    }
    if (want != have) {
      throw InvalidArgument(out.string() + " holds a batch run with another batch file or other options: resume it "
                            "with the same ones, or pass --force to start over");
    }
    res.already = done_prefix(jsonl_path, in);
    if (!spec.quiet) std::cerr << "resuming: " << res.already << " prompt(s) already done\n";
  }
  fs::create_directories(out, ec);
  if (ec) throw IoError(out.string() + ": cannot create the output folder (" + ec.message() + ")");
  // Keep exactly the readable prefix (and the sidecar's part for it), then append.
  {
    std::string keep;
    std::vector<std::string> kept;
    if (res.already > 0) {
      std::istringstream lines(read_whole_file(jsonl_path));
      std::string text;
      for (size_t n = 0; n < res.already && std::getline(lines, text); ++n) {
        keep += text + "\n";
        kept.push_back(text);
      }
    }
    if (sidecar != nullptr) sidecar->begin(out, kept);  // refuses a sidecar that does not match, before any change here
    write_text_file(jsonl_path, keep);
  }
  const auto write_settings = [&](bool complete) {
    write_text_file(settings_path, nlohmann::json{{"complete", complete}, {"settings", settings}}.dump(2) + "\n");
  };
  write_settings(false);
  std::vector<int64_t> tasks;
  for (size_t i = res.already; i < in.prompts.size(); ++i) tasks.push_back(static_cast<int64_t>(i));
  if (!spec.quiet) {
    std::cerr << spec.command << ": " << tasks.size() << " prompt(s) to compute"
              << (distributed ? " on " + std::to_string(farm.size()) + " rank(s) x " : std::string(" on "))
              << threads << " thread(s)\n";
  }
  std::ofstream jsonl(jsonl_path, std::ios::binary | std::ios::app);
  if (!jsonl) throw IoError(jsonl_path.string() + ": cannot open for appending");
  ProgressDisplay progress("prompts", "prompt", static_cast<int64_t>(res.already), static_cast<int64_t>(in.prompts.size()),
                           spec.quiet);
  // Results arrive in completion order and are written in input order: the finished prompts wait
  // here until every earlier one is written.
  std::map<int64_t, std::string> waiting;
  auto next = static_cast<int64_t>(res.already);
  int64_t finished = 0;
  farm.coordinate(tasks, 1, work, [&](int64_t task, const std::string& line) {
    waiting.emplace(task, line);
    ++finished;
    for (auto it = waiting.find(next); it != waiting.end(); it = waiting.find(next)) {
      if (it->second.rfind("{\"batch\":", 0) == 0) ++res.errors;  // an error line; a document starts with its schema_version
      const size_t nl = it->second.find('\n');  // the line, then the sidecar's payload (batch_result)
      if (sidecar != nullptr) sidecar->append(it->second.substr(0, nl), nl == std::string::npos ? std::string() : it->second.substr(nl + 1));
      jsonl.write(it->second.data(), static_cast<std::streamsize>(std::min(nl, it->second.size())));
      jsonl << '\n';
      waiting.erase(it);
      ++next;
    }
    jsonl.flush();
    if (!jsonl) throw IoError(jsonl_path.string() + ": cannot write (disk full?)");
    progress.update(finished, res.errors > 0 ? std::to_string(res.errors) + " failed" : std::string());
  });
  jsonl.close();
  res.computed = tasks.size();
  write_settings(true);
  if (!in.skipped.empty()) std::cerr << "warning: " << in.skipped.size() << " malformed line(s) of " << spec.batch_file << " skipped\n";
  return res;
}

void refuse_batch_text(bool text_given, const std::string& text) {
  if (text_given) {
    throw InvalidArgument("'" + text + "' is not a model file, and --batch takes no prompt TEXT (the file's "
                          "lines are the prompts)");
  }
}

std::optional<BatchRunOutcome> run_batch_command(const BatchCommand& c, BatchPrompts& in) {
  const auto farm = make_farm(c.spec.command.c_str());
  const bool distributed = launcher_size() > 0;
  nlohmann::json settings;
  std::exception_ptr setup_error;
  try {
    if (farm->coordinator()) check_batch_out(c.spec);
    c.load();
    in = read_batch_prompts(c.spec.batch_file, c.strict);
    settings = c.settings(in);
  } catch (...) {
    setup_error = std::current_exception();
  }
  if (!farm->ready(setup_error, c.protocol + "\n" + settings.dump())) return std::nullopt;
  const int threads = distributed ? threads_per_rank(c.threads) : c.threads > 0 ? c.threads : default_threads();
  // One prompt at a time per rank, on all of the rank's threads (the numbers do not depend on them).
  const TaskFn work = [&](int64_t i) { return c.line(in.prompts.at(static_cast<size_t>(i)), threads); };
  if (!farm->coordinator()) {
    farm->serve(1, work);
    return std::nullopt;
  }
  return run_batch_coordinator(*farm, c.spec, in, settings, work, threads, c.sidecar);
}

void report_batch_done(const BatchRunSpec& spec, const BatchRunOutcome& done, size_t prompts,
                       const std::string& failed_verb, const std::string& extra) {
  const fs::path jsonl_path = spec.out / spec.results_name;
  if (done.errors > 0) {
    std::cerr << "warning: " << done.errors << " prompt(s) could not be " << failed_verb << "; see \"error\" in "
              << jsonl_path.string() << "\n";
  }
  if (!spec.quiet) {
    std::cerr << "done: " << done.computed << " prompt(s) this run (" << done.errors << " failed), " << prompts << " in "
              << jsonl_path.string() << extra << "\n";
  }
}

}  // namespace reslens::cli
