// Forward hooks (reslens/forward_hooks.h) on every shared model:
//   a hook that changes nothing changes no bit of any hook or logit (so the hooked attention path
//   is the plain one), and every hook sees exactly the tensor the run records;
//   replacing an activation is what the rest of the pass reads: patching a point with another
//   prompt's values gives that prompt's downstream values, bit for bit, at every kind of point;
//   refusals: norm scales are read-only, the causal mask stays, unknown names, layers out of range
//   and points the model does not compute are errors, and an exception in a hook stops the run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "common/test_paths.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

const char* const kModels[] = {
    "models/stories260K/stories260K.gguf",  // Llama: RMSNorm, gated MLP, interleaved RoPE rows
    "models/stories260K/stories260K.bin",
    "models/TinyStories-656K/TinyStories-656K-f32.gguf",
    "models/random-gpt2/random-gpt2-test.gguf",  // GPT-2: LayerNorm, learned positions, biases
};

std::vector<int32_t> tokens_from(const Model& m, size_t n, size_t seed) {
  std::vector<int32_t> t;
  for (size_t i = 0; i < n; ++i) {
    t.push_back(static_cast<int32_t>((i * 7919 + seed * 104729 + 13) % static_cast<size_t>(m.config().d_vocab)));
  }
  return t;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * 4) == 0;
}

bool bit_equal(std::span<const float> a, const Tensor& b) {
  return static_cast<int64_t>(a.size()) == b.numel() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

class ForwardHooks : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    model_ = Model::load(test::shared_path(GetParam()));
    a_ = tokens_from(*model_, 11, 1);
    b_ = tokens_from(*model_, 11, 2);
  }
  RunResult run_all(std::span<const int32_t> tokens, std::vector<ForwardHook> hooks = {}, int threads = 2) {
    RunOptions o;
    o.capture = HookFilter::all();
    o.all_logits = true;
    o.n_threads = threads;
    o.hooks = std::move(hooks);
    return run(*model_, tokens, o);
  }
  // A hook that overwrites its point with `donor`'s recorded values of the same point.
  static ForwardHook patch_from(const RunResult& donor, const std::string& name) {
    return {name, [&donor](HookActivation& a) {
              const Tensor& src = donor.cache.at(a.name);
              ASSERT_EQ(src.numel(), static_cast<int64_t>(a.values.size())) << a.name.to_string();
              std::memcpy(a.values.data(), src.data(), a.values.size() * sizeof(float));
            }};
  }
  bool has(const RunResult& r, const std::string& name) const { return r.cache.contains(name); }
  std::shared_ptr<const Model> model_;
  std::vector<int32_t> a_, b_;
};

TEST_P(ForwardHooks, ANoOpHookOnEveryPointChangesNoBitAndSeesWhatIsRecorded) {
  const RunResult plain = run_all(a_);
  std::map<std::string, int> calls;
  std::vector<ForwardHook> hooks = {{"*", [&](HookActivation& a) {
    ++calls[a.name.to_string()];
    const Tensor& rec = plain.cache.at(a.name);
    EXPECT_EQ(std::vector<int64_t>(a.shape.begin(), a.shape.end()), rec.shape()) << a.name.to_string();
    EXPECT_TRUE(bit_equal(a.values, rec)) << a.name.to_string() << " is not what the run records";
  }}};
  for (int threads : {1, 3}) {
    calls.clear();
    const RunResult hooked = run_all(a_, hooks, threads);
    EXPECT_TRUE(bit_equal(plain.logits, hooked.logits)) << threads << " threads";
    for (const HookName& n : plain.cache.names()) {
      EXPECT_TRUE(bit_equal(plain.cache.at(n), hooked.cache.at(n))) << n.to_string();
      EXPECT_EQ(calls[n.to_string()], 1) << n.to_string() << " was not hooked exactly once";
    }
    EXPECT_EQ(calls.size(), plain.cache.size());
  }
}

