#include "common/test_paths.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace reslens::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("RESLENS_SHARED_DIR"); env != nullptr && *env != '\0') return env;
  if (const char* def = std::getenv("RESLENS_SHARED_DIR_DEFAULT"); def != nullptr && *def != '\0') {
    return def;
  }
  return "../shared";
}

std::filesystem::path shared_path(const std::string& relative) {
  const auto path = shared_dir() / relative;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "shared test data not found: " << path.string()
                  << " (set RESLENS_SHARED_DIR to the folder holding models/, goldens/, tokenizers/)";
    throw std::runtime_error("missing shared file " + path.string());
  }
  return path;
}

std::filesystem::path scratch_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
  auto dir = std::filesystem::temp_directory_path() / ("reslens-test-" + std::to_string(::getpid())) /
             (test + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace reslens::test
