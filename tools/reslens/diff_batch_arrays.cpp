// The per-prompt arrays of diff --batch (diff_batch_arrays.h).
#include "diff_batch_arrays.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "reslens/error.h"

namespace reslens::cli {

namespace fs = std::filesystem;

namespace {

template <class T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads a record written by diff_arrays_record; a short one is a bug of this program, not the user's.
struct RecordReader {
  const std::string& s;
  size_t at = 0;
  template <class T>
  T get() {
    T v{};
    take(&v, sizeof v);
    return v;
  }
  void take(void* out, size_t n) {
    if (at + n > s.size()) throw InternalError("diff --batch: a prompt's array record is shorter than its header says");
    std::memcpy(out, s.data() + at, n);
    at += n;
  }
};

const LevelDiff* find_level(const ModelDiff& d, const char* name) {
  for (const LevelDiff& lv : d.levels) {
    if (lv.name == name) return &lv;
  }
  return nullptr;
}

}  // namespace

std::vector<int64_t> diff_group_grid(int g, std::vector<int64_t> level_shape) {
  if (g == 3 && !level_shape.empty()) level_shape.pop_back();  // (layer, head, dim): the source position summed
  return level_shape;
}

std::vector<double> sum_last_axis(const std::vector<double>& v, int64_t n) {
  std::vector<double> out(v.size() / static_cast<size_t>(n), 0.0);
  for (size_t i = 0; i < v.size(); ++i) out[i / static_cast<size_t>(n)] += v[i];
  return out;
}

fs::path diff_group_file(const fs::path& arrays_dir, int g, char side) {
  return arrays_dir / (std::string(kDiffGroups[g]) + "_" + side + ".npy");
}

// Layout (native byte order, the machine that reads it is rank 0 of the same job):
//   int64 line, uint32 groups, then per group: uint32 g, uint32 ndim, int64 grid[ndim],
//   float64 a[prod(grid)], float64 b[prod(grid)].
std::string diff_arrays_record(int64_t line, const ModelDiff& d) {
  std::string s;
  put<int64_t>(s, line);
  std::vector<int> present;
  for (int g = 0; g < 4; ++g) {
    if (find_level(d, kDiffGroupLevels[g]) != nullptr) present.push_back(g);
  }
  put<uint32_t>(s, static_cast<uint32_t>(present.size()));
  for (int g : present) {
    const LevelDiff& lv = *find_level(d, kDiffGroupLevels[g]);
    const std::vector<int64_t> grid = diff_group_grid(g, lv.a.shape);
    put<uint32_t>(s, static_cast<uint32_t>(g));
    put<uint32_t>(s, static_cast<uint32_t>(grid.size()));
    for (int64_t n : grid) put<int64_t>(s, n);
    for (const ScoreArray* side : {&lv.a, &lv.b}) {
      // The summary's attention neuron is summed over its source positions, in this order, once, here.
      const std::vector<double> v = g == 3 ? sum_last_axis(side->values, side->shape.back()) : side->values;
      s.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
    }
  }
  return s;
}

void DiffBatchArrays::open_groups(const std::vector<std::vector<int64_t>>& grids) {
  grids_ = grids;
  for (int g = 0; g < 4; ++g) {
    a_[g].reset();
    b_[g].reset();
    if (grids_[static_cast<size_t>(g)].empty()) continue;
    a_[g] = std::make_unique<GrowingNpy>(diff_group_file(dir_, g, 'a'), "<f8", grids_[static_cast<size_t>(g)]);
    b_[g] = std::make_unique<GrowingNpy>(diff_group_file(dir_, g, 'b'), "<f8", grids_[static_cast<size_t>(g)]);
  }
  known_ = true;
}

void DiffBatchArrays::begin(const fs::path& out, const std::vector<std::string>& kept) {
  dir_ = out / "arrays";
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw IoError(dir_.string() + ": cannot create (" + ec.message() + ")");
  lines_ = std::make_unique<GrowingNpy>(dir_ / "lines.npy", "<i8", std::vector<int64_t>{});
  // The prompts the kept lines compared, and the grids their documents name.
  std::vector<int64_t> kept_lines;
  std::vector<std::vector<int64_t>> grids(4);
  for (const std::string& text : kept) {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.contains("error")) continue;
    if (kept_lines.empty()) {
      for (const auto& lv : j.at("levels")) {
        for (int g = 0; g < 4; ++g) {
          if (lv.at("name") == kDiffGroupLevels[g]) grids[static_cast<size_t>(g)] = diff_group_grid(g, lv.at("shape").get<std::vector<int64_t>>());
        }
      }
    }
    kept_lines.push_back(j.at("batch").at("line").get<int64_t>());
  }
  const auto rows = static_cast<int64_t>(kept_lines.size());
  known_ = false;
  if (rows == 0) {  // a fresh start: no array of an earlier run is left behind
    for (int g = 0; g < 4; ++g) {
      for (char side : {'a', 'b'}) fs::remove(diff_group_file(dir_, g, side), ec);
      a_[g].reset();
      b_[g].reset();
    }
    lines_->create();
    return;
  }
  open_groups(grids);
  for (int g = 0; g < 4; ++g) {
    if (!a_[g]) {
      for (char side : {'a', 'b'}) fs::remove(diff_group_file(dir_, g, side), ec);
      continue;
    }
    a_[g]->keep(rows);
    b_[g]->keep(rows);
  }
  lines_->keep(rows);
  for (int64_t i = 0; i < rows; ++i) {
    int64_t line = 0;
    lines_->read(i, &line);
    if (line != kept_lines[static_cast<size_t>(i)]) {
      throw FormatError(lines_->path().string() + ": row " + std::to_string(i) + " is input line " + std::to_string(line) +
                        ", the kept results say line " + std::to_string(kept_lines[static_cast<size_t>(i)]) +
                        ": does not match the kept lines of the results (pass --force to start over)");
    }
  }
}

