// echo: the smallest useful ringlink server. Echoes every message without
// losing one: a peer that reads slower than it writes is paused (TCP pushes
// back on it) until its queue drains. Stops gracefully on SIGINT/SIGTERM.
//   echo [PORT]        (default 9001; 0 picks a free port; prints the URL)
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "engine/ringlink.hpp"

// The one message a full queue refused; pausing means there is never a second.
struct Held { ringlink::Opcode op; std::vector<std::byte> bytes; };

struct Echo : ringlink::Handler {
  void on_message(ringlink::Link& link, std::span<std::byte> msg, ringlink::Opcode op) override {
    if (link.send(msg, op) != ringlink::SendResult::backpressured) return;
    link.user_data() = new Held{op, {msg.begin(), msg.end()}};  // msg is only borrowed
    link.pause_reading();
  }
  void on_drain(ringlink::Link& link) override {  // the queue is empty: it takes one message
    std::unique_ptr<Held> held{static_cast<Held*>(std::exchange(link.user_data(), nullptr))};
    if (held) (void)link.send(held->bytes, held->op);
    link.resume_reading();
  }
  void on_close(ringlink::Link& link, std::uint16_t, std::string_view) override {
    delete static_cast<Held*>(link.user_data());
  }
};

int main(int argc, char** argv) {
  sigset_t stop;  // blocked before start(): the reactor threads inherit the mask
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  Echo echo;
  ringlink::ServerConfig cfg;
  cfg.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 9001);
  ringlink::Server server{cfg, echo};
  if (int err = server.start(); err < 0) return std::fprintf(stderr, "echo: %s\n", std::strerror(-err)), 1;
  std::printf("echo: ws://127.0.0.1:%u/\n", server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.stop(std::chrono::seconds(5));  // close 1001 to every link, flush, join
}
