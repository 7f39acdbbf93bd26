// Running a model: one forward pass over a token sequence, recording the hooks asked for before the
// run, optionally with neurons or heads zeroed. Results are bit-identical for any thread count, and a
// position's results do not change when tokens are appended after it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "reslens/cache.h"
#include "reslens/forward_hooks.h"
#include "reslens/hooks.h"
#include "reslens/model.h"
#include "reslens/tensor.h"

namespace reslens {

/// Components to zero during a run (the paper's interventions, spec A7).
/// Zeroing FFN neuron k's coefficient at every position is the same as zeroing its parameter fc2_k
/// (column k of W_out); zeroing z[:, h, n] is the same as zeroing column h*d_head+n of W_O. So the
/// parameter-level intervention is applied to activations, exactly, without copying weights.
struct Intervention {
  struct FfnNeuron {
    int layer = 0;
    int neuron = 0;
  };
  struct AttnNeuron {
    int layer = 0;
    int head = 0;
    int dim = 0;
    int source_pos = -1;  ///< activation level only: remove just this source position's share
  };
  struct Head {
    int layer = 0;
    int head = 0;
  };
  std::vector<FfnNeuron> ffn_neurons;
  std::vector<AttnNeuron> attn_neurons;
  std::vector<Head> heads;
  /// -1: every position (parameter level). p >= 0: only at query position p (activation level).
  int position = -1;

  bool empty() const { return ffn_neurons.empty() && attn_neurons.empty() && heads.empty(); }
};

struct RunOptions {
  HookFilter capture = HookFilter::none();
  /// Logits at every position ([pos, d_vocab]) instead of only the last ([1, d_vocab]).
  bool all_logits = false;
  /// Worker threads; 0 uses every hardware thread.
  int n_threads = 0;
  /// Components to zero, or nullptr. Validated against the model (OutOfRange on bad indices).
  const Intervention* intervention = nullptr;
  /// Emulate llama.cpp's GELU, which looks results up in an fp16 table (input and output rounded to
  /// fp16). Only for reproducing llama.cpp's numbers on GPT-2 models; off by default.
  bool ggml_gelu = false;
  /// Query positions whose attention rows `hook_attn_scores` and `hook_pattern` keep, strictly
  /// ascending; empty keeps every row. With rows, those hooks are [n_heads, rows.size(), key_pos].
  /// explain() reads only the rows of the positions it explains, so this takes a run's pattern
  /// capture from n_layers * n_heads * T^2 floats to n_layers * n_heads * rows * T (a 7B Llama at
  /// 4096 tokens: 68.7 GB -> 16.8 MB for one position). InvalidArgument / OutOfRange when not
  /// ascending or past the sequence.
  std::vector<int64_t> pattern_rows;
  /// Callbacks that read and replace activations during the pass, in order (reslens/forward_hooks.h):
  /// activation patching, ablations, steering. Empty (the default) costs one branch per hook point.
  std::vector<ForwardHook> hooks;
};

struct RunResult {
  Tensor logits;  ///< [pos, d_vocab] or [1, d_vocab]
  ActivationCache cache;
  /// The query positions hook_attn_scores / hook_pattern hold, in order (RunOptions::pattern_rows);
  /// empty: every position.
  std::vector<int64_t> pattern_rows;
};

/// Runs `tokens` (all of them, from position 0) through the model.
/// Throws OutOfRange for a token id outside the vocabulary, InvalidArgument for an empty sequence
/// or one longer than the context window.
RunResult run(const Model& model, std::span<const int32_t> tokens, const RunOptions& options = {});

/// Incremental decoding with a key/value cache, for generation: each call appends tokens and returns
/// the logits of the last one. Gives the same logits as `run` over the whole sequence.
class Session {
 public:
  explicit Session(const Model& model, int n_threads = 0, bool ggml_gelu = false);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// [d_vocab] logits after the last appended token.
  std::vector<float> append(std::span<const int32_t> tokens);
  int64_t n_past() const;

 private:
  struct State;
  const Model& model_;
  int n_threads_;
  std::unique_ptr<State> state_;
};

/// Threads used when a call passes 0.
int default_threads();

}  // namespace reslens
