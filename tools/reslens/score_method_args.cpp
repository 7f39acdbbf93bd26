// --method, --bound-tol, --no-projection-cache, --no-sketch, --extended-head (score_method_args.h).
#include "score_method_args.h"

#include <cmath>
#include <cstdlib>

#include "reslens/error.h"

namespace reslens::cli {

namespace {

// A CLI11 validator running one of the library's rules (reslens/explain.h), which the server and
// Python check by too: `rule` returns a message for text that is no value of its kind, else applies
// the library's check, whose InvalidArgument message becomes CLI11's (exit 2, one line).
template <class Rule>
CLI::Validator library_rule(Rule rule, const char* name, const char* description) {
  return CLI::Validator(
      [rule](std::string& s) -> std::string {
        try {
          return rule(s);
        } catch (const InvalidArgument& e) {
          return e.what();
        }
      },
      name, description);
}

// CLI11's PositiveNumber would let nan and inf through, and neither is a tolerance.
CLI::Validator positive_finite_tolerance() {
  return library_rule(
      [](const std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) return "must be a positive finite number, not '" + s + "'";
        check_bound_tol(v);
        return {};
      },
      "POSITIVE", "positive finite number");
}

CLI::Validator extended_head_size() {
  return library_rule(
      [](const std::string& s) -> std::string {
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || end != s.c_str() + s.size()) return "must be -1, 0 or a number of tokens, not '" + s + "'";
        check_extended_head(v);
        return {};
      },
      "N", "extended head size");
}

CLI::Validator score_method_name() {
  return library_rule(
      [](const std::string& s) -> std::string {
        parse_score_method(s);
        return {};
      },
      "auto|full|bounded", "score method");
}

}  // namespace

void ScoreMethodArgs::add(CLI::App& cmd) {
  cmd.add_option("--method", method,
                 "How neuron, head and position scores are computed: auto (default: bounded for large vocabularies), "
                 "full (every vector over the whole vocabulary) or bounded (certified bounds); all agree within "
                 "1e-5 (docs/explain.md)")
      ->check(score_method_name());
  cmd.add_option("--bound-tol", bound_tol,
                 "Bounded method: largest accepted error of a certified score (default 8e-6); a larger value is "
                 "faster and less exact. No effect with --method full")
      ->check(positive_finite_tolerance());
  cmd.add_flag("--no-projection-cache", no_projection_cache,
               "Bounded method: ignore the model's projection cache (reslens precompute). No effect with --method full");
  cmd.add_flag("--no-sketch", no_sketch,
               "Bounded method: do not certify scores from int8 sketches (CPUs with AVX2 or better) before projecting "
               "exactly. No effect with --method full");
  cmd.add_option("--extended-head", extended_head,
                 "Bounded method: tokens of the larger head that what the first bound leaves is tried against before "
                 "the sketch; 0 = none, -1 (default) = none for models under 2048 wide whose sketch runs on AMX, else 2048. "
                 "Any value gives scores within --bound-tol; a fixed one gives the same bytes on every CPU")
      ->check(extended_head_size());
}

void ScoreMethodArgs::apply(ExplainOptions& o) const {
  o.method = parse_score_method(method);
  o.bound_tol = bound_tol;
  o.projection_cache = !no_projection_cache;
  o.projection_sketch = !no_sketch;
  o.extended_head = extended_head;
}

nlohmann::json ScoreMethodArgs::changed() const {
  const ScoreMethodArgs defaults;
  nlohmann::json j = nlohmann::json::object();
  if (method != defaults.method) j["method"] = method;
  if (bound_tol != defaults.bound_tol) j["bound_tol"] = bound_tol;
  if (no_projection_cache) j["projection_cache"] = false;
  if (no_sketch) j["projection_sketch"] = false;
  if (extended_head != defaults.extended_head) j["extended_head"] = extended_head;
  return j;
}

}  // namespace reslens::cli
