// llama2.c checkpoints (Karpathy's run.c format), float32 only:
//   legacy (v0): 7 x int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
//                seq_len; vocab_size < 0 means a separate classifier), then token embeddings,
//                rms_att[L], wq[L], wk[L], wv[L], wo[L], rms_ffn[L], w1[L], w2[L], w3[L], rms_final,
//                RoPE tables (2 x seq_len * head_size / 2, ignored), and the classifier if separate.
//   version 1: u32 magic "ak42", i32 version = 1, the 7 ints, u8 shared_classifier, zero padding to
//                256 bytes, then attn norms[L], ffn norms[L], final norm, embeddings, wq[L], wk[L],
//                wv[L], wo[L], w1[L], w2[L], w3[L], and the classifier if separate.
// w1 is the gate, w3 the up and w2 the down projection. Q/K rows are in the interleaved RoPE layout
// (Meta's), like GGUF. The format has no magic in its legacy form, so the header is checked against
// the exact file size. RMSNorm eps is 1e-5 and the RoPE base 10000, as run.c hard-codes them.
#include <array>
#include <cstring>

#include "core/mapped_file.h"
#include "io/byte_reader.h"
#include "model/loader.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"

namespace reslens {

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42"
constexpr size_t kHeaderBytesV1 = 256;

struct Header {
  int version = 0;
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;
  size_t data_offset = 0;
};

Header read_header(ByteReader& r) {
  Header h;
  if (r.size() >= 8) {
    const auto magic = r.read<uint32_t>();
    if (magic == kMagicV1) {
      h.version = r.read<int32_t>();
      if (h.version != 1) {
        r.fail("llama2.c checkpoint version " + std::to_string(h.version) +
               " is not supported (versions 0 and 1 are; version 2 is its int8 format)");
      }
    } else {
      r.seek(0);
    }
  }
  std::array<int32_t, 7> p{};
  for (auto& v : p) v = r.read<int32_t>();
  h.dim = p[0], h.hidden_dim = p[1], h.n_layers = p[2], h.n_heads = p[3], h.n_kv_heads = p[4];
  h.vocab_size = p[5], h.seq_len = p[6];
  if (h.version == 1) {
    h.shared_classifier = r.read<uint8_t>() != 0;
    h.data_offset = kHeaderBytesV1;
  } else {
    h.shared_classifier = h.vocab_size > 0;
    h.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
    h.data_offset = 28;
  }
  auto positive = [&](int32_t v, const char* name) {
    if (v <= 0) {
      r.fail("not a llama2.c checkpoint: header field " + std::string(name) + " = " + std::to_string(v));
    }
  };
  positive(h.dim, "dim");
  positive(h.hidden_dim, "hidden_dim");
  positive(h.n_layers, "n_layers");
  positive(h.n_heads, "n_heads");
  positive(h.n_kv_heads, "n_kv_heads");
  positive(h.vocab_size, "vocab_size");
  positive(h.seq_len, "seq_len");
  if (h.dim % h.n_heads != 0) {
    r.fail("not a llama2.c checkpoint: dim " + std::to_string(h.dim) + " is not a multiple of n_heads " +
           std::to_string(h.n_heads));
  }
  return h;
}

std::vector<std::filesystem::path> tokenizer_candidates(const std::filesystem::path& model, int32_t vocab) {
  const auto dir = model.parent_path();
  return {dir / "tokenizer.bin", dir / ("tok" + std::to_string(vocab) + ".bin")};
}

}  // namespace

