// NumPy .npy files (format version 1.0): the array format every Python user loads with np.load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace reslens {

/// Writes a C-order little-endian float32 array, whole or not at all (through a temporary renamed
/// over `path`). Throws IoError naming the path and the reason.
void write_npy(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape);

/// Writes a C-order little-endian float64 array.
void write_npy(const std::filesystem::path& path, const double* data, const std::vector<int64_t>& shape);

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> data;  ///< values widened to double, C order
};

/// Reads a C-order little-endian float32/float64/int32/int64 .npy file. Throws IoError/FormatError.
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace reslens
