// ringlink-echo: the reference server. Echoes every message (or, with
// --broadcast, sends every message to every link), prints a metrics summary
// on SIGUSR1 and at exit, stops gracefully on SIGINT/SIGTERM.
//
// --workers N moves the echo off the reactor: messages go through the
// engine's bounded hand-off rings to N worker threads, which reply with
// Server::send. --business-delay-us U --slow-for S make that business side
// slow (U us per message for the first S seconds after a worker's first
// message): the slow-consumer benchmark. --slow-path P slows only the links
// upgraded on path P, so other links show what the slow ones cost them.
//
// --pubsub makes it a fan-out server (tools/echo/pubsub.hpp: ?sub=, SUB,
// UNSUB, PUB); --broker URL joins it to the other nodes on that broker.
//
// --processes N forks N copies of this server on one port
// (tools/echo/processes.hpp): more links than one process has descriptors for.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/server.hpp"
#include "tools/common/process_group.hpp"
#include "tools/echo/metrics_report.hpp"
#include "tools/echo/processes.hpp"
#include "tools/echo/pubsub.hpp"
#include "tools/echo/shared_metrics.hpp"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9001;
  unsigned reactors = 0;
  std::size_t max_message = ringlink::config::max_message_size;
  bool broadcast = false;
  std::uint32_t idle_timeout_ms = 0;
  std::uint32_t ping_interval_ms = ringlink::ServerConfig{}.ping_interval_ms;  // 0: no keepalive
  std::string port_file;
  unsigned workers = 0;                 // 0: echo inline on the reactor thread
  std::uint32_t business_delay_us = 0;  // worker time per message while slow
  double slow_for_s = 0;                // 0 with a delay: slow for the whole run
  std::string slow_path;                // empty: every link is slow
  ringlink::InboundPolicy inbound_policy = ringlink::InboundPolicy::pause;
  std::string tls_cert, tls_key;        // set: wss://
  int tls_port = -1;                    // -1: TLS (when set) on --port only
  bool pubsub = false;
  std::string broker;                   // redis://host:port or nats://host:port
  std::string broker_prefix = "ringlink";
  bool metrics_endpoint = false;
  ringlink::DeflateConfig deflate;      // --deflate turns it on
  unsigned processes = 1;               // > 1: tools/echo/processes.hpp
  unsigned process_index = 0;           // which child of --processes this is
};

