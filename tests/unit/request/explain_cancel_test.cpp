// ExplainRequest::should_stop: explain_target() and explain_generated() ask it after each generated
// token and each explained step, every explain (one position's, or a step's) after each of its
// phases, and they stop there with Cancelled once it answers true. The steps
// handed to on_step_explained before that are all there is: no later step, foil step or generated
// token is computed (each would ask again, so the counts of the questions say so).
#include <gtest/gtest.h>

#include <string>

#include "common/test_paths.h"
#include "reslens/error.h"
#include "reslens/explain_request.h"
#include "reslens/explain_target.h"
#include "reslens/generate.h"

namespace reslens {
namespace {

class ExplainCancelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::shared_path("models/stories260K/stories260K.gguf")); }
  static void TearDownTestSuite() { model_.reset(); }
  static inline std::shared_ptr<const Model> model_;

  // Counts what a request reports, and answers should_stop true from its `stop_at`-th question on
  // (attach) or once `steps_done` steps were explained (attach_after_steps). `asked_after_stop`
  // counts questions after the first true answer: none, if nothing ran after the stop.
  struct Watch {
    int asked = 0, explained = 0, progressed = 0, asked_after_stop = 0;
    bool stopped = false;
    std::vector<size_t> steps;  // on_step_explained's step indices, in order
    void attach(ExplainRequest& req, int stop_at) {
      watch(req);
      req.should_stop = [this, stop_at] { return answer(++asked >= stop_at); };
    }
    void attach_after_steps(ExplainRequest& req, int steps_done) {
      watch(req);
      req.should_stop = [this, steps_done] {
        ++asked;
        return answer(explained >= steps_done);
      };
    }
    void watch(ExplainRequest& req) {
      req.on_step_explained = [this](const TeacherForcedPass&, size_t t) {
        ++explained;
        steps.push_back(t);
      };
      req.on_step = [this](int, int) { ++progressed; };
    }
    bool answer(bool stop) {
      if (stopped) ++asked_after_stop;
      stopped = stopped || stop;
      return stop;
    }
  };
  // Questions one step of stories260K asks: after each phase of its explain but the last (the full
  // method: points, attention, FFN neurons, checks), and once at the step's end.
  static constexpr int kQuestionsPerStep = 4 + 1;

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
  w.attach_after_steps(req, 2);
  const std::string msg = cancelled_message([&] { explain_target(*model_, req); });
  EXPECT_NE(msg.find("stopped after 2 of 6 explained steps"), std::string::npos) << msg;
  EXPECT_EQ(w.steps, (std::vector<size_t>{0, 1}));  // steps 0 and 1 explained and handed over, no more
  EXPECT_EQ(w.progressed, 2);
  EXPECT_EQ(w.asked, 2 * kQuestionsPerStep);
  EXPECT_EQ(w.asked_after_stop, 0);  // not asked again: nothing ran after the stop

  // Never true: every step, and the same result as without the check.
  Watch all;
  all.attach(req, 1000);
  const ExplainedTarget done = explain_target(*model_, req);
  EXPECT_EQ(all.explained, 6);
  EXPECT_EQ(all.asked, 6 * kQuestionsPerStep);

  // True within step 2's explain (after its attention phase): steps 0 and 1 are all there is.
  Watch inside;
  inside.attach(req, 2 * kQuestionsPerStep + 2);
  const std::string within = cancelled_message([&] { explain_target(*model_, req); });
  EXPECT_NE(within.find("explain stopped after its attention phase"), std::string::npos) << within;
  EXPECT_EQ(inside.steps, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(inside.asked_after_stop, 0);
  ExplainRequest plain = request();
  plain.target_tokens = req.target_tokens;
  EXPECT_EQ(explain_target(*model_, plain).summed.log_prob, done.summed.log_prob);
}

TEST_F(ExplainCancelTest, TheLastTargetStepStopsBeforeTheFoilsOwnSteps) {
  ExplainRequest req = request();
  req.target_tokens = {45, 99};
  req.foil_tokens = {45, 99, 12, 7};  // two steps of its own after the target's two
  Watch w;
  w.attach_after_steps(req, 2);
  const std::string msg = cancelled_message([&] { explain_target(*model_, req); });
  EXPECT_NE(msg.find("stopped after 2 of 4 explained steps"), std::string::npos) << msg;
  EXPECT_EQ(w.asked, 2 * kQuestionsPerStep);
  EXPECT_EQ(w.asked_after_stop, 0);
  // True at the end of the foil's first own step (its steps are not handed to on_step_explained, so
  // counted by questions): its second is not explained.
  Watch f;
  f.attach(req, 3 * kQuestionsPerStep);
  EXPECT_NE(cancelled_message([&] { explain_target(*model_, req); }).find("stopped after 3 of 4"), std::string::npos);
  EXPECT_EQ(f.asked, 3 * kQuestionsPerStep);
  EXPECT_EQ(f.asked_after_stop, 0);
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
  steps.attach_after_steps(req, 3);
  const std::string after = cancelled_message([&] { explain_generated(*model_, req, go); });
  EXPECT_NE(after.find("stopped after 3 of 8 explained steps"), std::string::npos) << after;
  EXPECT_EQ(steps.steps, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(steps.asked, 8 + 3 * kQuestionsPerStep);
  EXPECT_EQ(steps.asked_after_stop, 0);
}

// One position's explain (a single-step job of `reslens serve`) asks after its forward pass and
// after each phase but the last, and stops at the first true answer.
TEST_F(ExplainCancelTest, OnePositionsExplainStopsBetweenItsPhases) {
  ExplainRequest req = request();
  Watch first;
  first.attach(req, 1);
  EXPECT_NE(cancelled_message([&] { explain(*model_, req); }).find("explain stopped after its forward pass"), std::string::npos);
  EXPECT_EQ(first.asked, 1);
  Watch third;
  third.attach(req, 3);
  EXPECT_NE(cancelled_message([&] { explain(*model_, req); }).find("explain stopped after its attention phase"),
            std::string::npos);
  EXPECT_EQ(third.asked, 3);
  EXPECT_EQ(third.asked_after_stop, 0);
  // Never true: 1 + 4 questions, and the same explanation as without them.
  Watch never;
  never.attach(req, 1000);
  const ExplainedPrompt done = explain(*model_, req);
  EXPECT_EQ(never.asked, 1 + 4);
  const ExplainedPrompt plain = explain(*model_, request());
  EXPECT_EQ(done.explanation.ffn_neuron.values, plain.explanation.ffn_neuron.values);
  EXPECT_EQ(done.explanation.head.values, plain.explanation.head.values);
}

}  // namespace
}  // namespace reslens
