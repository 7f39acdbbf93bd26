// The projection cache's build refuses a disk without room before writing anything (a 7B model's
// cache is ~20 GB), naming the file and both sizes.
#include <gtest/gtest.h>

#include <string>

#include "analysis/projection_cache.h"
#include "reslens/error.h"

namespace reslens::analysis {
namespace {

TEST(ProjectionCacheBuild, RefusesADiskWithoutRoomNamingBothSizes) {
  const std::filesystem::path path = "/caches/reslens/proj-1.bin";
  EXPECT_NO_THROW(require_disk_room(path, 20'000'000'000, 20'000'000'000));
  try {
    require_disk_room(path, 20'400'000'000, 3'100'000'000);
    ADD_FAILURE() << "expected an IoError";
  } catch (const IoError& e) {
    const std::string m = e.what();
    for (const char* part : {"/caches/reslens/proj-1.bin", "20.4 GB", "3.1 GB", "/caches/reslens", "RESLENS_CACHE_DIR"}) {
      EXPECT_NE(m.find(part), std::string::npos) << m << " lacks " << part;
    }
  }
}

}  // namespace
}  // namespace reslens::analysis
