// Matrices kept in their file's encoding (F16, BF16, Q8_0, llama.cpp's block and k-quant types) give
// the same numbers, bit for bit, as the same model converted to float32 at load: the logits at every
// position, every captured hook, and every score of a whole explain, for 1 and 2 threads. This is
// what lets reslens keep a 7B model in its file's size without changing a single result.
//
// The models are the generated ones of tests/reference (every quantized type and the F16/BF16/Q8_0
// conversions of the shared models, GGUF and Hugging Face): the directories are given in
// $RESLENS_ENCODED_MODEL_DIRS (colon-separated); every *.gguf file and every directory holding a
// config.json in them is checked, and the test fails when it finds none.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "model/weight_rows.h"
#include "reslens/explain.h"
#include "reslens/model.h"
#include "reslens/run.h"

namespace reslens {
namespace {

std::vector<std::filesystem::path> encoded_models() {
  std::vector<std::filesystem::path> out;
  const char* env = std::getenv("RESLENS_ENCODED_MODEL_DIRS");
  if (env == nullptr) return out;
  std::stringstream dirs(env);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty() || !std::filesystem::is_directory(dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".gguf" || std::filesystem::exists(e.path() / "config.json")) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool same_bits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// True when the model keeps at least one matrix encoded (the comparison would be vacuous otherwise).
bool has_encoded_matrix(const Model& m) {
  for (const LayerWeights& l : m.weights().layers) {
    for (const MatrixView* v : {&l.W_Q, &l.W_K, &l.W_V, &l.W_O, &l.W_in, &l.W_gate, &l.W_out}) {
      if (!v->empty() && !v->is_float()) return true;
    }
  }
  return !m.weights().W_U.is_float() || !m.weights().W_E.is_float();
}

// Token ids spread over the vocabulary (every model has at least 256 tokens).
std::vector<int32_t> prompt_ids(const Model& m) {
  const auto V = static_cast<int32_t>(m.config().d_vocab);
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 9; ++i) ids.push_back((1 + i * 7919) % V);
  return ids;
}

void expect_same_explanations(const Explanation& a, const Explanation& b, const std::string& what) {
  EXPECT_EQ(a.target, b.target) << what;
  const std::pair<const char*, std::pair<const ScoreArray*, const ScoreArray*>> arrays[] = {
      {"head", {&a.head, &b.head}},
      {"head_position", {&a.head_position, &b.head_position}},
      {"attn_weight", {&a.attn_weight, &b.attn_weight}},
      {"ffn_neuron", {&a.ffn_neuron, &b.ffn_neuron}},
      {"ffn_coef", {&a.ffn_coef, &b.ffn_coef}},
      {"attn_neuron", {&a.attn_neuron, &b.attn_neuron}},
      {"attn_coef", {&a.attn_coef, &b.attn_coef}},
      {"query_ffn_neuron", {&a.query_ffn_neuron, &b.query_ffn_neuron}},
      {"expert", {&a.expert, &b.expert}},
  };
  for (const auto& [name, p] : arrays) {
    EXPECT_EQ(p.first->shape, p.second->shape) << what << " " << name;
    EXPECT_TRUE(same_bits(p.first->values, p.second->values)) << what << ": " << name << " differs";
  }
  ASSERT_EQ(a.lens.size(), b.lens.size()) << what;
  for (size_t i = 0; i < a.lens.size(); ++i) {
    EXPECT_EQ(std::memcmp(&a.lens[i].log_prob, &b.lens[i].log_prob, sizeof(double)), 0) << what << " lens " << i;
  }
  ASSERT_EQ(a.checks.size(), b.checks.size()) << what;
  for (const auto& [k, v] : a.checks) {
    const double w = b.checks.at(k);
    EXPECT_EQ(std::memcmp(&v, &w, sizeof v), 0) << what << " check " << k;
  }
}

TEST(EncodedWeights, SameBitsAsFloat32OnEveryGeneratedModel) {
  const auto models = encoded_models();
  ASSERT_FALSE(models.empty()) << "no models found in $RESLENS_ENCODED_MODEL_DIRS (set by tests/reference; "
                                  "run the generate_* tests first)";
  int encoded = 0;
  for (const auto& path : models) {
    SCOPED_TRACE(path.string());
    const auto packed = Model::load(path);
    LoadOptions f32;
    f32.weights_as_float32 = true;
    const auto converted = Model::load(path, f32);
    if (!has_encoded_matrix(*packed)) continue;  // an F32 file: nothing to compare
    ++encoded;
    EXPECT_LT(packed->owned_bytes(), converted->owned_bytes()) << "the encoded model should hold less float32";
    EXPECT_EQ(packed->fingerprint(), converted->fingerprint());
    const std::vector<int32_t> ids = prompt_ids(*packed);
    for (const int threads : {1, 2}) {
      RunOptions o;
      o.capture = HookFilter::all();
      o.all_logits = true;
      o.n_threads = threads;
      const RunResult a = run(*packed, ids, o);
      const RunResult b = run(*converted, ids, o);
      ASSERT_EQ(a.logits.numel(), b.logits.numel());
      EXPECT_TRUE(same_bits(a.logits.data(), b.logits.data(), a.logits.numel())) << "logits, threads " << threads;
      for (const HookName& n : a.cache.names()) {
        const Tensor& ta = a.cache.at(n);
        const Tensor& tb = b.cache.at(n);
        ASSERT_EQ(ta.numel(), tb.numel()) << n.to_string();
        EXPECT_TRUE(same_bits(ta.data(), tb.data(), ta.numel())) << n.to_string() << ", threads " << threads;
      }
      for (const ScoreMethod method : {ScoreMethod::kBounded, ScoreMethod::kFull}) {
        ExplainOptions eo;
        eo.method = method;
        eo.projection_cache = false;
        eo.n_threads = threads;
        eo.foil = (ids[2] + 1) % static_cast<int32_t>(packed->config().d_vocab);
        // (another token when that one is the prediction itself, as on tiny-gemma2)
        const int64_t V = packed->config().d_vocab;
        const std::span<const float> last(a.logits.data() + (a.logits.dim(0) - 1) * V, static_cast<size_t>(V));
        if (target_stats(last, 0).top1 == eo.foil) eo.foil = (eo.foil + 1) % static_cast<int32_t>(V);
        const Explanation ea = explain(*packed, a, ids, eo);
        const Explanation eb = explain(*converted, b, ids, eo);
        expect_same_explanations(ea, eb, std::string(method == ScoreMethod::kFull ? "full" : "bounded") +
                                             ", threads " + std::to_string(threads));
      }
    }
  }
  EXPECT_GT(encoded, 0) << "none of the models keeps an encoded matrix";
}

TEST(EncodedWeights, RowsColumnsAndBlocksDecodeAsTheWholeMatrix) {
  const auto models = encoded_models();
  ASSERT_FALSE(models.empty()) << "no models found in $RESLENS_ENCODED_MODEL_DIRS";
  for (const auto& path : models) {
    SCOPED_TRACE(path.string());
    const auto m = Model::load(path);
    const MatrixView& W = m->weights().layers[0].W_out;  // [d_model, d_mlp]
    const FloatWeights whole(W);
    std::vector<float> col(static_cast<size_t>(W.rows)), sub(static_cast<size_t>(3 * 5));
    for (const int64_t c : {int64_t{0}, W.cols / 2, W.cols - 1}) {
      read_column(W, c, col.data());
      for (int64_t r = 0; r < W.rows; ++r) ASSERT_EQ(col[static_cast<size_t>(r)], whole->at(r, c));
      ASSERT_EQ(element(W, W.rows - 1, c), whole->at(W.rows - 1, c));
    }
    // Columns in any order, repeated, several in one block: each as the whole matrix has it, for 1
    // and 2 threads.
    const std::vector<int64_t> cols = {W.cols - 1, 0, 1, W.cols / 2, 1, W.cols / 3, W.cols - 2};
    for (const int threads : {1, 2}) {
      std::vector<float> many(cols.size() * static_cast<size_t>(W.rows), -1.0f);
      read_columns(W, cols, many.data(), threads);
      for (size_t i = 0; i < cols.size(); ++i) {
        for (int64_t r = 0; r < W.rows; ++r) ASSERT_EQ(many[i * static_cast<size_t>(W.rows) + static_cast<size_t>(r)], whole->at(r, cols[i]));
      }
    }
    // A layer decoded into the previous layer's storage (the explain's loops over layers) holds the
    // same values as a fresh decode, none of the previous layer's.
    if (m->weights().layers.size() > 1) {
      const MatrixView& W1 = m->weights().layers[1].W_out;
      FloatWeights reused(W);
      const float* storage = reused->data;
      reused = FloatWeights(W1, 2, std::move(reused));
      const FloatWeights fresh(W1);
      if (!W.is_float()) {
        EXPECT_EQ(reused->data, storage) << "the storage was not reused";
      }
      for (int64_t r = 0; r < W1.rows; ++r) {
        for (int64_t c = 0; c < W1.cols; ++c) ASSERT_EQ(reused->at(r, c), fresh->at(r, c));
      }
    }
    read_submatrix(W, 1, 3, W.cols - 5, 5, sub.data());
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t c = 0; c < 5; ++c) ASSERT_EQ(sub[static_cast<size_t>(r * 5 + c)], whole->at(1 + r, W.cols - 5 + c));
    }
  }
}

}  // namespace
}  // namespace reslens
