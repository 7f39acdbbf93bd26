// ExplainRequest::should_stop: explain_target() and explain_generated() ask it after each generated
// token and each explained step, and stop there with Cancelled once it answers true. The steps
// handed to on_step_explained before that are all there is: no later step, foil step or generated
// token is computed (each would ask again, so the counts of the questions say so).
#include <gtest/gtest.h>

#include <string>

#include "common/test_paths.h"
#include "reslens/error.h"
#include "reslens/explain_target.h"
#include "reslens/generate.h"

namespace reslens {
namespace {

class ExplainCancelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::shared_path("models/stories260K/stories260K.gguf")); }
  static void TearDownTestSuite() { model_.reset(); }
  static inline std::shared_ptr<const Model> model_;

  // Counts what a request reports, and answers should_stop true from its `stop_at`-th question on.
  struct Watch {
    int asked = 0, explained = 0, progressed = 0;
    std::vector<size_t> steps;  // on_step_explained's step indices, in order
    void attach(ExplainRequest& req, int stop_at) {
      req.on_step_explained = [this](const TeacherForcedPass&, size_t t) {
        ++explained;
        steps.push_back(t);
      };
      req.on_step = [this](int, int) { ++progressed; };
      req.should_stop = [this, stop_at] { return ++asked >= stop_at; };
    }
  };

  static ExplainRequest request() {
    ExplainRequest req;
    req.tokens = {1, 300, 401, 77};
    req.options.n_threads = 1;
    return req;
  }
  static std::string cancelled_message(const std::function<void()>& f) {
    try {
      f();
    } catch (const Cancelled& e) {
      return e.what();
    }
    return "not cancelled";
  }
};

TEST_F(ExplainCancelTest, ATargetStopsAfterTheStepWhereTheCheckTurnsTrue) {
  ExplainRequest req = request();
  req.target_tokens = {45, 99, 12, 7, 300, 41};
  Watch w;
  w.attach(req, 2);
  const std::string msg = cancelled_message([&] { explain_target(*model_, req); });
  EXPECT_NE(msg.find("stopped after 2 of 6 explained steps"), std::string::npos) << msg;
  EXPECT_EQ(w.steps, (std::vector<size_t>{0, 1}));  // steps 0 and 1 explained and handed over, no more
  EXPECT_EQ(w.progressed, 2);
  EXPECT_EQ(w.asked, 2);  // not asked again: nothing ran after the stop

  // Never true: every step, and the same result as without the check.
  Watch all;
  all.attach(req, 1000);
  const ExplainedTarget done = explain_target(*model_, req);
  EXPECT_EQ(all.explained, 6);
  EXPECT_EQ(all.asked, 6);
  ExplainRequest plain = request();
  plain.target_tokens = req.target_tokens;
  EXPECT_EQ(explain_target(*model_, plain).summed.log_prob, done.summed.log_prob);
}

TEST_F(ExplainCancelTest, TheLastTargetStepStopsBeforeTheFoilsOwnSteps) {
  ExplainRequest req = request();
  req.target_tokens = {45, 99};
  req.foil_tokens = {45, 99, 12, 7};  // two steps of its own after the target's two
  Watch w;
  w.attach(req, 2);
  const std::string msg = cancelled_message([&] { explain_target(*model_, req); });
  EXPECT_NE(msg.find("stopped after 2 of 4 explained steps"), std::string::npos) << msg;
  EXPECT_EQ(w.asked, 2);
  // True at the foil's first own step: its second is not explained.
  Watch f;
  f.attach(req, 3);
  EXPECT_NE(cancelled_message([&] { explain_target(*model_, req); }).find("stopped after 3 of 4"), std::string::npos);
  EXPECT_EQ(f.asked, 3);
}

TEST_F(ExplainCancelTest, AGeneratedAnswerStopsWhileGeneratingOrBetweenItsSteps) {
  GenerateOptions go;
  go.max_tokens = 8;
  // True at once: one token is chosen, then nothing is explained.
  ExplainRequest req = request();
  Watch at_once;
  at_once.attach(req, 1);
  const std::string msg = cancelled_message([&] { explain_generated(*model_, req, go); });
  EXPECT_NE(msg.find("while generating the answer"), std::string::npos) << msg;
  EXPECT_EQ(at_once.asked, 1);
  EXPECT_EQ(at_once.explained, 0);
  // True at the 3rd generated token: generation stops there.
  Watch third;
  third.attach(req, 3);
  cancelled_message([&] { explain_generated(*model_, req, go); });
  EXPECT_EQ(third.asked, 3);
  EXPECT_EQ(third.explained, 0);
  // True after the answer's 3rd explained step (8 questions while generating, then 3 steps).
  Watch steps;
  steps.attach(req, 8 + 3);
  const std::string after = cancelled_message([&] { explain_generated(*model_, req, go); });
  EXPECT_NE(after.find("stopped after 3 of 8 explained steps"), std::string::npos) << after;
  EXPECT_EQ(steps.steps, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(steps.asked, 11);
}

}  // namespace
}  // namespace reslens
