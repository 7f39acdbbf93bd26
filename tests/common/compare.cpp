#include "common/compare.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace reslens::test {

std::vector<float> read_f32_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<float> v(size / sizeof(float));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

namespace {

template <typename E>
Diff compare_impl(std::span<const float> a, std::span<const E> e) {
  Diff d;
  double err = 0.0;
  double ref = 0.0;
  for (size_t i = 0; i < a.size() && i < e.size(); ++i) {
    const double diff = std::abs(static_cast<double>(a[i]) - static_cast<double>(e[i]));
    if (!(diff <= d.max_abs)) {  // NaN-aware: a NaN difference is always the worst
      d.max_abs = std::isnan(diff) ? static_cast<double>(INFINITY) : diff;
      d.worst = static_cast<int64_t>(i);
    }
    err += diff * diff;
    ref += static_cast<double>(e[i]) * static_cast<double>(e[i]);
  }
  d.nmse = ref > 0 ? err / ref : err;
  return d;
}

template <typename E>
::testing::AssertionResult all_close_impl(std::span<const float> a, std::span<const E> e, double atol,
                                          const std::string& what) {
  if (a.size() != e.size()) {
    return ::testing::AssertionFailure()
           << what << ": size " << a.size() << " != expected " << e.size();
  }
  const Diff d = compare_impl(a, e);
  if (d.max_abs <= atol) return ::testing::AssertionSuccess();
  std::ostringstream ss;
  ss << what << ": max abs diff " << d.max_abs << " > " << atol << " at index " << d.worst
     << " (actual " << a[static_cast<size_t>(d.worst)] << ", expected "
     << static_cast<double>(e[static_cast<size_t>(d.worst)]) << "), nmse " << d.nmse;
  return ::testing::AssertionFailure() << ss.str();
}

}  // namespace

Diff compare(std::span<const float> actual, std::span<const float> expected) {
  return compare_impl(actual, expected);
}
Diff compare(std::span<const float> actual, std::span<const double> expected) {
  return compare_impl(actual, expected);
}

::testing::AssertionResult all_close(std::span<const float> actual, std::span<const float> expected,
                                     double atol, const std::string& what) {
  return all_close_impl(actual, expected, atol, what);
}
::testing::AssertionResult all_close(std::span<const float> actual, std::span<const double> expected,
                                     double atol, const std::string& what) {
  return all_close_impl(actual, expected, atol, what);
}

}  // namespace reslens::test
