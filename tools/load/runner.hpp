// Runs one load test on a client-only ringlink Server (one reactor per
// --threads) and fills Results.
//
//   ringlink::load::Results r;
//   std::string error;
//   if (!ringlink::load::run_load(options, /*progress=*/isatty(2), r, error)) { /* could not start */ }
//
// Timeline: connect (at --connect-rate), wait until every connection opened
// or failed, --warmup of load, --duration measured, stop sending, wait up to
// --grace for replies, close every link with 1000, stop the engine.
// Everything a handler callback touches belongs to its reactor thread (per
// thread and per connection state); the main thread reads only atomics
// while the run lasts and the rest after the reactors are joined.
#pragma once

#include <string>

#include "tools/load/options.hpp"
#include "tools/load/results.hpp"

namespace ringlink::load {

// False (with `error`) when the engine could not start; every failure after
// that is a counted error in `out`.
bool run_load(const Options& options, bool progress, Results& out, std::string& error);

}  // namespace ringlink::load
