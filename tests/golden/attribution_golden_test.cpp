// explain() against ../shared/goldens/attribution: every score of the paper computed by an
// independent float64 implementation of the spec, on real and random models. The README there
// expects ~5e-6 from a float32 implementation on scores and 2e-5 on Q1/Q2 slots.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/compare.h"
#include "common/test_paths.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using nlohmann::json;

constexpr double kScoreTol = 1e-5;
constexpr double kSlotTol = 2e-5;

std::vector<double> flatten(const json& j) {
  std::vector<double> out;
  if (j.is_array()) {
    for (const auto& x : j) {
      const auto v = flatten(x);
      out.insert(out.end(), v.begin(), v.end());
    }
  } else {
    out.push_back(j.get<double>());
  }
  return out;
}

::testing::AssertionResult close(const std::vector<double>& ours, const json& want, double tol, const std::string& what) {
  const std::vector<double> w = flatten(want);
  std::vector<float> o(ours.begin(), ours.end());
  if (ours.size() != w.size()) return ::testing::AssertionFailure() << what << ": " << ours.size() << " vs " << w.size();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double e = std::abs(ours[i] - w[i]);
    if (e > worst) worst = e, at = i;
  }
  if (worst <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": max abs diff " << worst << " at " << at << " (ours " << ours[at]
                                       << ", golden " << w[at] << ")";
}

// One explanation per golden file, shared by the tests of that file.
struct Case {
  json golden;
  std::shared_ptr<const Model> model;
  std::vector<int32_t> ids;
  RunResult run;
  Explanation ex;
};

const Case& load_case(const std::string& file) {
  static std::map<std::string, std::unique_ptr<Case>> cases;
  auto& slot = cases[file];
  if (!slot) {
    auto c = std::make_unique<Case>();
    c->golden = json::parse(test::read_file(test::shared_path("goldens/attribution/" + file)));
    c->model = Model::load(test::shared_path(c->golden["model"]["path"].get<std::string>()));
    c->ids = c->golden["ids"].get<std::vector<int32_t>>();
    RunOptions o;
    o.capture = explain_capture();
    o.all_logits = true;
    c->run = run(*c->model, c->ids, o);
    ExplainOptions e;
    e.query_top_n = c->golden["q1"]["top_n"].get<int>();
    c->ex = explain(*c->model, c->run, c->ids, e);
    slot = std::move(c);
  }
  return *slot;
}

class AttributionGolden : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const Case& c = load_case(GetParam());
    golden_ = &c.golden;
    model_ = c.model;
    ids_ = c.ids;
    ex_ = &c.ex;
  }
  const json* golden_ = nullptr;
  std::shared_ptr<const Model> model_;
  std::vector<int32_t> ids_;
  const Explanation* ex_ = nullptr;
};

TEST_P(AttributionGolden, TargetAndFrozenNorm) {
  EXPECT_EQ(ex_->target, (*golden_)["target"]["id"].get<int32_t>());
  EXPECT_NEAR(ex_->real_log_prob, (*golden_)["real"]["logprob_target"].get<double>(), kScoreTol);
  const auto& fn = (*golden_)["frozen_norm"];
  if (fn.contains("sigma_f")) {
    EXPECT_NEAR(ex_->frozen_scale, fn["sigma_f"].get<double>(), 1e-6 * fn["sigma_f"].get<double>());
  } else {
    const double ms = ex_->frozen_scale * ex_->frozen_scale - fn["eps"].get<double>();
    EXPECT_NEAR(ms, fn["ms_f"].get<double>(), 1e-6 * fn["ms_f"].get<double>());
  }
  EXPECT_NEAR(ex_->bs_log_prob_final, (*golden_)["bs"]["logprob_target_final"].get<double>(), kScoreTol);
  EXPECT_NEAR(ex_->bs_log_prob_embedding, (*golden_)["bs"]["logprob_target_embedding"].get<double>(), kScoreTol);
}

