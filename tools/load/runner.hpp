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

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tools/load/options.hpp"
#include "tools/load/results.hpp"

namespace ringlink::load {

// What the live line shows, cumulative, once a second.
struct ProgressSample {
  double elapsed_s = 0;
  std::uint64_t up = 0, msgs = 0, errors = 0;  // links open, data messages in, errors so far
  std::uint32_t phase = 0;                     // 0 connecting, 1 running, 2 finishing
  std::vector<std::uint64_t> live;             // coarse latency buckets (LiveHistogram)
};
// Given, the samples go there instead of to stderr (a child of --processes).
using ProgressSink = std::function<void(const ProgressSample&)>;

// False (with `error`) when the engine could not start; every failure after
// that is a counted error in `out`.
bool run_load(const Options& options, bool progress, Results& out, std::string& error,
              const ProgressSink& sink = {});

// The live line: `live_diff` is the last second's coarse latency buckets.
void print_progress(std::FILE* out, double elapsed_s, std::uint64_t up, std::uint32_t conns, std::uint64_t msgs_per_s,
                    const std::vector<std::uint64_t>& live_diff, std::uint64_t errors, std::uint32_t phase);

}  // namespace ringlink::load
