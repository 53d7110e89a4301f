// Presenting a ringlink-load run: the text report, --json, --plot.
//
//   print_report(stdout, options, results);
//   if (!write_json(path, options, results, error)) ...
//   if (!write_plot(png, results, message)) ... // message says why (e.g. gnuplot missing)
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "tools/load/options.hpp"
#include "tools/load/results.hpp"

namespace ringlink::load {

void print_report(std::FILE* out, const Options& o, const Results& r);
// "    title: k xN ..." for counts by errno (named when errno_names), status or close code.
void print_map(std::FILE* out, const char* title, const std::map<int, std::uint64_t>& m, bool errno_names);
bool write_json(const std::string& path, const Options& o, const Results& r, std::string& error);
bool write_plot(const std::string& png_path, const Options& o, const Results& r, std::string& message);

}  // namespace ringlink::load
