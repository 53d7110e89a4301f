#include "tools/echo/processes.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "engine/socket.hpp"
#include "tools/common/process_group.hpp"
#include "tools/echo/metrics_report.hpp"

namespace echo_processes {

namespace {

using ringlink::tools::Frame;
using ringlink::tools::ProcessGroup;

constexpr auto ready_timeout = std::chrono::seconds(20);
// Each child's Server::stop takes up to 5 s; then a margin before SIGKILL.
constexpr auto stop_timeout = std::chrono::seconds(12);

// Binds (without listening) a SO_REUSEPORT socket on host:port, so port 0
// becomes a port of our own that the children then share.
int reserve_port(const std::string& host, std::uint16_t port, ringlink::Fd& out, std::uint16_t& bound) {
  ringlink::SocketAddress addr;
  if (int r = ringlink::resolve_address(host, port, addr); r < 0) return r;
  ringlink::Fd fd{::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd) return -errno;
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return -errno;
  if (::bind(fd.get(), addr.get(), addr.length) != 0) return -errno;
  bound = ringlink::local_port(fd.get());
  out = std::move(fd);
  return 0;
}

template <class T>
bool decode(const Frame& f, T& out) {
  if (f.payload.size() != sizeof(T)) return false;
  std::memcpy(static_cast<void*>(&out), f.payload.data(), sizeof(T));
  return true;
}

struct State {
  std::vector<bool> ready, reported;
  std::vector<Ready> readies;
  std::vector<Metrics> metrics;
  bool failed = false;
};

void take(const std::vector<Frame>& frames, State& s, const ProcessGroup& group) {
  for (const Frame& f : frames) {
    if (f.type == frame_ready && decode(f, s.readies[f.child])) {
      s.ready[f.child] = true;
    } else if (f.type == frame_metrics && decode(f, s.metrics[f.child])) {
      s.reported[f.child] = true;
    } else if (Failed why; f.type == frame_failed && decode(f, why)) {
      std::fprintf(stderr, "ringlink-echo: process %u (pid %d) cannot start: %s\n", f.child,
                   (int)group.child(f.child).pid, std::strerror(-why.error));
      s.failed = true;
    }
  }
}

bool report_deaths(const std::vector<unsigned>& reaped, const ProcessGroup& group) {
  for (unsigned i : reaped)
    std::fprintf(stderr, "ringlink-echo: process %u (pid %d) %s while serving\n", i, (int)group.child(i).pid,
                 ProcessGroup::describe(group.child(i).status).c_str());
  return !reaped.empty();
}

void write_port_file(const std::string& path, std::uint16_t port) {
  const std::string tmp = path + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%u\n", port);
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());
  }
}

}  // namespace

