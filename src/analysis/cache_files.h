// Where explain's per-model caches live and how a model's weights are recognised, shared by the
// bounds cache (analysis/bounds.h) and the projection cache (analysis/projection_cache.h).
#pragma once

#include <cstdint>
#include <filesystem>

#include "reslens/model.h"

namespace reslens::analysis {

/// $RESLENS_CACHE_DIR, else $XDG_CACHE_HOME/reslens, else $HOME/.cache/reslens; empty when none is set.
std::filesystem::path cache_dir();

/// The key of a model's cache files: Model::fingerprint(), computed once per model and then stored,
/// so asking again costs nothing.
inline uint64_t model_fingerprint(const Model& model) { return model.fingerprint(); }

}  // namespace reslens::analysis
