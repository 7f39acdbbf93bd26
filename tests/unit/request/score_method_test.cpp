// The one rule the CLI, the server and Python check explain's precision knobs by
// (parse_score_method, check_bound_tol, to_string(ScoreMethod) in reslens/explain.h): every name
// round-trips, and anything else is an InvalidArgument whose one line names the knob and the value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "reslens/error.h"
#include "reslens/explain.h"

namespace reslens {
namespace {

std::string refusal(const auto& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ScoreKnobs, MethodNamesRoundTrip) {
  for (const ScoreMethod m : {ScoreMethod::kAuto, ScoreMethod::kFull, ScoreMethod::kBounded}) {
    EXPECT_EQ(parse_score_method(to_string(m)), m) << to_string(m);
  }
  EXPECT_STREQ(to_string(ScoreMethod::kAuto), "auto");
  EXPECT_STREQ(to_string(ScoreMethod::kFull), "full");
  EXPECT_STREQ(to_string(ScoreMethod::kBounded), "bounded");
}

TEST(ScoreKnobs, OtherMethodNamesAreRefusedNamingTheValue) {
  for (const char* bad : {"exact", "", "Full", "bounded ", "auto\n"}) {
    const std::string what = refusal([&] { parse_score_method(bad); });
    EXPECT_EQ(what.rfind("method must be 'auto', 'full' or 'bounded', not '", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;  // a control character is shown escaped
  }
}

TEST(ScoreKnobs, BoundTolMustBePositiveAndFinite) {
  for (const double ok : {8e-6, 1e-3, 1.0, 1e300, std::numeric_limits<double>::denorm_min()}) {
    EXPECT_NO_THROW(check_bound_tol(ok)) << ok;
  }
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& bad : {std::pair{0.0, "0"}, std::pair{-0.0, "-0"}, std::pair{-1e-5, "-1e-05"},
                          std::pair{std::nan(""), "nan"}, std::pair{inf, "inf"}, std::pair{-inf, "-inf"}}) {
    EXPECT_EQ(refusal([&] { check_bound_tol(bad.first); }),
              std::string("bound_tol must be a positive finite number, not ") + bad.second);
  }
}

}  // namespace
}  // namespace reslens