std::shared_ptr<const Model> load_llama2c_model(const std::filesystem::path& path, const LoadOptions& o) {
  auto map = std::make_shared<MappedFile>(path);
  const std::string src = path.string();
  ByteReader r(map->bytes(), src);
  const Header h = read_header(r);

  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.original_architecture = "llama2.c";
  c.model_name = path.stem().string();
  c.n_layers = h.n_layers;
  c.d_model = h.dim;
  c.n_heads = h.n_heads;
  c.n_key_value_heads = h.n_kv_heads;
  c.d_head = h.dim / h.n_heads;
  c.d_mlp = h.hidden_dim;
  c.d_vocab = h.vocab_size;
  c.n_ctx = h.seq_len;
  c.normalization_type = NormType::kRmsNorm;
  c.eps = 1e-5f;
  c.act_fn = ActFn::kSilu;
  c.gated_mlp = true;
  c.positional_embedding_type = PositionalEmbedding::kRotary;
  c.rotary_base = 10000.0f;
  c.rotary_dim = c.d_head;
  c.rope_layout = RopeLayout::kInterleaved;
  c.tied_embeddings = h.shared_classifier;
  c.dtype = "F32";
  validate_config(c, src);

  const int64_t d = c.d_model, L = c.n_layers, V = c.d_vocab, F = c.d_mlp;
  const int64_t q_dim = c.n_heads * c.d_head, kv_dim = c.n_key_value_heads * c.d_head;
  // Tensor list in file order: name, shape, count (one per layer or one in all).
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    bool per_layer;
  };
  std::vector<Entry> order;
  if (h.version == 0) {
    order = {{"token_embedding_table", {V, d}, false}, {"rms_att_weight", {d}, true},
             {"wq", {q_dim, d}, true}, {"wk", {kv_dim, d}, true}, {"wv", {kv_dim, d}, true},
             {"wo", {d, q_dim}, true}, {"rms_ffn_weight", {d}, true}, {"w1", {F, d}, true},
             {"w2", {d, F}, true}, {"w3", {F, d}, true}, {"rms_final_weight", {d}, false},
             {"freq_cis_real", {c.n_ctx, c.d_head / 2}, false},
             {"freq_cis_imag", {c.n_ctx, c.d_head / 2}, false}};
  } else {
    order = {{"rms_att_weight", {d}, true}, {"rms_ffn_weight", {d}, true},
             {"rms_final_weight", {d}, false}, {"token_embedding_table", {V, d}, false},
             {"wq", {q_dim, d}, true}, {"wk", {kv_dim, d}, true}, {"wv", {kv_dim, d}, true},
             {"wo", {d, q_dim}, true}, {"w1", {F, d}, true}, {"w2", {d, F}, true},
             {"w3", {F, d}, true}};
  }
  if (!h.shared_classifier) order.push_back({"wcls", {V, d}, false});

  uint64_t expected = h.data_offset;
  for (const Entry& e : order) {
    uint64_t n = 1;
    for (int64_t x : e.shape) n *= static_cast<uint64_t>(x);
    expected += n * sizeof(float) * static_cast<uint64_t>(e.per_layer ? L : 1);
  }
  if (expected != map->size()) {
    throw FormatError(src + ": not a valid llama2.c v" + std::to_string(h.version) + " checkpoint: its header (dim " +
                      std::to_string(h.dim) + ", " + std::to_string(h.n_layers) + " layers, vocab " +
                      std::to_string(h.vocab_size) + ") needs " + std::to_string(expected) +
                      " bytes but the file has " + std::to_string(map->size()) +
                      (expected > map->size() ? " (truncated)" : ""));
  }

  auto storage = std::make_shared<ModelStorage>();
  storage->keep(map);
  ModelWeights w;
  w.layers.resize(static_cast<size_t>(L));
  std::vector<TensorInfo> infos;
  r.seek(h.data_offset);
  for (const Entry& e : order) {
    const int64_t count = e.per_layer ? L : 1;
    int64_t n = 1;
    for (int64_t x : e.shape) n *= x;
    for (int64_t l = 0; l < count; ++l) {
      const size_t at = r.offset();
      r.skip(static_cast<uint64_t>(n) * sizeof(float), e.name.c_str());
      const std::string name = e.per_layer ? e.name + "." + std::to_string(l) : e.name;
      infos.push_back({name, "F32", e.shape});
      if (e.name.rfind("freq_cis", 0) == 0) continue;  // run.c's precomputed RoPE tables: unused
      const StoredTensor t{map->bytes().subspan(at, static_cast<size_t>(n) * sizeof(float)), StorageType::kF32, e.shape};
      LayerWeights& lw = w.layers[static_cast<size_t>(l)];
      if (e.name == "token_embedding_table") w.W_E = matrix_view(*storage, t, name, V, d, src);
      else if (e.name == "rms_final_weight") w.ln_final_w = vector_view(*storage, t, name, d, src);
      else if (e.name == "wcls") w.W_U = matrix_view(*storage, t, name, V, d, src);
      else if (e.name == "rms_att_weight") lw.ln1_w = vector_view(*storage, t, name, d, src);
      else if (e.name == "rms_ffn_weight") lw.ln2_w = vector_view(*storage, t, name, d, src);
      else if (e.name == "wq") lw.W_Q = matrix_view(*storage, t, name, q_dim, d, src);
      else if (e.name == "wk") lw.W_K = matrix_view(*storage, t, name, kv_dim, d, src);
      else if (e.name == "wv") lw.W_V = matrix_view(*storage, t, name, kv_dim, d, src);
      else if (e.name == "wo") lw.W_O = matrix_view(*storage, t, name, d, q_dim, src);
      else if (e.name == "w1") lw.W_gate = matrix_view(*storage, t, name, F, d, src);
      else if (e.name == "w2") lw.W_out = matrix_view(*storage, t, name, d, F, src);
      else if (e.name == "w3") lw.W_in = matrix_view(*storage, t, name, F, d, src);
    }
  }
  if (h.shared_classifier) w.W_U = w.W_E;

  std::filesystem::path tok_path = o.tokenizer_path;
  if (tok_path.empty()) {
    const auto candidates = tokenizer_candidates(path, h.vocab_size);
    for (const auto& p : candidates) {
      if (std::filesystem::is_regular_file(p)) {
        tok_path = p;
        break;
      }
    }
    if (tok_path.empty()) {
      std::string tried;
      for (const auto& p : candidates) tried += (tried.empty() ? "" : ", ") + p.string();
      throw IoError(src + ": no llama2.c tokenizer found (tried " + tried +
                    "); pass one with --tokenizer PATH");
    }
  }
  auto tokenizer = load_llama2c_tokenizer(tok_path, h.vocab_size);
  return std::make_shared<Model>(std::move(c), std::move(w), std::move(tokenizer), std::move(storage),
                                 std::move(infos),
                                 h.version == 0 ? "llama2.c v0 (legacy)" : "llama2.c v1", path);
}

}  // namespace reslens