int run(const Plan& plan, std::atomic<int>& signal, const Serve& serve) {
  ringlink::Fd hold_plain, hold_tls;
  std::uint16_t port = plan.port, tls_port = 0;
  if (int r = reserve_port(plan.host, plan.port, hold_plain, port); r < 0) {
    std::fprintf(stderr, "ringlink-echo: cannot bind %s:%u: %s\n", plan.host.c_str(), plan.port, std::strerror(-r));
    return 1;
  }
  if (plan.tls_port >= 0) {
    if (int r = reserve_port(plan.host, static_cast<std::uint16_t>(plan.tls_port), hold_tls, tls_port); r < 0) {
      std::fprintf(stderr, "ringlink-echo: cannot bind %s:%d: %s\n", plan.host.c_str(), plan.tls_port,
                   std::strerror(-r));
      return 1;
    }
  }
  const int child_tls_port = plan.tls_port >= 0 ? tls_port : -1;

  ProcessGroup group;
  std::string error;
  const bool spawned = group.spawn(plan.processes, [&](unsigned i, int fd) {
    hold_plain.reset();  // the child's own listeners hold the port
    hold_tls.reset();
    signal.store(0);
    return serve(i, port, child_tls_port, fd);
  }, error);
  State s;
  s.ready.assign(plan.processes, false);
  s.reported.assign(plan.processes, false);
  s.readies.resize(plan.processes);
  s.metrics.resize(plan.processes);
  if (!spawned) std::fprintf(stderr, "ringlink-echo: %s\n", error.c_str());

  bool died = !spawned;
  std::vector<Frame> frames;
  const auto ready_deadline = std::chrono::steady_clock::now() + ready_timeout;
  bool all_ready = false;
  while (!died && !s.failed && !all_ready) {
    frames.clear();
    group.poll(100, frames);
    take(frames, s, group);
    died = report_deaths(group.reap(), group);
    all_ready = std::find(s.ready.begin(), s.ready.end(), false) == s.ready.end();
    if (std::chrono::steady_clock::now() >= ready_deadline && !all_ready) {
      std::fprintf(stderr, "ringlink-echo: not every process started within %lld s\n",
                   (long long)std::chrono::duration_cast<std::chrono::seconds>(ready_timeout).count());
      died = true;
    }
    const int sig = signal.load();
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  if (all_ready) {
    const Ready& r0 = s.readies[0];
    if (plan.plain) std::fprintf(stderr, "ringlink-echo: listening on ws://%s:%u/", plan.host.c_str(), r0.port);
    if (plan.tls)
      std::fprintf(stderr, "%sringlink-echo: listening on wss://%s:%u/", plan.plain ? "\n" : "", plan.host.c_str(),
                   plan.plain ? r0.tls_port : r0.port);
    std::fprintf(stderr, " with %u processes x %u reactors on %s%s\n", plan.processes, r0.reactors, r0.backend,
                 plan.mode.c_str());
    if (!plan.port_file.empty()) write_port_file(plan.port_file, r0.port);
  }
  hold_plain.reset();
  hold_tls.reset();

  while (all_ready && !died) {
    frames.clear();
    group.poll(100, frames);
    take(frames, s, group);
    // The signal before the deaths: a Ctrl-C reaches the children too, and
    // one that stopped for it has not died.
    const int sig = signal.exchange(0);
    if (sig == SIGINT || sig == SIGTERM) break;
    // SIGHUP reloads every process's certificate; SIGUSR1 makes each print its own summary.
    if (sig == SIGHUP || sig == SIGUSR1) group.signal_all(sig);
    died = report_deaths(group.reap(), group);
  }
  std::fprintf(stderr, "ringlink-echo: stopping %u processes\n", plan.processes);
  group.signal_all(SIGTERM);
  frames.clear();
  const bool clean = group.wait_all(stop_timeout, frames);
  take(frames, s, group);

  ringlink::MetricsSnapshot merged;
  std::uint64_t retries = 0;
  bool ok = clean && !died && all_ready && !s.failed;
  for (unsigned i = 0; i < plan.processes; ++i) {
    const auto& c = group.child(i);
    if (c.killed) std::fprintf(stderr, "ringlink-echo: process %u (pid %d) did not stop in time: killed\n", i, (int)c.pid);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) ok = false;
    if (!s.reported[i]) {
      ok = false;
      if (!c.killed && spawned)
        std::fprintf(stderr, "ringlink-echo: process %u (pid %d) %s without metrics\n", i, (int)c.pid,
                     ProcessGroup::describe(c.status).c_str());
      continue;
    }
    echo_report::merge_metrics(merged, s.metrics[i].snapshot);
    retries += s.metrics[i].send_retries;
  }
  echo_report::print_metrics(merged, retries, stderr);
  // Which process took which links: SO_REUSEPORT spreads them by address hash.
  std::fprintf(stderr, "  processes %u, accepted per process:", plan.processes);
  for (unsigned i = 0; i < plan.processes; ++i) {
    if (s.reported[i]) {
      std::fprintf(stderr, " %llu", (unsigned long long)s.metrics[i].snapshot.links_accepted);
    } else {
      std::fprintf(stderr, " ?");
    }
  }
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  return ok ? 0 : 1;
}

}  // namespace echo_processes
