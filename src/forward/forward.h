// The forward pass shared by run() and Session: one readable block loop over the layers, recording
// the requested hooks and applying interventions. Internal; the public API is reslens/run.h.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "forward/hook_runner.h"
#include "reslens/cache.h"
#include "reslens/hooks.h"
#include "reslens/model.h"
#include "reslens/run.h"
#include "reslens/tensor.h"

namespace reslens {

/// Rotated keys and values of every position seen so far, per layer: [capacity, n_kv_heads * d_head].
struct KvCache {
  std::vector<std::vector<float>> k;
  std::vector<std::vector<float>> v;
  int64_t n_past = 0;
  int64_t capacity = 0;
};

struct ForwardArgs {
  std::span<const int32_t> tokens;
  int64_t pos0 = 0;            ///< absolute position of tokens[0]
  KvCache* kv = nullptr;       ///< nullptr: a self-contained pass over positions [0, T)
  const HookFilter* capture = nullptr;
  ActivationCache* cache = nullptr;
  const Intervention* intervention = nullptr;
  bool all_logits = false;
  bool ggml_gelu = false;
  int n_threads = 0;
  /// Query positions (absolute, ascending) whose attention rows are recorded; empty: all of them.
  std::span<const int64_t> pattern_rows;
  /// Forward hooks that read and replace activations (RunOptions::hooks), or nullptr.
  HookRunner* hooks = nullptr;
};

/// Throws OutOfRange/InvalidArgument for bad ids, empty input or a sequence past the context window.
void validate_tokens(const Model& model, std::span<const int32_t> tokens, int64_t pos0);
/// Throws InvalidArgument when the rows are not strictly ascending, OutOfRange past the sequence.
void validate_pattern_rows(std::span<const int64_t> rows, int64_t n_positions);
/// Throws OutOfRange when an intervention names a layer/neuron/head/dim/position that does not exist.
void validate_intervention(const Model& model, const Intervention& iv, int64_t n_positions);

/// Runs the tokens through the model; returns logits [T or 1, d_vocab].
Tensor forward(const Model& model, const ForwardArgs& args);

}  // namespace reslens