void usage() {
  std::fprintf(stderr,
               "usage: ringlink-echo [--host ADDR] [--port N] [--reactors N] [--max-message BYTES]\n"
               "                     [--broadcast] [--idle-timeout MS] [--ping-interval MS]\n"
               "                     [--port-file FILE] [--workers N] [--business-delay-us U]\n"
               "                     [--slow-for S] [--slow-path PATH] [--inbound-policy pause|drop|close]\n"
               "                     [--pubsub] [--broker URL] [--broker-prefix P] [--metrics]\n"
               "                     [--deflate] [--deflate-threshold BYTES] [--deflate-budget BYTES]\n"
               "                     [--deflate-no-takeover] [--metrics-endpoint] [--processes N]\n"
               "  --port 0 picks a free port; --port-file writes the port chosen.\n"
               "  --workers N: echo from N worker threads fed by the engine's hand-off rings.\n"
               "  --business-delay-us U: a worker spends U us per message (implies --workers 1)\n"
               "    during the first S seconds (--slow-for; default: always) after its first\n"
               "    message; --slow-path limits that to links upgraded on PATH.\n"
               "  --inbound-policy: what a full hand-off ring does (default pause: lossless).\n"
               "  --tls-cert FILE --tls-key FILE: serve wss:// on --port; with --tls-port N,\n"
               "    ws:// stays on --port and wss:// is on N. SIGHUP reloads the two files.\n"
               "  --pubsub: a fan-out server: /?sub=t1,t2, text SUB <t> / UNSUB <t>, PUB <t> <payload>;\n"
               "    anything else is echoed. --broker redis://H:P or nats://H:P: across nodes\n"
               "    (channel <prefix>:<topic>, prefix 'ringlink'). --metrics serves GET /metrics.\n"
               "  --deflate: answer permessage-deflate offers (when built with zlib); messages of\n"
               "    at least --deflate-threshold bytes (default 64) go out compressed; past\n"
               "    --deflate-budget bytes of zlib contexts (default 64 MiB) links share contexts;\n"
               "    --deflate-no-takeover asks every link for no context takeover both ways.\n"
               "  --processes N: N server processes share the port (SO_REUSEPORT), each with its\n"
               "    reactors and its own descriptor limit; the summary at exit merges them and\n"
               "    gives each process's accepted links. A process that dies fails the run.\n"
               "    With --metrics-endpoint, whichever process answers GET /metrics gives every\n"
               "    process's reactors (reactor=\"i\" numbered across them; sum over it).\n"
               "  SIGUSR1 prints metrics (per process with --processes); SIGINT/SIGTERM stop gracefully.\n");
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--broadcast") {
      o.broadcast = true;
    } else if (a == "--pubsub") {
      o.pubsub = true;
    } else if (a == "--metrics") {
      o.metrics_endpoint = true;
    } else if (a == "--broker" && (v = value())) {
      o.broker = v;
    } else if (a == "--broker-prefix" && (v = value())) {
      o.broker_prefix = v;
    } else if (a == "--deflate") {
      o.deflate.enabled = true;
    } else if (a == "--metrics-endpoint") {
      o.metrics_endpoint = true;
    } else if (a == "--deflate-no-takeover") {
      o.deflate.server_no_context_takeover = o.deflate.client_no_context_takeover = true;
    } else if (a == "--deflate-threshold" && (v = value())) {
      o.deflate.threshold = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (a == "--deflate-budget" && (v = value())) {
      o.deflate.memory_budget = std::strtoull(v, nullptr, 10);
    } else if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if ((a == "--host") && (v = value())) {
      o.host = v;
    } else if (a == "--port" && (v = value())) {
      o.port = static_cast<std::uint16_t>(std::strtoul(v, nullptr, 10));
    } else if (a == "--reactors" && (v = value())) {
      o.reactors = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    } else if (a == "--max-message" && (v = value())) {
      o.max_message = std::strtoull(v, nullptr, 10);
    } else if (a == "--idle-timeout" && (v = value())) {
      o.idle_timeout_ms = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (a == "--ping-interval" && (v = value())) {
      o.ping_interval_ms = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (a == "--tls-cert" && (v = value())) {
      o.tls_cert = v;
    } else if (a == "--tls-key" && (v = value())) {
      o.tls_key = v;
    } else if (a == "--tls-port" && (v = value())) {
      o.tls_port = static_cast<int>(std::strtoul(v, nullptr, 10));
    } else if (a == "--port-file" && (v = value())) {
      o.port_file = v;
    } else if (a == "--processes" && (v = value())) {
      o.processes = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
      if (o.processes == 0 || o.processes > 256) {
        std::fprintf(stderr, "ringlink-echo: --processes must be 1 to 256\n");
        return false;
      }
    } else if (a == "--workers" && (v = value())) {
      o.workers = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    } else if (a == "--business-delay-us" && (v = value())) {
      o.business_delay_us = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (a == "--slow-for" && (v = value())) {
      o.slow_for_s = std::strtod(v, nullptr);
    } else if (a == "--slow-path" && (v = value())) {
      o.slow_path = v;
    } else if (a == "--inbound-policy" && (v = value())) {
      const std::string_view p = v;
      if (p == "pause") {
        o.inbound_policy = ringlink::InboundPolicy::pause;
      } else if (p == "drop") {
        o.inbound_policy = ringlink::InboundPolicy::drop_newest;
      } else if (p == "close") {
        o.inbound_policy = ringlink::InboundPolicy::close;
      } else {
        std::fprintf(stderr, "ringlink-echo: bad --inbound-policy '%s'\n", v);
        return false;
      }
    } else {
      std::fprintf(stderr, "ringlink-echo: bad argument '%s'\n", argv[i]);
      usage();
      return false;
    }
  }
  if (o.business_delay_us > 0 && o.workers == 0) o.workers = 1;
  return true;
}

// Echoes without losing anything: when send() pushes back, the message is
// kept (with any that follow it) and reading pauses until on_drain; TCP then
// pushes back on the peer. Pausing stops the reactor before the next message,
// so at most a message or two wait here per link.
//
// With workers, the hand-off ring's policy (pause by default) is what keeps
// nothing from being lost while the business side is slow.
class EchoHandler : public ringlink::Handler {
 public:
  EchoHandler(const Options& o)
      : broadcast_(o.broadcast),
        pubsub_(o.pubsub),
        max_message_(o.max_message),
        delay_(o.business_delay_us),
        slow_for_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(o.slow_for_s))),
        slow_path_(o.slow_path),
        workers_(o.workers == 0 ? 1 : o.workers) {}
  void set_server(ringlink::Server* s) { server_ = s; }
  // Before Server::stop: a worker stops retrying sends the reactors will
  // never take, so stop can join it.
  void stopping() { stopping_.store(true); }
  std::uint64_t send_retries() const { return send_retries_.load(std::memory_order_relaxed); }
  // --processes with --metrics-endpoint: /metrics answered from the table
  // every process publishes to (tools/echo/shared_metrics.hpp).
  void set_shared_metrics(echo_metrics::SharedMetrics* shared, unsigned index) {
    shared_metrics_ = shared;
    process_index_ = index;
  }
  ringlink::HttpResponse on_http(std::string_view path) override {
    if (shared_metrics_ == nullptr || path != "/metrics" || server_ == nullptr) return Handler::on_http(path);
    // The engine copies the body right after the return: a per-thread buffer suffices.
    static thread_local std::string body;
    body.clear();
    shared_metrics_->publish(process_index_, *server_);
    shared_metrics_->write(body);
    return {200, "text/plain; version=0.0.4", body};
  }

  ringlink::UpgradeDecision on_upgrade(const ringlink::UpgradeRequestParser& req) override {
    upgrading_slow_ = slow_path_.empty() || req.path() == slow_path_;
    if (pubsub_) {
      upgrading_topics_.clear();
      if (!echo_pubsub::topics_from_target(req.target(), upgrading_topics_))
        return ringlink::UpgradeDecision::refuse(400, "bad topic in ?sub=\n");
    }
    return ringlink::UpgradeDecision::accept();
  }

  void on_open(ringlink::Link& link) override {
    if (pubsub_) {
      std::string_view reason;
      for (const std::string& t : upgrading_topics_) {
        if (!echo_pubsub::subscribe(*server_, link.id(), t, reason)) {
          link.close(ringlink::close_code::policy_violation, reason);
          return;
        }
      }
      upgrading_topics_.clear();
    }
    if (slow_path_.empty() || !upgrading_slow_) return;
    std::lock_guard<std::mutex> lock(slow_mutex_);
    slow_links_.insert(link.id());
  }

  void on_message(ringlink::Link& link, std::span<std::byte> payload, ringlink::Opcode op) override {
    if (payload.size() > max_message_) {
      link.close(ringlink::close_code::message_too_big, "message too big");
      return;
    }
    if (broadcast_) {
      server_->broadcast_all(payload, op);
      return;
    }
    if (pubsub_) {
      std::string_view reason;
      switch (echo_pubsub::handle(*server_, link, payload, op, reason)) {
        case echo_pubsub::Verdict::handled:
          return;
        case echo_pubsub::Verdict::refused:
          link.close(ringlink::close_code::policy_violation, reason);
          return;
        case echo_pubsub::Verdict::not_command:
          break;
      }
    }
    auto* waiting = static_cast<Waiting*>(link.user_data());
    if (waiting == nullptr && link.send(payload, op) != ringlink::SendResult::backpressured) return;
    if (waiting == nullptr) {
      waiting = new Waiting;
      link.user_data() = waiting;
      link.pause_reading();
    }
    waiting->emplace_back(op, std::vector<std::byte>(payload.begin(), payload.end()));
  }

  void on_worker_message(ringlink::LinkId id, std::span<std::byte> payload, ringlink::Opcode op,
                         unsigned worker) override {
    if (payload.size() > max_message_) {
      (void)server_->close(id, ringlink::close_code::message_too_big);
      return;
    }
    if (delay_.count() > 0) business_delay(id, worker);
    if (broadcast_) {
      server_->broadcast_all(payload, op);
      return;
    }
    // not_posted: the owning reactor's command ring is full. It empties on the
    // reactor's next turn, so wait a little and retry rather than lose it.
    while (server_->send(id, payload, op) == ringlink::SendResult::not_posted && !stopping_.load()) {
      send_retries_.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void on_drain(ringlink::Link& link) override {
    auto* waiting = static_cast<Waiting*>(link.user_data());
    if (waiting == nullptr) return;
    while (!waiting->empty()) {
      auto& [op, bytes] = waiting->front();
      if (link.send(bytes, op) == ringlink::SendResult::backpressured) return;  // on_drain again later
      waiting->pop_front();
    }
    delete waiting;
    link.user_data() = nullptr;
    link.resume_reading();
  }

  void on_close(ringlink::Link& link, std::uint16_t, std::string_view) override {
    delete static_cast<Waiting*>(link.user_data());
    link.user_data() = nullptr;
    if (slow_path_.empty()) return;
    std::lock_guard<std::mutex> lock(slow_mutex_);
    slow_links_.erase(link.id());
  }

 private:
  using Waiting = std::deque<std::pair<ringlink::Opcode, std::vector<std::byte>>>;
  using Clock = std::chrono::steady_clock;

  // Each worker's own pacing state; only that worker touches it.
  struct alignas(64) Pace {
    bool started = false;
    Clock::time_point first{};
    Clock::time_point next{};
  };

  // A pace of one message per delay_ (sleep_until a running deadline, not
  // sleep_for per message), so timer slack does not make the business side
  // slower than asked.
  void business_delay(ringlink::LinkId id, unsigned worker) {
    if (!slow_path_.empty()) {
      std::lock_guard<std::mutex> lock(slow_mutex_);
      if (!slow_links_.contains(id)) return;
    }
    Pace& p = pace_[worker];
    const Clock::time_point now = Clock::now();
    if (!p.started) {
      p.started = true;
      p.first = now;
      p.next = now;
    }
    if (slow_for_.count() > 0 && now - p.first >= slow_for_) return;
    if (p.next < now) p.next = now;
    p.next += delay_;
    std::this_thread::sleep_until(p.next);
  }

  bool broadcast_;
  bool pubsub_;
  std::size_t max_message_;
  std::chrono::microseconds delay_;
  Clock::duration slow_for_;
  std::string slow_path_;
  unsigned workers_;
  std::vector<Pace> pace_ = std::vector<Pace>(workers_);
  std::mutex slow_mutex_;
  std::unordered_set<ringlink::LinkId> slow_links_;
  static thread_local bool upgrading_slow_;
  static thread_local std::vector<std::string> upgrading_topics_;   // ?sub= of the link being opened
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> send_retries_{0};
  ringlink::Server* server_ = nullptr;
  echo_metrics::SharedMetrics* shared_metrics_ = nullptr;
  unsigned process_index_ = 0;
};

thread_local bool EchoHandler::upgrading_slow_ = false;
thread_local std::vector<std::string> EchoHandler::upgrading_topics_;

std::atomic<int> g_signal{0};
// Made before the fork of --processes, so every child maps the same table.
echo_metrics::SharedMetrics g_shared_metrics;
void on_signal(int sig) { g_signal.store(sig); }

void print_metrics(const ringlink::Server& s, const EchoHandler& h, FILE* out) {
  echo_report::print_metrics(s.snapshot(), h.send_retries(), out);
}

// One server process. report_fd >= 0: a child of --processes, which tells
// its parent through that pipe instead of printing (tools/echo/processes.hpp).
int serve(const Options& o, int report_fd) {
  const bool child = report_fd >= 0;
  ringlink::ServerConfig cfg;
  cfg.reuse_port = child;
  cfg.host = o.host;
  cfg.port = o.port;
  cfg.reactors = o.reactors;
  cfg.idle_timeout_ms = o.idle_timeout_ms;
  cfg.ping_interval_ms = o.ping_interval_ms;
  if (!o.tls_cert.empty()) {
    cfg.tls.cert_file = o.tls_cert;
    cfg.tls.key_file = o.tls_key.empty() ? o.tls_cert : o.tls_key;
    if (o.tls_port >= 0) {
      cfg.tls.port = static_cast<std::uint16_t>(o.tls_port);
    } else {
      cfg.tls.port = o.port;
      cfg.listen_plain = false;
    }
  }
  cfg.broker = o.broker;
  cfg.broker_prefix = o.broker_prefix;
  // A child with the shared table answers /metrics itself, for every process.
  const bool shared_metrics = child && o.metrics_endpoint && g_shared_metrics.active();
  cfg.metrics_endpoint = o.metrics_endpoint && !shared_metrics;
  cfg.deflate = o.deflate;
  if (o.deflate.enabled && !ringlink::config::deflate) {
    std::fprintf(stderr, "ringlink-echo: --deflate ignored: built without zlib (meson -Ddeflate)\n");
  }
  if (o.workers > 0) {
    cfg.inbound_mode = ringlink::InboundMode::workers;
    cfg.workers = o.workers;
    cfg.inbound_policy = o.inbound_policy;
  }
  EchoHandler handler(o);
  ringlink::Server server(cfg, handler);
  handler.set_server(&server);
  if (shared_metrics) handler.set_shared_metrics(&g_shared_metrics, o.process_index);

  if (int err = server.start(); err < 0) {
    if (child) (void)ringlink::tools::write_pod(report_fd, echo_processes::frame_failed, echo_processes::Failed{err});
    std::fprintf(stderr, "ringlink-echo: cannot start on %s:%u%s%s: %s\n", o.host.c_str(), o.port,
                 o.broker.empty() ? "" : " with broker ", o.broker.c_str(), std::strerror(-err));
    return 1;
  }
  if (child) {
    echo_processes::Ready ready;
    ready.port = server.port();
    ready.tls_port = server.tls_port();
    ready.reactors = static_cast<std::uint32_t>(server.reactor_count());
    std::snprintf(ready.backend, sizeof ready.backend, "%s", server.reactor(0).backend_name());
    if (!ringlink::tools::write_pod(report_fd, echo_processes::frame_ready, ready)) return 1;
  }
  if (!child && cfg.listen_plain) std::fprintf(stderr, "ringlink-echo: listening on ws://%s:%u/", o.host.c_str(), server.port());
  if (!child && server.tls_port() != 0)
    std::fprintf(stderr, "%sringlink-echo: listening on wss://%s:%u/", cfg.listen_plain ? "\n" : "", o.host.c_str(),
                 server.tls_port());
  if (!child) std::fprintf(stderr, " with %zu reactors on %s%s", server.reactor_count(), server.reactor(0).backend_name(),
               o.broadcast ? " (broadcast)" : o.pubsub ? " (pubsub)" : "");
  if (!child && !o.broker.empty()) std::fprintf(stderr, ", broker %s", o.broker.c_str());
  if (!child && o.workers > 0)
    std::fprintf(stderr, ", %u workers (business delay %u us for %g s%s%s)", o.workers, o.business_delay_us,
                 o.slow_for_s, o.slow_path.empty() ? "" : " on ", o.slow_path.c_str());
  if (!child) std::fprintf(stderr, "\n");
  if (!child && !o.port_file.empty()) {
    const std::string tmp = o.port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%u\n", server.port());
      std::fclose(f);
      std::rename(tmp.c_str(), o.port_file.c_str());
    }
  }
  for (;;) {
    if (shared_metrics) g_shared_metrics.publish(o.process_index, server);
    const int sig = g_signal.exchange(0);
    if (sig == SIGUSR1) print_metrics(server, handler, stderr);
    if (sig == SIGHUP) {
      // A renewed certificate: new handshakes use it, open links keep theirs.
      std::string why;
      if (int err = server.reload_tls(&why); err < 0) {
        std::fprintf(stderr, "ringlink-echo: TLS reload failed, old certificate kept: %s\n", why.c_str());
      } else {
        std::fprintf(stderr, "ringlink-echo: TLS certificate reloaded\n");
      }
    }
    if (sig == SIGINT || sig == SIGTERM) break;
    // Signal handlers only set a flag; this thread looks at it ten times a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!child) std::fprintf(stderr, "ringlink-echo: stopping\n");
  handler.stopping();
  server.stop(std::chrono::seconds(5));
  if (!child) {
    print_metrics(server, handler, stderr);
    return 0;
  }
  echo_processes::Metrics m;
  m.snapshot = server.snapshot();
  m.send_retries = handler.send_retries();
  return ringlink::tools::write_pod(report_fd, echo_processes::frame_metrics, m) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (o.processes <= 1) return serve(o, -1);

  echo_processes::Plan plan;
  plan.processes = o.processes;
  plan.host = o.host;
  plan.port = o.port;
  plan.tls = !o.tls_cert.empty();
  plan.plain = !plan.tls || o.tls_port >= 0;
  plan.tls_port = plan.tls ? o.tls_port : -1;
  plan.port_file = o.port_file;
  plan.mode = o.broadcast ? " (broadcast)" : o.pubsub ? " (pubsub)" : "";
  // Room for as many reactors as a child can start (0: one per core).
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);  // what Server::start uses for 0
  const unsigned per_process = o.reactors != 0 ? o.reactors : static_cast<unsigned>(std::max(1L, cores));
  if (o.metrics_endpoint && !g_shared_metrics.create(o.processes, per_process))
    std::fprintf(stderr, "ringlink-echo: no shared metrics table (%s): each process answers /metrics for itself\n",
                 std::strerror(errno));
  return echo_processes::run(plan, g_signal, [&](unsigned index, std::uint16_t port, int tls_port, int fd) {
    Options mine = o;
    mine.port = port;
    mine.tls_port = tls_port;
    mine.process_index = index;
    return serve(mine, fd);
  });
}
