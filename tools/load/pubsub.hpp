// ringlink-load --pubsub: S subscribers and P publishers over T topics,
// spread round robin over the nodes (URLs) given, against a fan-out server
// speaking ringlink-echo --pubsub's protocol (docs/pubsub.md).
//
//   PubsubResults r;
//   if (!run_pubsub(options, progress, r, error)) { /* could not start */ }
//   print_pubsub_report(stdout, options, r);
//
// Subscriber i connects to node i % N and takes topics (i*K + k) % T, k < K
// (--sub-topics K), with "?sub=" or SUB messages. Publisher j connects to
// node j % N (--pub-nodes K: subscribers on the first N-K URLs, publishers
// on the last K) and publishes round robin over every topic, at --rate in total:
//   PUB t<topic> D <publisher> <topic> <seq> <send time, ns>
// with seq counted per (publisher, topic) from 0. Before that, each
// publisher sends warm-ups ("W <publisher> <topic>") every 50 ms until every
// subscriber has had one on each of its streams (publisher x topic), or
// --confirm-timeout passes: then the subscriptions, local and through the
// broker, are known to be in place. After --duration the publishers stop and
// the deliveries still in flight get up to --grace; then each stream's loss
// is exactly sent - received.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "tools/load/histogram.hpp"
#include "tools/load/options.hpp"

namespace ringlink::load {

struct PubsubResults {
  std::uint32_t nodes = 0;
  std::uint32_t subscribers_opened = 0, publishers_opened = 0;
  std::uint64_t streams = 0;            // subscriber x publisher x topic, among the opened links
  std::uint64_t streams_confirmed = 0;  // had their warm-up in time
  double confirm_s = 0;                 // from all connected to confirmed (or the timeout)
  double publish_s = 0;                 // the publishing window
  double drain_s = 0;                   // waited after it for deliveries in flight

  std::uint64_t published = 0;          // publications the publishers' links queued
  std::uint64_t publish_backpressured = 0;  // skipped: the publisher's link was full
  std::uint64_t expected = 0;           // deliveries owed: per stream, what its publisher sent
  std::uint64_t delivered = 0;          // unique deliveries of those
  std::uint64_t lost = 0, duplicates = 0, reordered = 0;
  std::uint64_t malformed = 0;          // a data message we cannot read, or for a stream not ours
  std::uint64_t foreign = 0;            // anything else a subscriber got (not an error)
  Histogram latency;                    // publish (our send) to receive, ns

  std::map<int, std::uint64_t> connect_errors, upgrade_failures, unexpected_closes;
  std::uint64_t connects_unfinished = 0;
  std::vector<std::string> warnings;

  std::uint64_t errors() const noexcept {
    std::uint64_t n = lost + duplicates + reordered + malformed + connects_unfinished;
    for (const auto* m : {&connect_errors, &upgrade_failures, &unexpected_closes})
      for (const auto& [k, v] : *m) n += v;
    return n;
  }
};

bool run_pubsub(const Options& o, bool progress, PubsubResults& out, std::string& error);
void print_pubsub_report(std::FILE* out, const Options& o, const PubsubResults& r);
bool write_pubsub_json(const std::string& path, const Options& o, const PubsubResults& r, std::string& error);
// What --pubsub asks of the rest of the command line; false with `error`.
bool check_pubsub_options(const Options& o, std::string& error);

}  // namespace ringlink::load
