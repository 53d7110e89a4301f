// The handshake figures of a ringlink-load report: connects per second and
// the connect()-to-upgrade latency (TLS included for wss://), in every run;
// for --handshakes, the whole text report.
//
//   print_handshake_line(stdout, results);       // inside print_report
//   write_handshake_json(j, options, results);   // "handshake":{...} inside write_json
#pragma once

#include <cstdio>

#include "tools/load/json_writer.hpp"
#include "tools/load/options.hpp"
#include "tools/load/results.hpp"

namespace ringlink::load {

// Handshakes per second: --handshakes, the cycles completed in the measured
// window over its length; otherwise the links opened over the ramp.
double handshakes_per_s(const Options& o, const Results& r) noexcept;

void print_handshake_line(std::FILE* out, const Options& o, const Results& r);
void print_handshake_report(std::FILE* out, const Options& o, const Results& r);
void write_handshake_json(JsonWriter& j, const Options& o, const Results& r);

}  // namespace ringlink::load