TEST_P(ForwardHooks, HooksRunInOrderEachSeeingThePreviousOutput) {
  std::vector<float> seen;
  const std::string name = "blocks.0.hook_resid_pre";
  const RunResult r = run_all(a_, {{name, [](HookActivation& a) { a.values[0] = 5.0f; }},
                                   {"blocks.*.hook_resid_pre", [&](HookActivation& a) {
                                      if (a.name.layer == 0) seen.push_back(a.values[0]);
                                      a.values[0] *= 2.0f;
                                    }}});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], 5.0f);
  EXPECT_EQ(r.cache.at(name).data()[0], 10.0f);  // the cache holds what the hooks left
}

// Patching a point with prompt b's values makes the pass downstream of it prompt b's pass: the
// listed points (patched together) determine `downstream`, which must then equal b's bit for bit
// while the unpatched run of a differs.
TEST_P(ForwardHooks, PatchedPointsAreWhatThePassReads) {
  const RunResult a = run_all(a_);
  const RunResult b = run_all(b_);
  const ModelConfig& c = model_->config();
  const int L = static_cast<int>(c.n_layers) - 1;
  const std::string l = "blocks." + std::to_string(L) + ".";
  struct Case {
    std::vector<std::string> patched;
    std::string downstream;  // a hook name, or "logits"
  };
  std::vector<Case> cases = {
      {{"blocks.0.hook_resid_pre"}, "logits"},
      {{l + "hook_resid_post"}, "logits"},
      {{"ln_final.hook_normalized"}, "logits"},
      {{l + "ln1.hook_normalized"}, l + "hook_attn_out"},
      {{l + "attn.hook_q", l + "attn.hook_k", l + "attn.hook_v"}, l + "hook_attn_out"},
      {{l + "attn.hook_attn_scores", l + "attn.hook_v"}, l + "hook_attn_out"},
      {{l + "attn.hook_pattern", l + "attn.hook_v"}, l + "hook_attn_out"},
      {{l + "attn.hook_z"}, l + "hook_attn_out"},
      {{l + "hook_attn_out", l + "hook_resid_pre"}, l + "hook_resid_mid"},
      {{l + "hook_resid_mid"}, l + "ln2.hook_normalized"},
      {{l + "ln2.hook_normalized"}, l + "hook_mlp_out"},
      {{l + "mlp.hook_post"}, l + "hook_mlp_out"},
      {{l + "hook_mlp_out", l + "hook_resid_mid"}, l + "hook_resid_post"},
  };
  if (c.positional_embedding_type == PositionalEmbedding::kStandard) {
    cases.push_back({{"hook_embed", "hook_pos_embed"}, "logits"});
  } else {
    cases.push_back({{"hook_embed"}, "logits"});
    cases.push_back({{l + "attn.hook_rot_q", l + "attn.hook_rot_k", l + "attn.hook_v"}, l + "hook_attn_out"});
  }
  if (c.gated_mlp) {
    cases.push_back({{l + "mlp.hook_pre", l + "mlp.hook_pre_linear"}, l + "hook_mlp_out"});
  } else {
    cases.push_back({{l + "mlp.hook_pre"}, l + "hook_mlp_out"});
  }
  for (const Case& k : cases) {
    std::vector<ForwardHook> hooks;
    std::string label;
    for (const std::string& p : k.patched) {
      ASSERT_TRUE(has(a, p)) << p;
      hooks.push_back(patch_from(b, p));
      label += p + " ";
    }
    const RunResult patched = run_all(a_, hooks);
    const bool is_logits = k.downstream == "logits";
    const Tensor& got = is_logits ? patched.logits : patched.cache.at(k.downstream);
    const Tensor& want = is_logits ? b.logits : b.cache.at(k.downstream);
    const Tensor& before = is_logits ? a.logits : a.cache.at(k.downstream);
    EXPECT_FALSE(bit_equal(before, want)) << "the prompts do not differ at " << k.downstream;
    EXPECT_TRUE(bit_equal(got, want)) << "patching " << label << "did not give b's " << k.downstream;
    for (const std::string& p : k.patched) {
      EXPECT_TRUE(bit_equal(patched.cache.at(p), b.cache.at(p))) << p << " is not recorded as patched";
    }
  }
}

