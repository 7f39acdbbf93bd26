// ExplainRequest::on_progress: every explain reports its phases in the documented order
// (include/reslens/explain.h, ExplainProgress), each from done = 0 up to its total, on the thread
// that runs the request; the model's bounds and the sketch's Gram matrices report their build only
// when they are built; a target of several tokens repeats the explain's phases per step and ends
// with "tightening"; a generated answer first reports its tokens. Reporting changes no score.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/test_paths.h"
#include "reslens/explain_request.h"
#include "reslens/explain_target.h"
#include "reslens/generate.h"

namespace reslens {
namespace {

struct Report {
  std::string phase;
  int64_t done = 0, total = 0;
};

// Records every report, and whether each came from the thread that made the request.
struct Recorder {
  std::vector<Report> reports;
  std::thread::id caller = std::this_thread::get_id();
  bool other_thread = false;
  ExplainProgressFn fn() {
    return [this](const ExplainProgress& p) {
      if (std::this_thread::get_id() != caller) other_thread = true;
      reports.push_back({std::string(p.phase), p.done, p.total});
    };
  }
  // The phases in the order they first ran, each once per run of consecutive reports ("bounds" may be
  // interrupted by "sketch", which its build runs inside).
  std::vector<std::string> runs() const {
    std::vector<std::string> out;
    for (const Report& r : reports) {
      if (out.empty() || out.back() != r.phase) out.push_back(r.phase);
    }
    return out;
  }
  int count(const std::string& phase) const {
    return static_cast<int>(std::count_if(reports.begin(), reports.end(), [&](const Report& r) { return r.phase == phase; }));
  }
};

// Within each run of a phase: starts at 0 (a phase that resumes after another, "bounds" after
// "sketch", goes on from where it was), never goes back, stays within [0, total], and the phase's
// last report is its total.
void expect_well_formed(const std::vector<Report>& reports) {
  std::map<std::string, int64_t> last;  // per phase, the done of its latest report
  std::string prev;
  for (const Report& r : reports) {
    EXPECT_GE(r.total, 1) << r.phase;
    EXPECT_GE(r.done, 0) << r.phase;
    EXPECT_LE(r.done, r.total) << r.phase;
    const auto it = last.find(r.phase);
    if (r.phase != prev && (it == last.end() || it->second == r.total)) {
      EXPECT_EQ(r.done, 0) << r.phase << " starts at " << r.done;
    } else if (it != last.end()) {
      EXPECT_GE(r.done, it->second) << r.phase << " went back";
    }
    last[r.phase] = r.done;
    prev = r.phase;
  }
  for (const auto& entry : last) {
    const std::string& phase = entry.first;
    const auto it = std::find_if(reports.rbegin(), reports.rend(), [&](const Report& r) { return r.phase == phase; });
    EXPECT_EQ(entry.second, it->total) << phase << " ended before its total";
  }
}

class ExplainProgressTest : public ::testing::Test {
 protected:
  // A cache folder of this process's own, so that the first explain builds the model's bounds.
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("reslens-progress-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ::setenv("RESLENS_CACHE_DIR", dir_.c_str(), 1);
    model_ = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
  }
  void TearDown() override {
    model_.reset();
    std::filesystem::remove_all(dir_);
  }
  ExplainRequest request() const {
    ExplainRequest req;
    req.tokens = {1, 300, 401, 77, 12, 99};
    req.options.n_threads = 2;
    req.options.method = ScoreMethod::kBounded;  // its phases (the vocabulary is small for kAuto's)
    return req;
  }
  std::filesystem::path dir_;
  std::shared_ptr<const Model> model_;
};

TEST_F(ExplainProgressTest, AnExplainReportsEveryPhaseInOrderOnTheCallersThread) {
  const int64_t L = model_->config().n_layers;
  ExplainRequest req = request();
  Recorder rec;
  req.on_progress = rec.fn();
  const ExplainedPrompt first = explain(*model_, req);
  EXPECT_FALSE(rec.other_thread);
  expect_well_formed(rec.reports);
  // The first explain builds the bounds (a unit per layer), the sketch's Grams inside that build
  // where the sketch runs on this CPU.
  std::vector<std::string> runs = rec.runs();
  runs.erase(std::remove(runs.begin(), runs.end(), "sketch"), runs.end());
  runs.erase(std::unique(runs.begin(), runs.end()), runs.end());
  std::vector<std::string> expected = {"forward", "points", "bounds", "tails", "attention"};
  if (rec.count("attention_exact") > 0) expected.push_back("attention_exact");
  expected.push_back("ffn");
  if (rec.count("ffn_exact") > 0) expected.push_back("ffn_exact");
  expected.insert(expected.end(), {"checks", "queries"});
  EXPECT_EQ(runs, expected);
  for (const Report& r : rec.reports) {
    if (r.phase == "bounds") {
      EXPECT_EQ(r.total, L);
    } else if (r.phase == "attention" || r.phase == "ffn") {
      EXPECT_EQ(r.total, L + 1);  // layers, then the leftovers
    } else if (r.phase == "forward" || r.phase == "points" || r.phase == "checks") {
      EXPECT_EQ(r.total, 1);
    }
  }
  EXPECT_EQ(rec.count("bounds"), L + 1);

  // The bounds (and the sketch) are this process's now: no build to report, and the same scores
  // as an explain that reports nothing.
  Recorder again;
  req.on_progress = again.fn();
  const ExplainedPrompt second = explain(*model_, req);
  EXPECT_EQ(again.count("bounds"), 0);
  EXPECT_EQ(again.count("sketch"), 0);
  expect_well_formed(again.reports);
  ExplainRequest silent = request();
  const ExplainedPrompt plain = explain(*model_, silent);
  EXPECT_EQ(plain.explanation.ffn_neuron.values, first.explanation.ffn_neuron.values);
  EXPECT_EQ(plain.explanation.attn_neuron.values, second.explanation.attn_neuron.values);
  EXPECT_EQ(plain.explanation.head.values, first.explanation.head.values);
}

TEST_F(ExplainProgressTest, ATargetRepeatsThePhasesPerStepAndEndsWithItsTightening) {
  ExplainRequest req = request();
  req.target_tokens = {45, 99, 12};
  Recorder rec;
  req.on_progress = rec.fn();
  const ExplainedTarget done = explain_target(*model_, req);
  EXPECT_FALSE(rec.other_thread);
  EXPECT_EQ(rec.count("forward"), 2);  // one pass for every step: started and finished
  EXPECT_EQ(rec.count("queries"), 2 * 3);
  EXPECT_EQ(rec.count("checks"), 2 * 3);
  ASSERT_FALSE(rec.reports.empty());
  EXPECT_EQ(rec.reports.back().phase, "tightening");
  EXPECT_EQ(rec.reports.back().done, 1);
  ExplainRequest silent = request();
  silent.target_tokens = req.target_tokens;
  EXPECT_EQ(explain_target(*model_, silent).summed.log_prob, done.summed.log_prob);
}

TEST_F(ExplainProgressTest, AGeneratedAnswerReportsItsTokensFirst) {
  ExplainRequest req = request();
  req.options.method = ScoreMethod::kFull;
  Recorder rec;
  req.on_progress = rec.fn();
  GenerateOptions go;
  go.max_tokens = 3;
  const ExplainedTarget done = explain_generated(*model_, req, go);
  ASSERT_FALSE(rec.reports.empty());
  EXPECT_EQ(rec.reports.front().phase, "generate");
  EXPECT_EQ(rec.reports.front().done, 0);
  EXPECT_EQ(rec.reports.front().total, 3);
  EXPECT_EQ(rec.count("generate"), 1 + static_cast<int>(done.target.size()));
  // The full method's phases: attention and FFN neurons a unit per layer, no bounds.
  EXPECT_EQ(rec.count("bounds"), 0);
  EXPECT_EQ(rec.count("tails"), 0);
  const int64_t L = model_->config().n_layers;
  EXPECT_EQ(rec.count("ffn"), static_cast<int>((L + 1) * static_cast<int64_t>(done.target.size())));
}

}  // namespace
}  // namespace reslens
