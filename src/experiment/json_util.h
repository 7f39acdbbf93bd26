// JSON helpers shared by the experiment's writers and readers. Internal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reslens/explain.h"

namespace reslens::experiment_impl {

/// A number, or null when it is not finite (JSON has no NaN or infinity).
nlohmann::json num(double v);
/// A number written by num() (null reads as NaN).
double get_num(const nlohmann::json& j, const char* key);
nlohmann::json numbers(const std::vector<double>& v);
std::vector<double> parse_numbers(const nlohmann::json& a);
nlohmann::json stats_json(const TargetStats& s);
TargetStats parse_stats(const nlohmann::json& j);
/// One line; invalid UTF-8 (a byte-level token's text) is replaced rather than thrown on.
std::string dump_line(const nlohmann::json& j);

}  // namespace reslens::experiment_impl
