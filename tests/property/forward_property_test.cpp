// Properties of the forward pass that must hold on every architecture and format:
//   determinism (any thread count gives the same bits), causality (appending tokens never changes
//   earlier positions), Session == run, and the decomposition identities the paper stands on:
//   embedding + sum of attention and MLP outputs = final residual; heads through W_O (+ b_O) =
//   attention output; neurons through W_out (+ b_out) = MLP output; logits from the final residual.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/compare.h"
#include "common/test_paths.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

const char* const kModels[] = {
    "models/stories260K/stories260K.gguf",
    "models/stories260K/stories260K.bin",
    "models/TinyStories-656K/TinyStories-656K-f32.gguf",
    "models/random-gpt2/random-gpt2-test.gguf",
};

std::vector<int32_t> some_tokens(const Model& m, size_t n) {
  std::vector<int32_t> t;
  for (size_t i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(m.config().d_vocab)));
  return t;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * 4) == 0;
}

class ForwardProperty : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { model_ = Model::load(test::shared_path(GetParam())); }
  RunResult run_all(std::span<const int32_t> tokens, int threads) {
    RunOptions o;
    o.capture = HookFilter::all();
    o.all_logits = true;
    o.n_threads = threads;
    return run(*model_, tokens, o);
  }
  std::shared_ptr<const Model> model_;
};

TEST_P(ForwardProperty, ThreadCountDoesNotChangeABit) {
  const auto tokens = some_tokens(*model_, 19);
  const RunResult one = run_all(tokens, 1);
  for (int threads : {2, 3, 5}) {
    const RunResult r = run_all(tokens, threads);
    EXPECT_TRUE(bit_equal(one.logits, r.logits)) << threads << " threads";
    for (const HookName& n : one.cache.names()) {
      EXPECT_TRUE(bit_equal(one.cache.at(n), r.cache.at(n))) << n.to_string() << " with " << threads << " threads";
    }
  }
}

TEST_P(ForwardProperty, AppendingTokensLeavesEarlierPositionsUnchanged) {
  const auto tokens = some_tokens(*model_, 23);
  const RunResult full = run_all(tokens, 2);
  for (size_t k : {size_t{1}, size_t{6}, size_t{17}}) {
    const RunResult part = run_all(std::span<const int32_t>(tokens).first(k), 2);
    for (const HookName& n : part.cache.names()) {
      const Tensor& a = part.cache.at(n);
      const Tensor& b = full.cache.at(n);
      if (n.hook == Hook::kPattern || n.hook == Hook::kAttnScores) {  // [H, T, T]: rows t < k, keys s < k
        for (int64_t h = 0; h < a.dim(0); ++h) {
          for (int64_t t = 0; t < a.dim(1); ++t) {
            ASSERT_EQ(std::memcmp(a.data() + (h * a.dim(1) + t) * a.dim(2), b.data() + (h * b.dim(1) + t) * b.dim(2),
                                  static_cast<size_t>(k) * 4), 0)
                << n.to_string() << " row " << t << " with " << k << " tokens";
          }
        }
        continue;
      }
      ASSERT_EQ(std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * 4), 0)
          << n.to_string() << " with " << k << " tokens";
    }
    EXPECT_EQ(std::memcmp(part.logits.data(), full.logits.data(), static_cast<size_t>(part.logits.numel()) * 4), 0);
  }
}

TEST_P(ForwardProperty, SessionGivesTheSameLogitsAsARun) {
  const auto tokens = some_tokens(*model_, 21);
  const RunResult r = run_all(tokens, 2);
  Session s(*model_, 2);
  s.append(std::span<const int32_t>(tokens).first(5));
  s.append(std::span<const int32_t>(tokens).subspan(5, 1));
  const std::vector<float> last = s.append(std::span<const int32_t>(tokens).subspan(6));
  EXPECT_EQ(s.n_past(), 21);
  EXPECT_EQ(std::memcmp(last.data(), r.logits.row(20), last.size() * 4), 0);
}

// Float64 helpers for the identities.
std::vector<double> matvec(const MatrixView& W, const float* x) {  // W [rows, cols] @ x [cols]
  std::vector<double> y(static_cast<size_t>(W.rows));
  for (int64_t r = 0; r < W.rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < W.cols; ++c) s += static_cast<double>(W.at(r, c)) * static_cast<double>(x[c]);
    y[static_cast<size_t>(r)] = s;
  }
  return y;
}

double max_abs(std::span<const float> v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::abs(static_cast<double>(x)));
  return m;
}

