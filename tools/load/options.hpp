// Command line of ringlink-load.
//
//   ringlink::load::Options o;
//   std::string error;
//   switch (ringlink::load::parse_options(args, o, error)) {
//     case ParseOutcome::run: ...; case ParseOutcome::help: ...; case ParseOutcome::error: ...
//   }
//
// Parsing is strict: an unknown flag, a malformed number, a value out of range
// or a flag that does nothing in the chosen mode is an error with a message
// naming it, never silently ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/socket.hpp"
#include "tools/load/message.hpp"
#include "tools/load/pubsub_options.hpp"

namespace ringlink::load {

enum class Mode : std::uint8_t { echo, rate, push, idle };
const char* to_string(Mode m) noexcept;

struct Target {
  std::string host;          // as written, without brackets
  std::uint16_t port = 80;
  std::string path = "/";    // with the query, if any
  std::string host_header;   // host[:port] as written in the URL
  SocketAddress address;
  bool tls = false;          // wss://
};

struct Options {
  Target target;
  std::string url;
  Mode mode = Mode::echo;
  std::uint32_t conns = 1;
  double connect_rate = 0;            // connections per second; 0: all at once
  unsigned threads = 1;               // reactors
  std::vector<SocketAddress> sources; // round robin; empty: the kernel picks
  unsigned processes = 1;             // > 1: tools/load/processes.hpp
  std::uint32_t inflight = 1;         // echo
  double rate = 0;                    // rate, push: messages per second in total
  std::uint32_t ping_interval_ms = 1000;  // idle
  std::uint32_t size_min = 64, size_max = 64;
  bool text = false;
  FillerKind payload = FillerKind::random;  // what follows each message's header
  bool deflate = false;               // offer permessage-deflate
  double duration_s = 10;
  double warmup_s = 0;
  double grace_s = 2;                 // wait for replies after the end
  std::uint64_t max_errors = 0;
  bool progress = false;              // force the live line when stderr is not a terminal
  std::string json_path;
  std::string plot_path;
  std::string ca_file;                // wss://: trust this PEM bundle (default: the system store)
  bool insecure = false;              // wss://: do not verify the server's certificate
  bool handshakes = false;            // each connection connects, upgrades, closes, again (handshake_runner.hpp)
  PubsubOptions pubsub;               // --pubsub (tools/load/pubsub.hpp)
};

enum class ParseOutcome : std::uint8_t { run, help, error };

// args excludes the program name.
ParseOutcome parse_options(const std::vector<std::string_view>& args, Options& out, std::string& error);
const char* usage_text() noexcept;

// Pieces, exposed for the tests.
bool parse_url(std::string_view url, Target& out, std::string& error);
// "10", "1.5s", "250ms", "2m" -> seconds.
bool parse_duration(std::string_view text, double& seconds);
// "64" or "64-1024".
bool parse_size_range(std::string_view text, std::uint32_t& min, std::uint32_t& max);
// "127.0.0.1-127.0.0.40", "10.0.0.1", "::1".
bool parse_source_ips(std::string_view text, std::vector<SocketAddress>& out, std::string& error);

}  // namespace ringlink::load
