// Writing an output file whole or not at all: through a temporary beside it that is renamed over the
// final name once every byte is written, so a failed write (a full disk, a file size limit, a folder
// that cannot be written) never leaves a partial file under the requested name.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string_view>

namespace reslens {

/// Writes `parts`, one after another, to `path` via `path` + ".tmp" renamed over it at the end. On
/// any failure the temporary is removed, `path` is left as it was, and IoError names `path` and the
/// system's reason: "out/lens.npy: cannot write the file (No space left on device)".
void write_file_atomically(const std::filesystem::path& path, std::initializer_list<std::string_view> parts);

}  // namespace reslens
