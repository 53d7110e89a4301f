// ringlink-echo: the reference server. Echoes every message (or, with
// --broadcast, sends every message to every link), prints a metrics summary
// on SIGUSR1 and at exit, stops gracefully on SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/server.hpp"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9001;
  unsigned reactors = 0;
  std::size_t max_message = ringlink::config::max_message_size;
  bool broadcast = false;
  std::uint32_t idle_timeout_ms = 0;
  std::uint32_t ping_interval_ms = 0;
  std::string port_file;
};

void usage() {
  std::fprintf(stderr,
               "usage: ringlink-echo [--host ADDR] [--port N] [--reactors N] [--max-message BYTES]\n"
               "                     [--broadcast] [--idle-timeout MS] [--ping-interval MS]\n"
               "                     [--port-file FILE]\n"
               "  --port 0 picks a free port; --port-file writes the port chosen.\n"
               "  SIGUSR1 prints metrics; SIGINT/SIGTERM stop gracefully.\n");
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--broadcast") {
      o.broadcast = true;
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
    } else if (a == "--port-file" && (v = value())) {
      o.port_file = v;
    } else {
      std::fprintf(stderr, "ringlink-echo: bad argument '%s'\n", argv[i]);
      usage();
      return false;
    }
  }
  return true;
}

// Echoes without losing anything: when send() pushes back, the message is
// kept (with any that follow it) and reading pauses until on_drain; TCP then
// pushes back on the peer. Pausing stops the reactor before the next message,
// so at most a message or two wait here per link.
class EchoHandler : public ringlink::Handler {
 public:
  EchoHandler(bool broadcast, std::size_t max_message) : broadcast_(broadcast), max_message_(max_message) {}
  void set_server(ringlink::Server* s) { server_ = s; }

  void on_message(ringlink::Link& link, std::span<std::byte> payload, ringlink::Opcode op) override {
    if (payload.size() > max_message_) {
      link.close(ringlink::close_code::message_too_big, "message too big");
      return;
    }
    if (broadcast_) {
      server_->broadcast_all(payload, op);
      return;
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
  }

 private:
  using Waiting = std::deque<std::pair<ringlink::Opcode, std::vector<std::byte>>>;
  bool broadcast_;
  std::size_t max_message_;
  ringlink::Server* server_ = nullptr;
};

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig); }

void print_metrics(const ringlink::Server& s, FILE* out) {
  const ringlink::MetricsSnapshot m = s.snapshot();
  std::fprintf(out,
               "ringlink-echo metrics: links open %llu, accepted %llu, refused %llu, handshakes failed %llu\n"
               "  messages in %llu, out %llu; bytes in %llu, out %llu; queued %llu (high-water %llu)\n"
               "  backpressured %llu, dropped %llu, paused links %llu, handler exceptions %llu, wakeups %llu\n"
               "  accept calls %llu, accept backoffs %llu\n"
               "  closes:",
               (unsigned long long)m.links_open, (unsigned long long)m.links_accepted,
               (unsigned long long)m.links_refused, (unsigned long long)m.handshakes_failed,
               (unsigned long long)m.messages_in, (unsigned long long)m.messages_out,
               (unsigned long long)m.bytes_in, (unsigned long long)m.bytes_out,
               (unsigned long long)m.queued_bytes, (unsigned long long)m.queued_bytes_high_water,
               (unsigned long long)m.send_backpressured, (unsigned long long)m.send_dropped,
               (unsigned long long)m.paused_links, (unsigned long long)m.handler_exceptions,
               (unsigned long long)m.loop_wakeups, (unsigned long long)m.accept_calls,
               (unsigned long long)m.accept_backoffs);
  for (std::size_t i = 0; i < ringlink::close_reason_count; ++i)
    if (m.closes[i] != 0)
      std::fprintf(out, " %s=%llu", ringlink::to_string(static_cast<ringlink::CloseReason>(i)),
                   (unsigned long long)m.closes[i]);
  std::fprintf(out, "\n");
  std::fflush(out);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  ringlink::ServerConfig cfg;
  cfg.host = o.host;
  cfg.port = o.port;
  cfg.reactors = o.reactors;
  cfg.idle_timeout_ms = o.idle_timeout_ms;
  cfg.ping_interval_ms = o.ping_interval_ms;
  EchoHandler handler(o.broadcast, o.max_message);
  ringlink::Server server(cfg, handler);
  handler.set_server(&server);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (int err = server.start(); err < 0) {
    std::fprintf(stderr, "ringlink-echo: cannot listen on %s:%u: %s\n", o.host.c_str(), o.port, std::strerror(-err));
    return 1;
  }
  std::fprintf(stderr, "ringlink-echo: listening on ws://%s:%u/ with %zu reactors%s\n", o.host.c_str(),
               server.port(), server.reactor_count(), o.broadcast ? " (broadcast)" : "");
  if (!o.port_file.empty()) {
    const std::string tmp = o.port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%u\n", server.port());
      std::fclose(f);
      std::rename(tmp.c_str(), o.port_file.c_str());
    }
  }
  for (;;) {
    const int sig = g_signal.exchange(0);
    if (sig == SIGUSR1) print_metrics(server, stderr);
    if (sig == SIGINT || sig == SIGTERM) break;
    // Signal handlers only set a flag; this thread looks at it ten times a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "ringlink-echo: stopping\n");
  server.stop(std::chrono::seconds(5));
  print_metrics(server, stderr);
  return 0;
}
