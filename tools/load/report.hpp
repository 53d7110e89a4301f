// Presenting a ringlink-load run: the text report, --json, --plot.
//
//   print_report(stdout, options, results);
//   if (!write_json(path, options, results, error)) ...
//   if (!write_plot(png, results, message)) ... // message says why (e.g. gnuplot missing)
#pragma once

#include <cstdio>
#include <string>

#include "tools/load/options.hpp"
#include "tools/load/results.hpp"

namespace ringlink::load {

void print_report(std::FILE* out, const Options& o, const Results& r);
bool write_json(const std::string& path, const Options& o, const Results& r, std::string& error);
bool write_plot(const std::string& png_path, const Options& o, const Results& r, std::string& message);

}  // namespace ringlink::load
