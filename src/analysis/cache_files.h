// Where explain's per-model caches live and how a model's weights are recognised, shared by the
// bounds cache (analysis/bounds.h) and the projection cache (analysis/projection_cache.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>

#include "reslens/model.h"

namespace reslens::analysis {

/// $RESLENS_CACHE_DIR, else $XDG_CACHE_HOME/reslens, else $HOME/.cache/reslens; empty when none is set.
std::filesystem::path cache_dir();

/// The key of a model's cache files: Model::fingerprint(), computed once per model and then stored,
/// so asking again costs nothing.
inline uint64_t model_fingerprint(const Model& model) { return model.fingerprint(); }

/// Writes a cache file whole or not at all: `write` fills a stream on a temporary file beside p,
/// which is renamed over p only when every write succeeded (else removed), so a reader never sees a
/// half-written file. Caches are an optimisation: a folder that cannot be written only costs time,
/// so nothing is thrown.
void write_cache_file(const std::filesystem::path& p, const std::function<void(std::ostream&)>& write);

}  // namespace reslens::analysis
