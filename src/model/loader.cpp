// Shape-checked materialisation and configuration validation shared by every loader.
#include "model/loader.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/memory.h"
#include "reslens/error.h"

namespace reslens {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const float* materialize(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                         const std::vector<int64_t>& expected, const std::string& source) {
  if (t.shape != expected) {
    throw FormatError(source + ": tensor '" + name + "' has shape " + shape_string(t.shape) +
                      ", expected " + shape_string(expected));
  }
  int64_t n = 1;
  for (int64_t d : expected) n *= d;
  return storage.floats(t.bytes, t.type, n);
}

MatrixView matrix_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                       int64_t rows, int64_t cols, const std::string& source) {
  if (t.type == StorageType::kF32 || !storage.keep_encoded()) return float_matrix_view(storage, t, name, rows, cols, source);
  if (t.shape != std::vector<int64_t>{rows, cols}) materialize(storage, t, name, {rows, cols}, source);  // names the shape
  return storage.packed(t.bytes, t.type, rows, cols);
}

MatrixView float_matrix_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                             int64_t rows, int64_t cols, const std::string& source) {
  return {materialize(storage, t, name, {rows, cols}, source), rows, cols, cols};
}

VectorView vector_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                       int64_t size, const std::string& source) {
  return {materialize(storage, t, name, {size}, source), size};
}

std::string weights_dtype(const std::vector<std::string>& matrix_types) {
  std::set<std::string> types(matrix_types.begin(), matrix_types.end());
  if (types.size() == 1) return *types.begin();
  std::string s;
  for (const auto& t : types) s += (s.empty() ? "" : ", ") + t;
  return "mixed (" + s + ")";
}

void note_attention_biases(ModelConfig& c, const std::vector<LayerWeights>& layers) {
  for (const LayerWeights& L : layers) {
    c.qkv_bias = c.qkv_bias || !L.b_Q.empty() || !L.b_K.empty() || !L.b_V.empty();
    c.o_bias = c.o_bias || !L.b_O.empty();
  }
}

std::vector<double> llama3_freq_factors(double base, int64_t rot_dim, double factor, double low_freq_factor,
                                        double high_freq_factor, double original_ctx) {
  const double pi = 3.14159265358979323846;
  const double low_freq_wavelen = original_ctx / low_freq_factor;
  const double high_freq_wavelen = original_ctx / high_freq_factor;
  std::vector<double> out;
  for (int64_t i = 0; i < rot_dim / 2; ++i) {
    const double freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
    const double wavelen = 2.0 * pi / freq;
    if (wavelen < high_freq_wavelen) {
      out.push_back(1.0);
    } else if (wavelen > low_freq_wavelen) {
      out.push_back(factor);
    } else {
      const double s = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(1.0 / ((1.0 - s) / factor + s));
    }
  }
  return out;
}

void require_memory_for_weights(const WeightBytes& b, bool keep_encoded, const std::string& stored_as,
                                const std::string& source) {
  const int64_t available = memory_available();
  if (available < 0) return;
  // Kept encoded, the model needs its weights as stored (mapped pages, resident once read) plus the
  // float32 copies of what the loader rebuilds; converted, the float32 of every non-F32 tensor.
  const int64_t needed = keep_encoded ? b.stored : b.float32_of_encoded;
  if (needed <= available) return;
  const std::string what = keep_encoded ? "weights take " + size_text(needed) + " as stored (" + stored_as + ")"
                                        : stored_as + " weights take " + size_text(needed) + " as float32";
  throw UnsupportedError(source + ": its " + what + ", more than the " + size_text(available) +
                         " of memory available (a smaller model, or free memory; RESLENS_MEMORY_AVAILABLE=BYTES "
                         "overrides the figure)");
}