TEST_P(ForwardHooks, NormScalesAreReadOnly) {
  EXPECT_NO_THROW(run_all(a_, {{"blocks.0.ln1.hook_scale", [](HookActivation&) {}}}));
  try {
    run_all(a_, {{"blocks.0.ln1.hook_scale", [](HookActivation& a) { a.values[0] += 1.0f; }}});
    FAIL() << "a changed scale was accepted";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.ln1.hook_scale"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_all(a_, {{"ln_final.hook_scale", [](HookActivation& a) { a.values[0] *= 2.0f; }}}),
               UnsupportedError);
}

TEST_P(ForwardHooks, TheCausalMaskStays) {
  // Query 0 may see only key 0: its score for key 1 must stay -inf, its weight 0.
  EXPECT_THROW(run_all(a_, {{"blocks.0.attn.hook_attn_scores", [](HookActivation& a) { a.values[1] = 0.0f; }}}),
               UnsupportedError);
  EXPECT_THROW(run_all(a_, {{"blocks.0.attn.hook_pattern", [](HookActivation& a) { a.values[1] = 0.5f; }}}),
               UnsupportedError);
  // Visible entries may change: attending query 1 wholly to key 0 of head 0.
  const RunResult r = run_all(a_, {{"blocks.0.attn.hook_pattern", [](HookActivation& a) {
                                      const int64_t S = a.shape[2];
                                      a.values[static_cast<size_t>(S)] = 1.0f;
                                      a.values[static_cast<size_t>(S + 1)] = 0.0f;
                                    }}});
  const Tensor& z = r.cache.at("blocks.0.attn.hook_z");    // [pos, n_heads, d_head]
  const Tensor& v = r.cache.at("blocks.0.attn.hook_v");    // [pos, n_kv_heads, d_head]
  const Tensor& p = r.cache.at("blocks.0.attn.hook_pattern");
  EXPECT_EQ(p.data()[p.dim(2)], 1.0f);
  const int64_t H = z.dim(1), dh = z.dim(2);
  for (int64_t i = 0; i < dh; ++i) EXPECT_EQ(z.data()[H * dh + i], v.data()[i]) << "z[1, 0] is not v[0, 0]";
}

TEST_P(ForwardHooks, BadHooksAreRefusedByName) {
  const auto noop = [](HookActivation&) {};
  EXPECT_THROW(run_all(a_, {{"blocks.0.hook_resid_pr", noop}}), InvalidArgument);
  EXPECT_THROW(run_all(a_, {{"blocks.*.hook_nothing", noop}}), InvalidArgument);
  EXPECT_THROW(run_all(a_, {{"blocks.0.hook_resid_pre", HookFn{}}}), InvalidArgument);
  const std::string past = "blocks." + std::to_string(model_->config().n_layers) + ".hook_resid_pre";
  EXPECT_THROW(run_all(a_, {{past, noop}}), OutOfRange);
  const bool rotary = model_->config().positional_embedding_type == PositionalEmbedding::kRotary;
  try {
    run_all(a_, {{rotary ? "hook_pos_embed" : "blocks.0.attn.hook_rot_q", noop}});
    FAIL() << "a hook on a point the model does not compute was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("does not compute"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(run_all(a_, {{"blocks.*.attn.hook_rot_*", noop}}));  // a pattern may match nothing here
  EXPECT_THROW(run_all(a_, {{"hook_embed", [](HookActivation&) { throw std::runtime_error("stop"); }}}),
               std::runtime_error);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, ForwardHooks, ::testing::ValuesIn(kModels), [](const auto& param_info) {
  std::string n = std::filesystem::path(param_info.param).filename().string();
  for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
});

}  // namespace
}  // namespace reslens
