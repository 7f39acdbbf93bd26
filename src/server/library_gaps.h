// Library functions the server needs whose public declaration does not link yet. Internal.
#pragma once

#include "reslens/explain.h"

namespace reslens::analysis {

/// include/reslens/explain.h declares reslens::query_ffn_neurons (spec Q3/Q4 for one attention
/// neuron), but src/analysis/query_scores.cpp defines it inside reslens::analysis, so only this
/// name links. Remove this file (and call reslens::query_ffn_neurons) once the definition moves.
ScoreArray query_ffn_neurons(const Model& model, const RunResult& run, int layer, int head, int dim, int pos,
                             double multiplier);

}  // namespace reslens::analysis
