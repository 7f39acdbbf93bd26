#include "model/rope_scaling.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "reslens/error.h"

namespace reslens {

namespace {

std::string rope_number_text(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

void require_positive_rope_value(double v, const std::string& what, const std::string& source) {
  if (!(v > 0.0) || !std::isfinite(v)) throw FormatError(source + ": " + what + " = " + rope_number_text(v) + " is not a positive number");
}

// The pair index whose wavelength completes `rotations` turns over original_context positions
// (ggml_rope_yarn_corr_dim), fractional.
double yarn_correction_dim(double rot_dim, double original_context, double rotations, double base) {
  const double pi = 3.14159265358979323846;
  return rot_dim * std::log(original_context / (rotations * 2.0 * pi)) / (2.0 * std::log(base));
}

void require_longrope_factors(const std::vector<double>& f, int64_t rot_dim, const std::string& field,
                     const std::string& source) {
  if (static_cast<int64_t>(f.size()) != rot_dim / 2) {
    throw FormatError(source + ": " + field + " has " + std::to_string(f.size()) + " factors, expected " +
                      std::to_string(rot_dim / 2) + " (one per rotary pair of " + std::to_string(rot_dim) + " dims)");
  }
  for (size_t i = 0; i < f.size(); ++i) {
    if (!(f[i] > 0.0) || !std::isfinite(f[i])) {
      throw FormatError(source + ": " + field + "[" + std::to_string(i) + "] = " + rope_number_text(f[i]) +
                        " is not a positive number");
    }
  }
}

}  // namespace

double yarn_mscale(double factor) { return factor <= 1.0 ? 1.0 : 1.0 + 0.1 * std::log(factor); }

void set_yarn(RopeScaling& s, const YarnParams& p, double base, int64_t rot_dim, const std::string& source,
              const std::string& field) {
  require_positive_rope_value(p.factor, field + "factor", source);
  require_positive_rope_value(p.original_context, field + "original context", source);
  require_positive_rope_value(p.beta_fast, field + "beta_fast", source);
  require_positive_rope_value(p.beta_slow, field + "beta_slow", source);
  require_positive_rope_value(p.attn_factor, field + "attention factor", source);
  const double rot = static_cast<double>(rot_dim);
  const double low = std::max(0.0, std::floor(yarn_correction_dim(rot, p.original_context, p.beta_fast, base)));
  const double high = std::min(rot - 1.0, std::ceil(yarn_correction_dim(rot, p.original_context, p.beta_slow, base)));
  if (high < low) {
    throw UnsupportedError(source + ": YaRN's correction range is empty (pairs " + rope_number_text(low) + ".." + rope_number_text(high) +
                           " for original context " + rope_number_text(p.original_context) + ", beta_fast " + rope_number_text(p.beta_fast) +
                           ", beta_slow " + rope_number_text(p.beta_slow) + "); llama.cpp and transformers disagree there");
  }
  s.type = "yarn";
  s.factor = p.factor;
  s.original_context = static_cast<int64_t>(p.original_context);
  s.attn_factor = p.attn_factor;
  s.freq_factors.clear();
  for (int64_t i = 0; i < rot_dim / 2; ++i) {
    // ramp 1: the pair keeps its frequency (extrapolation); 0: divided by factor (interpolation).
    const double y = (static_cast<double>(i) - low) / std::max(0.001, high - low);
    const double ramp = 1.0 - std::min(1.0, std::max(0.0, y));
    s.freq_factors.push_back(1.0 / ((1.0 - ramp) / p.factor + ramp));
  }
}

double longrope_attention_factor(double factor, double original_context) {
  return factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(factor) / std::log(original_context));
}

void set_longrope(RopeScaling& s, const std::vector<double>& long_factors, const std::vector<double>& short_factors,
                  int64_t n_ctx, int64_t original_context, double attn_factor, int64_t rot_dim,
                  const std::string& source, const std::string& long_field, const std::string& short_field) {
  require_longrope_factors(long_factors, rot_dim, long_field, source);
  require_longrope_factors(short_factors, rot_dim, short_field, source);
  if (original_context <= 0) {
    throw FormatError(source + ": LongRoPE needs the original context length (got " +
                      std::to_string(original_context) + ")");
  }
  require_positive_rope_value(attn_factor, "LongRoPE attention factor", source);
  const bool use_long = n_ctx > original_context;
  s.type = "longrope";
  s.factor_set = use_long ? "long" : "short";
  s.freq_factors = use_long ? long_factors : short_factors;
  s.factor = static_cast<double>(n_ctx) / static_cast<double>(original_context);
  s.original_context = original_context;
  s.attn_factor = attn_factor;
}

}  // namespace reslens