void DiffBatchArrays::append(const std::string&, const std::string& payload) {
  if (payload.empty()) return;  // an error line: no prompt compared, no row
  RecordReader r{payload};
  const auto line = r.get<int64_t>();
  const auto n = r.get<uint32_t>();
  std::vector<std::vector<int64_t>> grids(4);
  std::vector<std::vector<double>> a(4), b(4);
  for (uint32_t k = 0; k < n; ++k) {
    const auto g = r.get<uint32_t>();
    const auto ndim = r.get<uint32_t>();
    if (g >= 4 || ndim > 8) throw InternalError("diff --batch: a malformed array record");
    auto& grid = grids[g];
    size_t size = 1;
    for (uint32_t d = 0; d < ndim; ++d) {
      grid.push_back(r.get<int64_t>());
      size *= static_cast<size_t>(grid.back());
    }
    a[g].resize(size);
    b[g].resize(size);
    r.take(a[g].data(), size * sizeof(double));
    r.take(b[g].data(), size * sizeof(double));
  }
  if (!known_) {
    open_groups(grids);
    for (int g = 0; g < 4; ++g) {
      if (a_[g]) {
        a_[g]->create();
        b_[g]->create();
      }
    }
  } else if (grids != grids_) {
    throw FormatError("diff --batch: input line " + std::to_string(line) +
                      ": its levels have other shapes than the earlier prompts' (" + dir_.string() + ")");
  }
  // The arrays first, the line number last: a cut run leaves at worst rows that resuming cuts back.
  for (int g = 0; g < 4; ++g) {
    if (!a_[g]) continue;
    a_[g]->append(a[static_cast<size_t>(g)].data());
    b_[g]->append(b[static_cast<size_t>(g)].data());
  }
  lines_->append(&line);
}

}  // namespace reslens::cli
