// ringlink-load --processes N: N forked load processes, each past the
// descriptor limit of one process, run as one test.
//
// Process p gets every N-th share of the links (conns / N, the remainder to
// the first ones), the same share of --connect-rate and of --rate, and binds
// its links round robin over the source addresses (--source-ips; against a
// 127.x target parse_options makes it 127.0.0.1-127.0.0.8, so each address
// brings its own range of ephemeral ports to the one server address). Children send a
// progress sample a second and their Results at the end through a pipe; the
// parent prints the whole's live line and merges the Results exactly
// (tools/load/results_wire.hpp). A child that dies or overruns is an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/load/options.hpp"
#include "tools/load/results.hpp"

namespace ringlink::load {

// The options of child `index` of `processes`.
Options child_options(const Options& o, unsigned index, unsigned processes);

// As run_load, across o.processes processes.
bool run_load_processes(const Options& o, bool progress, Results& out, std::string& error);

}  // namespace ringlink::load
