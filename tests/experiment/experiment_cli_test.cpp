// `reslens experiment` end to end: the output files, the same bytes for any thread count, shards
// merged = one run, resuming after an interruption = one run, and every kind of bad input (existing
// folder, bad shard, malformed or empty dataset, mismatched resume or merge) gives a clear message
// and the right exit code without losing results.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "reslens/run.h"

namespace reslens {
namespace {

namespace fs = std::filesystem;

struct CliResult {
  int code = -1;
  std::string out, err;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

CliResult cli(const std::vector<std::string>& args) {
  static int counter = 0;
  const fs::path dir = fs::temp_directory_path() / ("reslens-exp-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path out = dir / ("out" + std::to_string(counter));
  const fs::path err = dir / ("err" + std::to_string(counter++));
  std::string cmd = quote(RESLENS_CLI_PATH);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote(out.string()) + " 2>" + quote(err.string());  // stderr is a file: plain progress lines
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = test::read_file(out);
  r.err = test::read_file(err);
  return r;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream o(p, std::ios::binary);
  o << text;
}

std::string read(const fs::path& p) { return test::read_file(p); }

const char* const kDataset =
    R"({"prompt": "Once upon a time, there was a little girl named Lily. One day,", "target": " Lily", "type": "name"}
{"prompt": "Once upon a time, there was a little boy named Tim. One day,", "target": " Tim", "type": "name"}
{"prompt": "Once upon a", "target": " time", "type": "word"}
{"prompt": "One day, Lily and her mom went to the", "target": "park", "type": "word"}
{"prompt": "Tom had a red ball. He liked to play with his", "target": " friend", "type": "word"}
{"prompt": "Once upon a", "target": " dog", "type": "word"}
{"prompt": "Once upon a time, there was a little boy named Tim. One day,", "target": " Timmy", "type": "name"}
)";

// A scratch folder with the dataset, and one complete single-threaded run in `ref`.
struct Fixture {
  fs::path dir, data, ref;
  std::string model;
  CliResult ref_run;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = fs::temp_directory_path() / ("reslens-exp-fixture-" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    fs::create_directories(x.dir);
    x.data = x.dir / "data.jsonl";
    write(x.data, kDataset);
    x.ref = x.dir / "ref";
    x.model = test::shared_path("models/stories260K/stories260K.gguf").string();
    x.ref_run = cli({"experiment", x.model, x.data.string(), "-o", x.ref.string(), "-t", "1"});
    return x;
  }();
  return f;
}

fs::path fresh(const std::string& name) {
  const fs::path p = fixture().dir / name;
  fs::remove_all(p);
  return p;
}

// The scratch folders go when the tests end (kept when a test failed, to look at).
class Cleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (::testing::UnitTest::GetInstance()->Failed()) return;
    const std::string pid = std::to_string(::getpid());
    fs::remove_all(fs::temp_directory_path() / ("reslens-exp-fixture-" + pid));
    fs::remove_all(fs::temp_directory_path() / ("reslens-exp-cli-" + pid));
  }
};
[[maybe_unused]] ::testing::Environment* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

void expect_same_outputs(const fs::path& a, const fs::path& b) {
  for (const char* f : {"sentences.jsonl", "summary.json", "summary.csv", "summary.md"}) {
    EXPECT_EQ(read(a / f), read(b / f)) << f << " differs between " << a << " and " << b;
  }
}

TEST(ExperimentCli, WritesEveryOutput) {
  const Fixture& f = fixture();
  ASSERT_EQ(f.ref_run.code, 0) << f.ref_run.err;
  for (const char* file : {"run.json", "sentences.jsonl", "summary.json", "summary.csv", "summary.md"}) {
    EXPECT_TRUE(fs::exists(f.ref / file)) << file;
  }
  const auto run = nlohmann::json::parse(read(f.ref / "run.json"));
  EXPECT_TRUE(run["complete"].get<bool>());
  EXPECT_EQ(run["shard"], "1/1");
  EXPECT_EQ(run["sessions"][0]["threads"], 1);
  EXPECT_EQ(run["sessions"][0]["evaluated"], 7);
  const auto summary = nlohmann::json::parse(read(f.ref / "summary.json"));
  EXPECT_EQ(summary["types"][0]["sentences"]["kept"], 5);
  EXPECT_EQ(summary["types"][0]["sentences"]["multi_token_targets"], 2);  // "park", " dog"
  // Not a terminal: plain progress lines, a note about the multi-token target, the headline table.
  EXPECT_NE(f.ref_run.err.find("progress: 7/7 sentences (100%)"), std::string::npos) << f.ref_run.err;
  EXPECT_EQ(f.ref_run.err.find('\r'), std::string::npos);
  EXPECT_NE(f.ref_run.err.find("2 target(s) are several tokens"), std::string::npos) << f.ref_run.err;
  EXPECT_NE(f.ref_run.out.find("7 sentences, 5 kept (1 not in the top 10, 1 below a competitor, 0 errors)"),
            std::string::npos) << f.ref_run.out;
  EXPECT_NE(f.ref_run.out.find("neuron counts: each count = min(paper count"), std::string::npos);
  EXPECT_NE(read(f.ref / "summary.md").find("## Scores compared (Table 2)"), std::string::npos);
}

TEST(ExperimentCli, ProgressBarOnATerminal) {
  // util-linux `script` gives the command a pseudo-terminal: the bar is redrawn in place.
  const Fixture& f = fixture();
  const fs::path out = fresh("tty");
  const fs::path log = f.dir / "tty.log";
  const std::string inner = quote(RESLENS_CLI_PATH) + " experiment " + quote(f.model) + " " + quote(f.data.string()) +
                            " -o " + quote(out.string()) + " -t 1";
  const std::string cmd = "script -qec " + quote(inner) + " /dev/null >" + quote(log.string()) + " 2>&1 </dev/null";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read(log);
  const std::string text = read(log);
  EXPECT_NE(text.find("\r["), std::string::npos) << text;
  EXPECT_NE(text.find("] 7/7 100%"), std::string::npos) << text;
  EXPECT_NE(text.find("sent/s  ETA"), std::string::npos) << text;
  EXPECT_EQ(text.find("progress: "), std::string::npos) << text;
  expect_same_outputs(f.ref, out);
}

TEST(ExperimentCli, ThreadCountDoesNotChangeAnyOutput) {
  const Fixture& f = fixture();
  const fs::path out = fresh("threads3");
  const auto r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "-t", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_outputs(f.ref, out);
}

TEST(ExperimentCli, MergedShardsEqualOneRun) {
  const Fixture& f = fixture();
  const fs::path s1 = fresh("shard1"), s2 = fresh("shard2"), s3 = fresh("shard3"), merged = fresh("merged");
  ASSERT_EQ(cli({"experiment", f.model, f.data.string(), "-o", s1.string(), "--shard", "1/3", "-t", "2"}).code, 0);
  ASSERT_EQ(cli({"experiment", f.model, f.data.string(), "-o", s2.string(), "--shard", "2/3"}).code, 0);
  ASSERT_EQ(cli({"experiment", f.model, f.data.string(), "-o", s3.string(), "--shard", "3/3", "-q"}).code, 0);
  const std::string shard1 = read(s1 / "sentences.jsonl");
  EXPECT_EQ(std::count(shard1.begin(), shard1.end(), '\n'), 3);
  // Missing a shard, or a shard twice: refused.
  auto r = cli({"experiment", "merge", merged.string(), s1.string(), s3.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing shard(s) 2/3"), std::string::npos) << r.err;
  r = cli({"experiment", "merge", merged.string(), s1.string(), s1.string(), s2.string(), s3.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("given twice"), std::string::npos) << r.err;
  r = cli({"experiment", "merge", merged.string(), s3.string(), s1.string(), s2.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_outputs(f.ref, merged);
  // The merged folder exists now: refused without --force.
  r = cli({"experiment", "merge", merged.string(), s1.string(), s2.string(), s3.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(cli({"experiment", "merge", merged.string(), s1.string(), s2.string(), s3.string(), "--force"}).code, 0);
  // Shards of different settings do not merge.
  const fs::path other = fresh("shard2-seed5");
  ASSERT_EQ(cli({"experiment", f.model, f.data.string(), "-o", other.string(), "--shard", "2/3", "--seed", "5"}).code, 0);
  r = cli({"experiment", "merge", fresh("merged2").string(), s1.string(), other.string(), s3.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("seed"), std::string::npos) << r.err;
  // Nor shards that tokenized special-token text differently (run.json records the setting).
  const fs::path plain = fresh("shard2-plain");
  ASSERT_EQ(cli({"experiment", f.model, f.data.string(), "-o", plain.string(), "--shard", "2/3", "--no-parse-special"}).code, 0);
  EXPECT_EQ(nlohmann::json::parse(read(plain / "run.json"))["settings"]["options"]["parse_special"], false);
  EXPECT_EQ(nlohmann::json::parse(read(s1 / "run.json"))["settings"]["options"]["parse_special"], true);
  r = cli({"experiment", "merge", fresh("merged3").string(), s1.string(), plain.string(), s3.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("special-token parsing"), std::string::npos) << r.err;
}

TEST(ExperimentCli, ResumeAfterAnInterruptionEqualsOneRun) {
  const Fixture& f = fixture();
  const fs::path out = fresh("resumed");
  fs::create_directories(out);
  // What a killed run leaves: run.json not complete, some results, half a line.
  std::string run_json = read(f.ref / "run.json");
  auto j = nlohmann::json::parse(run_json);
  j["complete"] = false;
  j["sessions"] = nlohmann::json::array();
  write(out / "run.json", j.dump(2));
  std::istringstream lines(read(f.ref / "sentences.jsonl"));
  std::string l1, l2, l3;
  std::getline(lines, l1);
  std::getline(lines, l2);
  std::getline(lines, l3);
  write(out / "sentences.jsonl", l2 + "\n" + l1 + "\n" + l3.substr(0, l3.size() / 2));
  // Without --resume the folder is refused, and nothing in it is touched.
  auto r = cli({"experiment", f.model, f.data.string(), "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  EXPECT_EQ(read(out / "sentences.jsonl"), l2 + "\n" + l1 + "\n" + l3.substr(0, l3.size() / 2));
  // Resuming with other settings is refused too.
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--resume", "--seed", "3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("other settings (seed)"), std::string::npos) << r.err;
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--resume", "--shard", "1/2"});
  EXPECT_EQ(r.code, 2);
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--resume", "-t", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming: 2 sentence(s) already done"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dropped 1 unreadable line"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("experiment: 5 sentence(s) to evaluate"), std::string::npos) << r.err;
  expect_same_outputs(f.ref, out);
  // Resuming a complete run evaluates nothing and changes nothing.
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--resume"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("experiment: 0 sentence(s) to evaluate"), std::string::npos) << r.err;
  expect_same_outputs(f.ref, out);
  EXPECT_EQ(nlohmann::json::parse(read(out / "run.json"))["sessions"].size(), 2u);
}

TEST(ExperimentCli, ExistingFolderNeedsResumeOrForce) {
  const Fixture& f = fixture();
  const fs::path out = fresh("forced");
  fs::create_directories(out);
  write(out / "notes.txt", "mine");
  write(out / "summary.md", "old");
  auto r = cli({"experiment", f.model, f.data.string(), "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--resume"});
  EXPECT_EQ(r.code, 2);  // not an experiment folder
  EXPECT_NE(r.err.find("no run.json"), std::string::npos) << r.err;
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--resume", "--force"});
  EXPECT_EQ(r.code, 2);
  r = cli({"experiment", f.model, f.data.string(), "-o", out.string(), "--force", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // -q: nothing but warnings
  expect_same_outputs(f.ref, out);
  EXPECT_EQ(read(out / "notes.txt"), "mine");  // --force replaces only our files
  write(fixture().dir / "a-file", "x");
  EXPECT_EQ(cli({"experiment", f.model, f.data.string(), "-o", (fixture().dir / "a-file").string()}).code, 2);
}

TEST(ExperimentCli, BadShardsAndUsage) {
  const Fixture& f = fixture();
  for (const char* bad : {"3/2", "0/2", "1/0", "x/2", "2"}) {
    const auto r = cli({"experiment", f.model, f.data.string(), "-o", fresh("bad-shard").string(), "--shard", bad});
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("bad shard"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(fixture().dir / "bad-shard")) << "a usage error created the output folder";
  }
  EXPECT_EQ(cli({"experiment", f.model, f.data.string()}).code, 2);  // no -o
  EXPECT_EQ(cli({"experiment"}).code, 2);
  EXPECT_EQ(cli({"experiment", f.model, f.data.string(), "-o", fresh("x").string(), "--max-fraction", "0"}).code, 2);
  EXPECT_EQ(cli({"experiment", "merge", fresh("m").string(), fresh("nothing").string()}).code, 3);  // no run.json
}

TEST(ExperimentCli, MalformedAndEmptyDatasets) {
  const Fixture& f = fixture();
  const fs::path data = f.dir / "malformed.jsonl";
  write(data, std::string(kDataset).substr(0, std::string(kDataset).find('\n') + 1) + "{oops\n\n" +
                  "{\"prompt\": \"Once upon a\", \"target\": \" time\"}\n" +
                  "{\"prompt\": \"Once upon a\", \"target\": \" time\", \"type\": \"word\"}\n");
  auto r = cli({"experiment", f.model, data.string(), "-o", fresh("malformed").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("malformed.jsonl:2: not valid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("malformed.jsonl:4: no \"type\" (line skipped)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("warning: 2 malformed line(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2 sentences"), std::string::npos) << r.out;
  const auto run = nlohmann::json::parse(read(f.dir / "malformed" / "run.json"));
  EXPECT_EQ(run["settings"]["dataset_skipped_lines"], 2);
  r = cli({"experiment", f.model, data.string(), "-o", fresh("strict").string(), "--strict"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("malformed.jsonl:2:"), std::string::npos) << r.err;
  const fs::path empty = f.dir / "empty.jsonl";
  write(empty, "\n");
  r = cli({"experiment", f.model, empty.string(), "-o", fresh("empty").string()});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("the dataset has no sentences"), std::string::npos) << r.err;
  r = cli({"experiment", f.model, (f.dir / "missing.jsonl").string(), "-o", fresh("missing").string()});
  EXPECT_EQ(r.code, 3);
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(ExperimentCli, TheTypeAllIsRefusedNamingTheFile) {
  // "all" is the summaries' aggregate row: a dataset type of that name would be mixed up with it.
  const Fixture& f = fixture();
  const fs::path data = f.dir / "all-type.jsonl";
  write(data, std::string(R"({"prompt": "Once upon a", "target": " time", "type": "word"})") + "\n" +
                  R"({"prompt": "Once upon a", "target": " dog", "type": "all"})" + "\n");
  const fs::path out = fresh("all-type");
  const auto r = cli({"experiment", f.model, data.string(), "-o", out.string()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(data.string() + ":2: the type \"all\" is reserved"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(ExperimentCli, AnOutputFolderThatCannotBeCreatedIsOneLineNamingIt) {
  // A folder below a regular file cannot be created, even by root: exit 3 naming it and the reason,
  // not "filesystem error: cannot create directories: ..." with exit 1.
  const Fixture& f = fixture();
  const fs::path file = f.dir / "plain-file";
  write(file, "x");
  auto r = cli({"experiment", f.model, f.data.string(), "-o", (file / "out").string(), "-q"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find((file / "out").string() + ": cannot create the output folder (Not a directory)"),
            std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("filesystem error"), std::string::npos) << r.err;
  ASSERT_EQ(f.ref_run.code, 0) << f.ref_run.err;
  r = cli({"experiment", "merge", (file / "merged").string(), f.ref.string()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find((file / "merged").string() + ": cannot create the output folder"), std::string::npos) << r.err;
}

TEST(ExperimentCli, ThreadsZeroIsEveryCore) {
  const Fixture& f = fixture();
  const fs::path data = f.dir / "one.jsonl";
  write(data, std::string(R"({"prompt": "Once upon a", "target": " time", "type": "word"})") + "\n");
  const std::string want = "on " + std::to_string(default_threads()) + " thread(s)";
  for (const bool given : {false, true}) {
    std::vector<std::string> args = {"experiment", f.model, data.string(), "-o", fresh(given ? "t0" : "tnone").string()};
    if (given) args.insert(args.end(), {"-t", "0"});
    const auto r = cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  }
  const auto r = cli({"experiment", f.model, data.string(), "-o", fresh("tneg").string(), "-t", "-1"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("0 or absent: all cores"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace reslens
