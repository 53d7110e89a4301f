// ringlink-echo --processes N: N server processes on one port (SO_REUSEPORT),
// each with its own reactors and its own descriptor limit, run and stopped by
// this parent, which prints one merged metrics summary.
//
// The parent reserves the port first (bound, not listening, so the kernel
// hands it no connections), which makes --port 0 work: every child listens
// on the port the parent got. SIGTERM/SIGINT to the parent: SIGTERM to every
// child (each closes its links with 1001, drains and exits), wait, SIGKILL by
// PID what is left. A child that dies on its own is reported and the parent
// stops the rest and exits 1.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/metrics.hpp"

namespace echo_processes {

// What a child sends its parent, one frame each.
enum FrameType : std::uint32_t { frame_ready = 1, frame_failed = 2, frame_metrics = 3 };

struct Ready {  // after Server::start succeeded
  std::uint16_t port = 0, tls_port = 0;
  std::uint32_t reactors = 0;
  char backend[24] = {};
};
struct Failed {  // Server::start failed
  int error = 0;
};
struct Metrics {  // after Server::stop
  ringlink::MetricsSnapshot snapshot;
  std::uint64_t send_retries = 0;
};

struct Plan {
  unsigned processes = 2;
  std::string host;
  std::uint16_t port = 0;
  int tls_port = -1;             // -1: no separate TLS port
  bool plain = true, tls = false;
  std::string port_file;
  std::string mode;              // " (broadcast)" etc., for the listening line
};

// Child `index` serves on (port, tls_port) and reports on `fd`; returns the
// child's exit status. `signal` is the flag the signal handlers set.
using Serve = std::function<int(unsigned index, std::uint16_t port, int tls_port, int fd)>;

int run(const Plan& plan, std::atomic<int>& signal, const Serve& serve);

}  // namespace echo_processes
