// reslens experiment MODEL DATASET -o OUT: the paper's dataset-level evaluation (spec §5.2, §3.3),
// with files, resumption, shards and progress around the library's run_experiment().
// reslens experiment merge OUT SHARD_DIR...: one set of tables from several shards' folders.
//
// OUT holds run.json (settings, shard, sessions), sentences.jsonl (one result a line, appended as
// sentences finish, so an interrupted run loses at most the line being written; sorted by index
// once the run completes), and summary.json, summary.csv, summary.md.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.h"
#include "common.h"
#include "experiment/evaluate.h"
#include "farm.h"
#include "progress.h"

namespace reslens::cli {

namespace {

namespace fs = std::filesystem;

const char* const kOurFiles[] = {"run.json", "sentences.jsonl", "summary.json", "summary.csv", "summary.md"};

// The folder operations report failures as IoError naming the path and the reason (exit 3), never
// as a std::filesystem exception ("filesystem error: ...", exit 1).
[[noreturn]] void folder_error(const fs::path& p, const char* what, const std::error_code& ec) {
  throw IoError(p.string() + ": " + what + " (" + ec.message() + ")");
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  const bool e = fs::exists(p, ec);
  if (ec) folder_error(p, "cannot look it up", ec);
  return e;
}

bool has_contents(const fs::path& dir) {
  if (!path_exists(dir)) return false;
  std::error_code ec;
  const bool empty = fs::is_empty(dir, ec);
  if (ec) folder_error(dir, "cannot read the folder", ec);
  return !empty;
}

// An existing output folder is only reused when asked: --resume continues it, --force replaces the
// files reslens writes there (nothing else in the folder is touched). Checked before the slow parts,
// and nothing is created or removed until the model and the dataset have been read.
void check_out(const fs::path& out, bool resume, bool force) {
  std::error_code ec;
  if (path_exists(out) && !fs::is_directory(out, ec)) throw InvalidArgument(out.string() + " exists and is not a folder");
  if (has_contents(out) && !resume && !force) {
    throw InvalidArgument(out.string() + " already exists: pass --resume to continue the run in it, or --force to "
                          "replace its results");
  }
}

void prepare_out(const fs::path& out, bool resume, bool force) {
  check_out(out, resume, force);
  std::error_code ec;
  if (force) {
    for (const char* f : kOurFiles) {
      for (const fs::path& p : {out / f, out / (std::string(f) + ".tmp")}) {
        if (fs::remove(p, ec); ec) folder_error(p, "cannot remove the old result", ec);
      }
    }
  }
  fs::create_directories(out, ec);
  if (ec) folder_error(out, "cannot create the output folder", ec);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError(p.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Written to NAME.tmp and renamed, so a reader never sees half a file (and a failed write leaves
// none under the name).
void write_atomic(const fs::path& p, const std::string& text) { write_text_file(p, text); }

struct RunFile {
  Shard shard;
  ExperimentInfo info;
  bool complete = false;
  nlohmann::json sessions = nlohmann::json::array();
};

void write_run_file(const fs::path& out, const RunFile& r) {
  nlohmann::json j = {{"shard", r.shard.str()},
                      {"complete", r.complete},
                      {"settings", nlohmann::json::parse(experiment_info_json(r.info))},
                      {"sessions", r.sessions}};
  write_atomic(out / "run.json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

RunFile read_run_file(const fs::path& dir) {
  const fs::path p = dir / "run.json";
  if (!path_exists(p)) throw IoError(p.string() + ": not found (is " + dir.string() + " a reslens experiment folder?)");
  try {
    const auto j = nlohmann::json::parse(read_text(p));
    RunFile r;
    r.shard = parse_shard(j.at("shard").get<std::string>());
    r.complete = j.at("complete").get<bool>();
    r.info = parse_experiment_info(j.at("settings").dump());
    r.sessions = j.at("sessions");
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(p.string() + ": " + e.what());
  } catch (const FormatError& e) {
    throw FormatError(p.string() + ": " + e.what());
  } catch (const InvalidArgument& e) {
    throw FormatError(p.string() + ": " + e.what());
  }
}

// Results in a folder's sentences.jsonl. With `lenient`, unreadable lines (the line being written
// when a run was stopped) are dropped and counted; otherwise they are errors.
std::vector<SentenceResult> read_results(const fs::path& dir, bool lenient, int64_t* dropped) {
  const fs::path p = dir / "sentences.jsonl";
  std::vector<SentenceResult> out;
  if (!path_exists(p)) {
    if (lenient) return out;
    throw IoError(p.string() + ": not found");
  }
  std::istringstream in(read_text(p));
  std::string line;
  std::set<int64_t> seen;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      SentenceResult r = parse_sentence_result(line);
      if (!seen.insert(r.index).second) continue;  // a sentence written twice: the first counts
      out.push_back(std::move(r));
    } catch (const FormatError& e) {
      if (!lenient) throw FormatError(p.string() + ":" + std::to_string(n) + ": " + e.what());
      ++*dropped;
    }
  }
  return out;
}

std::string results_text(std::vector<SentenceResult> rs) {
  std::sort(rs.begin(), rs.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  std::string s;
  for (const auto& r : rs) s += sentence_result_json(r) + "\n";
  return s;
}

void write_summaries(const fs::path& out, const ExperimentSummary& s) {
  write_atomic(out / "summary.json", summary_json(s));
  write_atomic(out / "summary.csv", summary_csv(s));
  write_atomic(out / "summary.md", summary_markdown(s));
}

void report_skipped(const Dataset& d) {
  constexpr size_t kShown = 10;
  for (size_t i = 0; i < d.skipped.size() && i < kShown; ++i) {
    std::cerr << "warning: " << d.name << ":" << d.skipped[i].line << ": " << d.skipped[i].message << " (line skipped)\n";
  }
  if (d.skipped.size() > kShown) std::cerr << "warning: ... and " << d.skipped.size() - kShown << " more malformed lines\n";
}

// The headline numbers on stdout (the full tables are in summary.md).
void print_headline(const ExperimentSummary& s, const fs::path& out) {
  const TypeSummary& all = s.types.front();
  std::printf("%lld sentences, %lld kept (%lld not in the top %d, %lld below a competitor, %lld errors)\n",
              static_cast<long long>(all.n_sentences), static_cast<long long>(all.n_kept),
              static_cast<long long>(all.n_not_in_top_k), s.info.options.filter_top_k,
              static_cast<long long>(all.n_below_competitor), static_cast<long long>(all.n_error));
  std::printf("neuron counts: %s\n\n", s.info.counts.rule.c_str());
  std::printf("  %-58s %8s %9s %9s\n", "all types", "MRR", "prob", "log p");
  std::printf("  %-58s %8.3f %8.2f%% %9.3f\n", "original", all.before.mrr, 100 * all.before.prob, all.before.log_prob);
  for (const InterventionRow& r : all.interventions) {
    std::printf("  %-58s %8.3f %8.2f%% %9.3f\n", r.label.substr(0, 58).c_str(), r.after.mrr, 100 * r.after.prob,
                r.after.log_prob);
  }
  std::printf("\ntables: %s (also summary.json, summary.csv)\n", (out / "summary.md").string().c_str());
}

int64_t shard_size(int64_t n_sentences, const Shard& sh) {
  int64_t n = 0;
  for (int64_t i = 0; i < n_sentences; ++i) n += sh.contains(i) ? 1 : 0;
  return n;
}

struct RunArgs {
  std::vector<std::string> positional;  // [MODEL] DATASET
  std::string model_opt, tokenizer, out, shard = "1/1", bos = "auto";
  int threads = 0;
  bool resume = false, force = false, strict = false, quiet = false, no_baselines = false, no_random = false, no_parse_special = false;
  ExperimentOptions o;
};

void run_command(const RunArgs& a) {
  // Under mpirun or srun every rank runs this command; rank 0 writes OUT and hands out sentences, the
  // others evaluate them (farm.h). Without a launcher the farm is this process alone.
  const auto farm = make_farm("experiment");
  const bool distributed = launcher_size() > 0;
  // Like every command, the model may be left out (the default model) or given with -m.
  if (a.positional.empty() || a.positional.size() > 2) {
    throw InvalidArgument("experiment takes [MODEL] DATASET (or: experiment merge OUT SHARD_DIR...)");
  }
  const std::string dataset_path = a.positional.back();
  ModelArgs margs;
  margs.model = a.positional.size() == 2 ? a.positional.front() : "";
  margs.model_opt = a.model_opt;
  margs.tokenizer = a.tokenizer;
  if (a.out.empty()) throw InvalidArgument("experiment needs an output folder: -o OUT");
  if (a.resume && a.force) throw InvalidArgument("--resume and --force contradict each other: choose one");
  ExperimentOptions o = a.o;
  o.shard = parse_shard(a.shard);  // before the slow parts: a bad shard is a usage error
  o.strict = a.strict;
  o.baselines = !a.no_baselines;
  o.random = !a.no_random;
  o.n_threads = a.threads;
  if (a.bos != "auto") o.add_bos = a.bos == "yes";
  o.parse_special = !a.no_parse_special;
  experiment_counts(ModelConfig{}, o);  // validates the counts and the fraction before any work
  const fs::path out(a.out);
  // Every rank sets up (rank 0 alone looks at OUT); farm->ready() then ends the job with the first
  // rank's failure, or when a rank's model, data or settings differ from rank 0's.
  bool resuming = false;
  std::shared_ptr<const Model> model;
  Dataset dataset;
  ExperimentInfo info;
  std::exception_ptr setup_error;
  try {
    if (farm->coordinator()) {
      resuming = a.resume && path_exists(out / "run.json");
      if (a.resume && has_contents(out) && !resuming) {
        throw InvalidArgument(out.string() + " has no run.json: not a reslens experiment folder to resume");
      }
      check_out(out, a.resume, a.force);
    }
    model = margs.load();
    dataset = read_dataset(dataset_path, o.strict);
    info = experiment_info(*model, dataset, o);
  } catch (...) {
    setup_error = std::current_exception();
  }
  if (!farm->ready(setup_error, "reslens experiment farm 1\n" + experiment_info_json(info))) return;
  if (distributed) o.n_threads = threads_per_rank(o.n_threads);
  if (!farm->coordinator()) {
    // A worker: evaluates the sentences rank 0 sends (a task is a sentence's index).
    const TokenResolver resolver(model->tokenizer());
    const ExperimentCounts counts = experiment_counts(model->config(), o);
    farm->serve(o.n_threads, [&](int64_t i) {
      if (i < 0 || i >= static_cast<int64_t>(dataset.sentences.size())) throw InternalError("no sentence " + std::to_string(i));
      return sentence_result_json(experiment_impl::evaluate(*model, resolver, counts, dataset.sentences[static_cast<size_t>(i)], o));
    });
    return;
  }
  report_skipped(dataset);
  prepare_out(out, a.resume, a.force);

  RunFile rf{o.shard, info, false, nlohmann::json::array()};
  std::vector<SentenceResult> done;
  if (resuming) {
    const RunFile old = read_run_file(out);
    std::string diff = experiment_info_mismatch(old.info, info);
    if (old.shard.str() != o.shard.str()) diff += std::string(diff.empty() ? "" : ", ") + "shard (" + old.shard.str() + ")";
    if (!diff.empty()) {
      throw InvalidArgument(out.string() + " holds a run with other settings (" + diff +
                            "): resume it with the same ones, or pass --force to start over");
    }
    rf.sessions = old.sessions;
    int64_t dropped = 0;
    done = read_results(out, true, &dropped);
    for (const auto& r : done) {
      if (r.index < 0 || r.index >= info.dataset_sentences || !o.shard.contains(r.index)) {
        throw FormatError((out / "sentences.jsonl").string() + ": sentence " + std::to_string(r.index) +
                          " does not belong to shard " + o.shard.str());
      }
    }
    if (dropped > 0) std::cerr << "note: dropped " << dropped << " unreadable line(s) of an interrupted write; those sentences run again\n";
    std::cerr << "resuming: " << done.size() << " sentence(s) already done\n";
  }
  // Rewritten even on a fresh start, so the file holds exactly the readable results before appending.
  write_atomic(out / "sentences.jsonl", results_text(done));
  write_run_file(out, rf);

  std::set<int64_t> have;
  for (const auto& r : done) have.insert(r.index);
  std::vector<ExperimentSentence> todo;
  int64_t in_shard = 0;
  for (const auto& s : dataset.sentences) {
    if (!o.shard.contains(s.index)) continue;
    ++in_shard;
    if (!have.count(s.index)) todo.push_back(s);
  }
  const int threads = o.n_threads > 0 ? o.n_threads : default_threads();
  if (!a.quiet) {
    std::cerr << "experiment: " << todo.size() << " sentence(s) to evaluate (shard " << o.shard.str() << " holds "
              << in_shard << " of " << dataset.sentences.size() << ") on "
              << (distributed ? std::to_string(farm->size()) + " rank(s) x " : std::string()) << threads << " thread(s)\n";
  }
  std::ofstream jsonl(out / "sentences.jsonl", std::ios::binary | std::ios::app);
  if (!jsonl) throw IoError((out / "sentences.jsonl").string() + ": cannot open for appending");
  ProgressDisplay progress("sentences", "sent", static_cast<int64_t>(done.size()), in_shard, a.quiet);
  const auto start = std::chrono::steady_clock::now();
  std::vector<SentenceResult> fresh;
  if (!distributed) {
    fresh = run_experiment(
        *model, todo, o,
        [&](const SentenceResult& r) {
          jsonl << sentence_result_json(r) << '\n';  // one write per line, flushed: resumable after a kill
          jsonl.flush();
          if (!jsonl) throw IoError((out / "sentences.jsonl").string() + ": cannot write (disk full?)");
        },
        [&](const ExperimentProgress& p) { progress.update(p.done, "kept " + std::to_string(p.kept)); });
  } else {
    // Rank 0 hands out the sentences one at a time and evaluates some itself; every result arrives
    // as its JSON line (the round trip is exact), is appended as it comes, and is kept for the tables.
    const TokenResolver resolver(model->tokenizer());
    const ExperimentCounts counts = experiment_counts(model->config(), o);
    std::vector<int64_t> tasks;
    for (const auto& s : todo) tasks.push_back(s.index);
    int64_t kept = 0;
    farm->coordinate(
        tasks, o.n_threads,
        [&](int64_t i) {
          return sentence_result_json(experiment_impl::evaluate(*model, resolver, counts, dataset.sentences[static_cast<size_t>(i)], o));
        },
        [&](int64_t, const std::string& line) {
          SentenceResult r = parse_sentence_result(line);
          jsonl << line << '\n';
          jsonl.flush();
          if (!jsonl) throw IoError((out / "sentences.jsonl").string() + ": cannot write (disk full?)");
          kept += r.status == SentenceStatus::kKept ? 1 : 0;
          fresh.push_back(std::move(r));
          progress.update(static_cast<int64_t>(fresh.size()), "kept " + std::to_string(kept));
        });
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  jsonl.close();

  for (auto& r : fresh) done.push_back(std::move(r));
  const ExperimentSummary summary = summarize(info, done);
  write_atomic(out / "sentences.jsonl", results_text(done));
  write_summaries(out, summary);
  rf.complete = true;
  rf.sessions.push_back({{"threads", threads},
                         {"ranks", farm->size()},
                         {"evaluated", fresh.size()},
                         {"elapsed_s", elapsed.count()},
                         {"sentences_per_s", elapsed.count() > 0 ? static_cast<double>(fresh.size()) / elapsed.count() : 0.0}});
  write_run_file(out, rf);
  if (!dataset.skipped.empty()) {
    std::cerr << "warning: " << dataset.skipped.size() << " malformed line(s) of " << dataset.name << " skipped\n";
  }
  const TypeSummary& all = summary.types.front();
  if (all.n_multi_token_targets > 0 && !a.quiet) {
    std::cerr << "note: " << all.n_multi_token_targets << " target(s) are several tokens; their first token was used\n";
  }
  if (all.n_error > 0) std::cerr << "warning: " << all.n_error << " sentence(s) failed; see \"detail\" in sentences.jsonl\n";
  if (!a.quiet && distributed) {
    std::fprintf(stderr, "done: %zu sentence(s) in %s on %d rank(s) x %d thread(s)\n", fresh.size(),
                 duration(elapsed.count()).c_str(), farm->size(), threads);
  } else if (!a.quiet) {
    std::fprintf(stderr, "done: %zu sentence(s) in %s on %d thread(s)\n", fresh.size(), duration(elapsed.count()).c_str(), threads);
  }
  print_headline(summary, out);
}

void merge_command(const std::string& out_s, const std::vector<std::string>& dirs, bool force) {
  const fs::path out(out_s);
  check_out(out, false, force);
  std::vector<RunFile> runs;
  std::vector<SentenceResult> all;
  std::map<int, std::string> by_index;
  for (const std::string& d : dirs) {
    RunFile r = read_run_file(d);
    if (!r.complete) throw InvalidArgument(d + " is not complete: finish it with --resume first");
    if (!runs.empty()) {
      const std::string diff = experiment_info_mismatch(runs.front().info, r.info);
      if (!diff.empty()) throw InvalidArgument(d + " was run with other settings than " + dirs.front() + " (" + diff + ")");
      if (r.shard.count != runs.front().shard.count) {
        throw InvalidArgument(d + " is shard " + r.shard.str() + " but " + dirs.front() + " is " + runs.front().shard.str());
      }
    }
    if (const auto [it, fresh] = by_index.emplace(r.shard.index, d); !fresh) {
      throw InvalidArgument("shard " + r.shard.str() + " given twice: " + it->second + " and " + d);
    }
    int64_t dropped = 0;
    std::vector<SentenceResult> rs = read_results(d, false, &dropped);
    const int64_t want = shard_size(r.info.dataset_sentences, r.shard);
    if (static_cast<int64_t>(rs.size()) != want) {
      throw FormatError(d + ": " + std::to_string(rs.size()) + " results, shard " + r.shard.str() + " has " +
                        std::to_string(want) + " sentences");
    }
    for (auto& x : rs) {
      if (!r.shard.contains(x.index)) throw FormatError(d + ": sentence " + std::to_string(x.index) + " is not in shard " + r.shard.str());
      all.push_back(std::move(x));
    }
    runs.push_back(std::move(r));
  }
  const int n = runs.front().shard.count;
  std::string missing;
  for (int i = 1; i <= n; ++i) {
    if (!by_index.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i) + "/" + std::to_string(n);
  }
  if (!missing.empty()) throw InvalidArgument("missing shard(s) " + missing + ": merge needs all " + std::to_string(n));
  prepare_out(out, false, force);
  RunFile merged{Shard{}, runs.front().info, true, nlohmann::json::array()};
  for (const auto& r : runs) {
    for (const auto& s : r.sessions) merged.sessions.push_back(s);
  }
  const ExperimentSummary summary = summarize(merged.info, all);
  write_atomic(out / "sentences.jsonl", results_text(all));
  write_summaries(out, summary);
  write_run_file(out, merged);
  print_headline(summary, out);
}

}  // namespace

void register_experiment(CLI::App& app) {
  auto* cmd = app.add_subcommand("experiment", "The paper's dataset evaluation: filter, attribute, intervene, tabulate");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("model_dataset", a->positional,
                  "[MODEL] DATASET: the model (a .gguf, a llama2.c .bin or a Hugging Face directory; default: " +
                      default_model_path() + ") and the JSONL dataset ({\"prompt\", \"target\", \"type\", "
                      "optional \"competitors\"} a line)");
  cmd->add_option("-m,--model", a->model_opt, "Model path (instead of the positional MODEL)");
  cmd->add_option("-o,--out", a->out, "Output folder (refused if it exists, unless --resume or --force)");
  cmd->add_option("--shard", a->shard, "Take share i of n (1-based, i/n): sentences with index % n == i-1");
  cmd->add_flag("--resume", a->resume, "Continue the interrupted run in OUT (same settings)");
  cmd->add_flag("--force", a->force, "Replace the results in an existing OUT");
  cmd->add_flag("--strict", a->strict, "Malformed dataset lines are fatal instead of skipped");
  cmd->add_option("--seed", a->o.seed, "Seed of the random baselines");
  cmd->add_option("--max-fraction", a->o.max_fraction,
                  "Cap each neuron count at this fraction of the model's neurons of its kind (default 0.05)");
  cmd->add_option("--filter-top", a->o.filter_top_k, "Keep sentences whose target is in the top K (default 10)")->check(CLI::PositiveNumber);
  cmd->add_option("--ffn-top", a->o.ffn_top, "Top FFN value neurons zeroed, also per compared score (paper: 10)")->check(CLI::PositiveNumber);
  cmd->add_option("--attn-top", a->o.attn_top, "Top attention value neurons zeroed together with --attn-ffn-top (paper: 200)")->check(CLI::PositiveNumber);
  cmd->add_option("--attn-ffn-top", a->o.attn_ffn_top, "Top FFN value neurons zeroed with --attn-top (paper: 100)")->check(CLI::PositiveNumber);
  cmd->add_option("--query-top", a->o.query_top, "Top query FFN neurons zeroed (paper: 1000)")->check(CLI::PositiveNumber);
  cmd->add_option("--shared-set", a->o.shared_set, "Top neurons per sentence for the shared-neuron rate (paper: 300)")->check(CLI::PositiveNumber);
  cmd->add_option("--query-neurons", a->o.query_value_neurons, "Attention value neurons the query scores start from (30)")->check(CLI::PositiveNumber);
  cmd->add_flag("--no-baselines", a->no_baselines, "Skip the comparison of the eight scores of spec 3.3");
  cmd->add_flag("--no-random", a->no_random, "Skip the random interventions");
  cmd->add_option("--bos", a->bos, "Prepend BOS: yes, no, or auto (the model's own setting)")->check(CLI::IsMember({"yes", "no", "auto"}));
  cmd->add_flag("--no-parse-special", a->no_parse_special,
                "Read the text of control tokens (<s>, <|endoftext|>) in prompts as ordinary text instead of as those tokens");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "Tokenizer: a llama2.c tokenizer .bin, or for a Hugging Face directory a tokenizer.json (or a "
                  "folder holding one)");
  add_threads_option(*cmd, a->threads, "Sentences evaluated at once; results do not depend on it");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress output");

  auto* merge = cmd->add_subcommand("merge", "Combine the folders of all shards of a run into one set of tables");
  auto out = std::make_shared<std::string>();
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto force = std::make_shared<bool>(false);
  merge->add_option("out", *out, "Output folder")->required();
  merge->add_option("shards", *dirs, "The shards' output folders")->required();
  merge->add_flag("--force", *force, "Replace the results in an existing OUT");
  merge->callback([=] { merge_command(*out, *dirs, *force); });
  cmd->require_subcommand(0, 1);
  cmd->callback([=] {
    if (merge->parsed()) return;
    run_command(*a);
  });
}

}  // namespace reslens::cli