TEST_P(ForwardProperty, DecompositionIdentities) {
  const ModelConfig& c = model_->config();
  const ModelWeights& W = model_->weights();
  const auto tokens = some_tokens(*model_, 9);
  const RunResult r = run_all(tokens, 2);
  const int64_t T = 9, d = c.d_model, dh = c.d_head, H = c.n_heads;
  const Tensor& final_resid = r.cache.at(Hook::kResidPost, static_cast<int>(c.n_layers - 1));
  const double scale = std::max(1.0, max_abs(final_resid.values()));

  // embedding (+ positions) + every attention and MLP output == the final residual stream.
  std::vector<double> sum(static_cast<size_t>(T * d));
  auto add = [&](const Tensor& t) {
    for (int64_t i = 0; i < T * d; ++i) sum[static_cast<size_t>(i)] += static_cast<double>(t.data()[i]);
  };
  add(r.cache.at(Hook::kEmbed));
  if (c.architecture == Architecture::kGpt2) add(r.cache.at(Hook::kPosEmbed));
  EXPECT_TRUE(test::all_close(r.cache.at(Hook::kResidPre, 0).values(), sum, 1e-6 * scale, "embedding == resid_pre 0"));
  for (int l = 0; l < c.n_layers; ++l) {
    add(r.cache.at(Hook::kAttnOut, l));
    add(r.cache.at(Hook::kMlpOut, l));
  }
  EXPECT_TRUE(test::all_close(final_resid.values(), sum, 1e-5 * scale, "sum of parts == final residual"));

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = W.layers[static_cast<size_t>(l)];
    const Tensor& z = r.cache.at(Hook::kZ, l);
    const Tensor& post = r.cache.at(Hook::kMlpPost, l);
    std::vector<double> heads(static_cast<size_t>(T * d)), neurons(static_cast<size_t>(T * d));
    for (int64_t t = 0; t < T; ++t) {
      // Per-head outputs z_h W_O[:, h] summed over heads, plus b_O.
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < d; ++i) {
          double s = 0;
          for (int64_t n = 0; n < dh; ++n) {
            s += static_cast<double>(z.data()[(t * H + h) * dh + n]) * static_cast<double>(L.W_O.at(i, h * dh + n));
          }
          heads[static_cast<size_t>(t * d + i)] += s;
        }
      }
      // Per-neuron outputs post_n W_out[:, n] summed over neurons, plus b_out.
      const std::vector<double> f = matvec(L.W_out, post.row(t));
      for (int64_t i = 0; i < d; ++i) {
        heads[static_cast<size_t>(t * d + i)] += L.b_O.empty() ? 0.0 : static_cast<double>(L.b_O[i]);
        neurons[static_cast<size_t>(t * d + i)] = f[static_cast<size_t>(i)] + (L.b_out.empty() ? 0.0 : static_cast<double>(L.b_out[i]));
      }
    }
    const Tensor& attn_out = r.cache.at(Hook::kAttnOut, l);
    const Tensor& mlp_out = r.cache.at(Hook::kMlpOut, l);
    EXPECT_TRUE(test::all_close(attn_out.values(), heads, 2e-5 * std::max(1.0, max_abs(attn_out.values())),
                                "heads through W_O == attn_out, layer " + std::to_string(l)));
    EXPECT_TRUE(test::all_close(mlp_out.values(), neurons, 2e-5 * std::max(1.0, max_abs(mlp_out.values())),
                                "neurons through W_out == mlp_out, layer " + std::to_string(l)));
    // resid_mid is exactly resid_pre + attn_out (the same float additions).
    const Tensor& pre = r.cache.at(Hook::kResidPre, l);
    const Tensor& mid = r.cache.at(Hook::kResidMid, l);
    for (int64_t i = 0; i < T * d; ++i) ASSERT_EQ(mid.data()[i], pre.data()[i] + attn_out.data()[i]);
  }

  // Logits from the captured final residual: norm with the captured scale, then W_U.
  const Tensor& norm_scale = r.cache.at(Hook::kLnFinalScale);
  std::vector<double> logits(static_cast<size_t>(T * c.d_vocab));
  for (int64_t t = 0; t < T; ++t) {
    const float* x = final_resid.row(t);
    double mean = 0;
    if (c.normalization_type == NormType::kLayerNorm) {
      for (int64_t i = 0; i < d; ++i) mean += static_cast<double>(x[i]);
      mean /= static_cast<double>(d);
    }
    std::vector<float> xn(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) {
      double v = (static_cast<double>(x[i]) - mean) / static_cast<double>(norm_scale.data()[t]) *
                 static_cast<double>(W.ln_final_w[i]);
      if (!W.ln_final_b.empty()) v += static_cast<double>(W.ln_final_b[i]);
      xn[static_cast<size_t>(i)] = static_cast<float>(v);
    }
    const auto lt = matvec(W.W_U, xn.data());
    std::copy(lt.begin(), lt.end(), logits.begin() + t * c.d_vocab);
  }
  EXPECT_TRUE(test::all_close(r.logits.values(), logits, 2e-5 * std::max(1.0, max_abs(r.logits.values())),
                              "logits from the final residual"));
}

TEST_P(ForwardProperty, OnlyRequestedHooksAreStored) {
  const auto tokens = some_tokens(*model_, 4);
  RunOptions o;
  o.capture = HookFilter::from_patterns({"blocks.*.hook_resid_pre", "blocks.0.attn.hook_pattern"});
  const RunResult r = run(*model_, tokens, o);
  EXPECT_EQ(r.cache.size(), static_cast<size_t>(model_->config().n_layers + 1));
  EXPECT_TRUE(r.cache.contains("blocks.0.attn.hook_pattern"));
  EXPECT_FALSE(r.cache.contains("blocks.1.attn.hook_pattern"));
  EXPECT_EQ(r.logits.dim(0), 1);
  EXPECT_TRUE(run(*model_, tokens).cache.size() == 0);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, ForwardProperty, ::testing::ValuesIn(kModels), [](const auto& param_info) {
  std::string n = std::filesystem::path(param_info.param).filename().string();
  for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
});

}  // namespace
}  // namespace reslens
