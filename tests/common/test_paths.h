// Where the tests find ../shared (models, goldens, tokenizers). Never skip silently: a test that
// needs a shared file and cannot find it fails with a message naming the path it looked for.
#pragma once

#include <filesystem>
#include <string>

namespace reslens::test {

/// The shared folder: $RESLENS_SHARED_DIR, else the default CMake baked in (checkout/../shared).
std::filesystem::path shared_dir();

/// shared_dir() / relative, after checking it exists (fails the test with a clear message if not).
std::filesystem::path shared_path(const std::string& relative);

/// A fresh, empty scratch directory for this test (under the build tree's temp area).
std::filesystem::path scratch_dir(const std::string& name);

/// Reads a whole file (test helper; throws on failure).
std::string read_file(const std::filesystem::path& path);

}  // namespace reslens::test