void validate_config(const ModelConfig& c, const std::string& source) {
  auto bad = [&](const std::string& what) {
    throw FormatError(source + ": implausible hyperparameters: " + what);
  };
  auto in_range = [&](int64_t v, int64_t lo, int64_t hi, const char* name) {
    if (v < lo || v > hi) {
      bad(std::string(name) + " = " + std::to_string(v) + " (expected " + std::to_string(lo) + ".." +
          std::to_string(hi) + ")");
    }
  };
  in_range(c.n_layers, 1, 4096, "n_layers");
  in_range(c.d_model, 1, int64_t{1} << 17, "d_model");
  in_range(c.n_heads, 1, 4096, "n_heads");
  in_range(c.n_key_value_heads, 1, c.n_heads, "n_key_value_heads");
  in_range(c.d_head, 1, 4096, "d_head");
  in_range(c.d_mlp, 1, int64_t{1} << 20, "d_mlp");
  in_range(c.d_vocab, 1, int64_t{1} << 22, "d_vocab");
  in_range(c.n_ctx, 1, int64_t{1} << 24, "n_ctx");
  if (c.n_heads % c.n_key_value_heads != 0) {
    bad("n_heads (" + std::to_string(c.n_heads) + ") is not a multiple of n_key_value_heads (" +
        std::to_string(c.n_key_value_heads) + ")");
  }
  if (c.positional_embedding_type == PositionalEmbedding::kRotary &&
      (c.rotary_dim < 2 || c.rotary_dim > c.d_head || c.rotary_dim % 2 != 0)) {
    bad("rotary dimension " + std::to_string(c.rotary_dim) + " for d_head " + std::to_string(c.d_head));
  }
  if (!(c.eps > 0.0f) || !(c.eps < 1.0f)) bad("norm epsilon " + std::to_string(c.eps));
  if (c.positional_embedding_type == PositionalEmbedding::kRotary && !(c.rotary_base > 1.0f)) {
    bad("rope base " + std::to_string(c.rotary_base));
  }
  const RopeScaling& rs = c.rope_scaling;
  if (!(rs.linear_factor > 0.0) || !std::isfinite(rs.linear_factor)) {
    bad("rope scaling factor " + std::to_string(rs.linear_factor));
  }
  if (!(rs.attn_factor > 0.0) || !std::isfinite(rs.attn_factor)) bad("rope attention factor " + std::to_string(rs.attn_factor));
  if (!rs.freq_factors.empty()) {
    if (static_cast<int64_t>(rs.freq_factors.size()) != c.rotary_dim / 2) {
      bad(std::to_string(rs.freq_factors.size()) + " rope frequency factors for " + std::to_string(c.rotary_dim) +
          " rotary dims (expected " + std::to_string(c.rotary_dim / 2) + ")");
    }
    for (const double f : rs.freq_factors) {
      if (!(f > 0.0) || !std::isfinite(f)) bad("rope frequency factor " + std::to_string(f));
    }
  }
}

void check_tokenizer_fits(const Tokenizer& tokenizer, int64_t d_vocab, const std::string& tokenizer_source,
                          const std::string& model_source) {
  const int64_t n = tokenizer.n_vocab();
  const std::string sizes = tokenizer_source + ": the tokenizer has " + std::to_string(n) +
                            " tokens but the model's vocabulary has " + std::to_string(d_vocab) + " rows" +
                            (model_source == tokenizer_source ? std::string() : " (" + model_source + ")");
  if (n > d_vocab) {
    throw FormatError(sizes + ": token ids " + std::to_string(d_vocab) + ".." + std::to_string(n - 1) +
                      " have no row (is this the model's tokenizer?)");
  }
  if ((d_vocab - n) * kMaxPaddedRowsDivisor > d_vocab) {
    throw FormatError(sizes + ": " + std::to_string(d_vocab - n) +
                      " rows would have no token, more than a padded vocabulary adds (at most 1/" +
                      std::to_string(kMaxPaddedRowsDivisor) + " of the rows; is this the model's tokenizer?)");
  }
}

}  // namespace reslens