TEST_P(AttributionGolden, LayersHeadsPositionsAndNeurons) {
  EXPECT_TRUE(close(ex_->attn_layer, (*golden_)["layer_imp"]["attn"], kScoreTol, "attention layers"));
  EXPECT_TRUE(close(ex_->ffn_layer, (*golden_)["layer_imp"]["ffn"], kScoreTol, "FFN layers"));
  EXPECT_TRUE(close(ex_->head.values, (*golden_)["head_imp"], kScoreTol, "heads"));
  EXPECT_TRUE(close(ex_->head_position.values, (*golden_)["head_pos_imp"], kScoreTol, "head x position"));
  EXPECT_TRUE(close(ex_->attn_weight.values, (*golden_)["attn_weights_last"], 1e-6, "attention weights"));
  EXPECT_TRUE(close(ex_->ffn_neuron.values, (*golden_)["ffn_neuron_imp"], kScoreTol, "FFN neurons"));
  EXPECT_TRUE(close(ex_->ffn_coef.values, (*golden_)["ffn_coef_last"], 1e-5, "FFN coefficients"));
  EXPECT_TRUE(close(ex_->attn_neuron.values, (*golden_)["attn_neuron_imp"], kScoreTol, "attention neurons"));
}

TEST_P(AttributionGolden, QueryAnalyses) {
  for (const auto& item : (*golden_)["q1"]["variants"].items()) {
    const std::string name = item.key();  // clang 14 cannot capture structured bindings
    const auto& v = item.value();
    const auto it = std::find_if(ex_->ffn_value_query_layers.begin(), ex_->ffn_value_query_layers.end(), [&](const QueryLayers& q) { return q.key == name; });
    ASSERT_NE(it, ex_->ffn_value_query_layers.end()) << "Q1 variant " << name;
    EXPECT_TRUE(close(it->slots, v["slots"], kSlotTol, "Q1 " + name));
  }
  EXPECT_TRUE(close(ex_->attn_value_query_layers.slots, (*golden_)["q2"]["slots"], kSlotTol, "Q2"));
  EXPECT_NEAR(ex_->attn_value_query_avg_layer, (*golden_)["q2"]["avg_layer"].get<double>(), 1e-12);
  EXPECT_TRUE(close(ex_->query_ffn_neuron.values, (*golden_)["q3"]["scores"], kScoreTol, "Q3"));
}

TEST_P(AttributionGolden, InterventionsMatch) {
  const auto& iv = (*golden_)["interventions"];
  for (const char* which : {"top_ffn", "random_ffn"}) {
    Intervention zero;
    for (const auto& n : iv[which]["neurons"]) {  // "layer_neuron", as the notebooks name them
      const std::string s = n.get<std::string>();
      zero.ffn_neurons.push_back({std::stoi(s.substr(0, s.find('_'))), std::stoi(s.substr(s.find('_') + 1))});
    }
    const AblationResult r = ablate(*model_, ids_, ex_->target, zero);
    EXPECT_NEAR(r.before.prob, iv["before"]["prob"].get<double>(), 1e-5);
    EXPECT_NEAR(r.after.prob, iv[which]["prob"].get<double>(), 1e-5) << which;
    EXPECT_NEAR(r.after.log_prob, iv[which]["logprob"].get<double>(), kScoreTol) << which;
    EXPECT_EQ(r.after.rank, iv[which]["rank"].get<int64_t>()) << which;
  }
}

TEST_P(AttributionGolden, IdentitiesHold) {
  EXPECT_LT(ex_->checks.at("telescoping"), 1e-9);
  EXPECT_LT(ex_->checks.at("heads_plus_bias_vs_attn_out"), 1e-5);
  EXPECT_LT(ex_->checks.at("attn_neurons_vs_heads"), 1e-9);
  EXPECT_LT(ex_->checks.at("ffn_neurons_plus_bias_vs_mlp_out"), 1e-4);
  EXPECT_LT(ex_->checks.at("bs_final_vs_real_logits"), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Goldens, AttributionGolden,
                         ::testing::Values("stories260K-p0.json", "stories260K-p1.json", "TinyStories-656K-p0.json",
                                           "TinyStories-656K-p1.json", "random-gpt2-hf-p0.json"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           n = n.substr(0, n.size() - 5);
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

}  // namespace
}  // namespace reslens
