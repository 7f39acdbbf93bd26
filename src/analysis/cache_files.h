// Where explain's per-model caches live and how a model's weights are recognised, shared by the
// bounds cache (analysis/bounds.h) and the projection cache (analysis/projection_cache.h).
#pragma once

#include <cstdint>
#include <filesystem>

#include "reslens/model.h"

namespace reslens::analysis {

/// $RESLENS_CACHE_DIR, else $XDG_CACHE_HOME/reslens, else $HOME/.cache/reslens; empty when none is set.
std::filesystem::path cache_dir();

/// Identifies a model's weights cheaply: its dimensions and a strided sample of every matrix the
/// caches derive from (W_U, ln_final's scale, W_out, W_O), so an edited or different model never
/// reuses a stale cache entry.
uint64_t model_fingerprint(const Model& model);

}  // namespace reslens::analysis
