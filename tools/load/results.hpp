// What one ringlink-load run measured: filled by run_load(), read by the
// text report, the JSON writer and the plot.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/load/histogram.hpp"
#include "tools/load/message.hpp"
#include "tools/load/options.hpp"

namespace ringlink::load {

struct ConnResult {
  std::uint32_t index = 0;
  bool opened = false;
  bool open_at_end = false;        // still open when the tool began closing
  std::uint16_t unexpected_close = 0;  // the close code when the peer (or an error) ended it early
  std::uint64_t sent = 0;          // data messages (push: only connection 0 sends)
  std::uint64_t received = 0;      // unique data messages
  std::uint64_t measured = 0;      // received inside the measured window
  std::uint64_t duplicates = 0;
  std::uint64_t reordered = 0;
  std::uint64_t lost = 0;          // skipped: a later one arrived, this one never
  std::uint64_t unanswered = 0;    // after the last one that arrived, none did
  std::uint64_t mismatches = 0;
  std::uint64_t pings = 0, pongs = 0;
};

struct ThreadResult {
  double cpu_percent = -1;         // over the measured window; -1 when unknown
  double busiest_second_percent = -1;
};

struct Results {
  double measured_s = 0;           // the window the rates are computed over
  double ramp_s = 0;               // from the first connect to all up (or failed)
  // --deflate: what the first link agreed ("permessage-deflate; ..."), or
  // "declined"; empty without --deflate.
  std::string deflate;

  // echo: round trip; rate: from the intended send time (coordinated omission
  // corrected); push: one way from the intended send time; idle: ping round trip.
  Histogram latency;
  Histogram latency_uncorrected;   // rate, push: from the actual send
  Histogram send_lag;              // rate, push: actual send - intended (the tool's own lag)
  // From the connect() call to the completed upgrade (TLS included for
  // wss://), every link; --handshakes: every cycle in the measured window.
  Histogram handshake;

  std::uint64_t msgs_sent = 0, msgs_received = 0;   // inside the measured window
  std::uint64_t bytes_sent = 0, bytes_received = 0;
  std::uint64_t total_sent = 0, total_received = 0; // whole run

  std::uint32_t conns_requested = 0;
  std::uint32_t conns_opened = 0;
  std::uint32_t conns_open_at_end = 0;
  std::map<int, std::uint64_t> connect_errors;      // errno -> count
  std::map<int, std::uint64_t> upgrade_failures;    // HTTP status -> count
  std::map<int, std::uint64_t> unexpected_closes;   // close code -> count
  std::uint64_t connects_unfinished = 0;            // neither opened nor failed in time

  std::array<std::uint64_t, static_cast<std::size_t>(MessageCheck::count_)> corrupt{};  // by check
  std::uint64_t wrong_connection = 0;   // an echo carrying another connection's header
  std::uint64_t wrong_opcode = 0;       // text for binary or the reverse
  std::uint64_t never_sent = 0;         // a sequence number this connection never used
  std::uint64_t bad_pongs = 0;          // idle: pong payload not ours
  std::uint64_t send_failures = 0;      // our own sends refused for lack of memory
  std::uint64_t foreign = 0;            // push --rate 0 / idle: messages without our header (not errors)
  std::uint64_t duplicates = 0, reordered = 0, lost = 0, unanswered = 0;
  std::uint64_t pings = 0, pongs_missing = 0;

  // Backpressure seen by our sends.
  std::uint64_t backpressured_sends = 0;  // send() answered backpressured
  std::uint64_t blocked_ms = 0;           // summed over connections: time waiting for on_drain
  std::uint64_t partial_writes = 0;       // writes the kernel took only in part (engine metric, whole run)

  std::vector<ConnResult> conns;
  std::vector<ThreadResult> threads;
  double process_cpu_percent = 0;   // user + system over the measured window, 100 = one core
  std::uint64_t fairness_min = 0, fairness_median = 0, fairness_max = 0;  // measured per connection

  bool self_saturated = false;
  std::vector<std::string> warnings;

  std::uint64_t mismatches() const noexcept {
    std::uint64_t n = wrong_connection + wrong_opcode + never_sent + bad_pongs;
    for (std::size_t i = 1; i < corrupt.size(); ++i) n += corrupt[i];
    return n;
  }
  // Every error the exit status counts.
  std::uint64_t errors() const noexcept {
    std::uint64_t n = mismatches() + send_failures + duplicates + reordered + lost + unanswered + pongs_missing +
                      connects_unfinished;
    for (const auto& [k, v] : connect_errors) n += v;
    for (const auto& [k, v] : upgrade_failures) n += v;
    for (const auto& [k, v] : unexpected_closes) n += v;
    return n;
  }
};

}  // namespace ringlink::load
