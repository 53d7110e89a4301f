// ringlink-load --handshakes: the handshake rate. Each of the --conns
// connections (slots) connects, completes the WebSocket upgrade (after the
// TLS handshake for wss://), closes with 1000 and starts again, for
// --duration; the report gives handshakes per second and their latency.
//
//   Options o;  // parse_options(... "--handshakes" ...)
//   Results r;
//   run_handshakes(o, progress, r, error);   // run_load() calls it for o.handshakes
//
// Results::handshake holds the time from each connect() call to its
// completed upgrade, for the cycles that completed inside the window.
// Failures are counted by reason in connect_errors (errno: refused, TLS
// -EPROTO / -EKEYREJECTED, the handshake timeout -ETIMEDOUT), in
// upgrade_failures (HTTP status) and, for a close other than 1000, in
// unexpected_closes; each counts as an error.
#pragma once

#include <string>

#include "tools/load/options.hpp"
#include "tools/load/results.hpp"
#include "tools/load/runner.hpp"

namespace ringlink::load {

bool run_handshakes(const Options& options, bool progress, Results& out, std::string& error,
                    const ProgressSink& sink = {});

}  // namespace ringlink::load
