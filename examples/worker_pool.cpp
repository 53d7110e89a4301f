// worker-pool: messages handled on worker threads, replies sent from the
// workers by LinkId. For work too slow for a reactor thread (a database call,
// a model, a big computation) that must not hold up the other links.
//
//   worker-pool [PORT [WORKERS [WORK_US]]]   (defaults 9002, 2, 0)
//
// Each message comes back with its bytes reversed, after WORK_US microseconds
// of simulated work. Nothing is lost, in either direction:
//   - inbound: InboundMode::workers with InboundPolicy::pause. The reactor
//     copies each message into the ring of the link's worker (a link always
//     goes to the same worker, so its replies keep its order); when that ring
//     is full it stops reading the link and TCP pushes back on the client.
//   - outbound: a worker replies with Server::send(id, ...), which never blocks.
//     `dropped` means the reactor's command ring was full: the worker waits a
//     moment and retries (a worker may block; a reactor must not). Server::send
//     cannot report a full send queue (the reactor looks at it later), so a
//     client that stops reading is closed (close_slow) rather than skipped.
// On SIGINT/SIGTERM it stops and prints what it handled and the engine's
// counters on stdout.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "engine/ringlink.hpp"

namespace {

class Workers : public ringlink::Handler {
 public:
  explicit Workers(std::chrono::microseconds work) : work_(work) {}
  void set_server(ringlink::Server* server) { server_ = server; }
  std::uint64_t handled() const { return handled_.load(); }
  std::uint64_t retries() const { return retries_.load(); }

  // On worker thread `worker`; `payload` is this worker's copy until we return.
  void on_worker_message(ringlink::LinkId id, std::span<std::byte> payload, ringlink::Opcode op,
                         unsigned) override {
    if (work_.count() > 0) {  // stands for real work: busy, not sleeping
      const auto until = std::chrono::steady_clock::now() + work_;
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    std::reverse(payload.begin(), payload.end());
    for (;;) {
      const ringlink::SendResult r = server_->send(id, payload, op);  // copies payload
      if (r != ringlink::SendResult::not_posted) break;  // queued, or closed: the link is gone
      retries_.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    handled_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::chrono::microseconds work_;
  ringlink::Server* server_ = nullptr;
  std::atomic<std::uint64_t> handled_{0};
  std::atomic<std::uint64_t> retries_{0};
};

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop;  // blocked before start(): every engine thread inherits the mask
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  Workers workers{std::chrono::microseconds(argc > 3 ? std::atoi(argv[3]) : 0)};
  ringlink::ServerConfig cfg;
  cfg.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 9002);
  cfg.inbound_mode = ringlink::InboundMode::workers;
  cfg.inbound_policy = ringlink::InboundPolicy::pause;
  cfg.workers = static_cast<unsigned>(argc > 2 ? std::atoi(argv[2]) : 2);
  cfg.outbound_policy = ringlink::OutboundPolicy::close_slow;
  cfg.close_slow_code = ringlink::close_code::try_again_later;
  cfg.metrics_endpoint = true;
  ringlink::Server server{cfg, workers};
  workers.set_server(&server);
  if (int err = server.start(); err < 0) {
    std::fprintf(stderr, "worker-pool: cannot listen on port %u: %s\n", cfg.port, std::strerror(-err));
    return 1;
  }
  std::printf("worker-pool: ws://127.0.0.1:%u/ with %u workers\n", server.port(), cfg.workers);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.stop(std::chrono::seconds(5));

  const ringlink::MetricsSnapshot m = server.snapshot();
  std::printf("worker-pool: handled %llu retries %llu messages_in %llu messages_out %llu "
              "inbound_dropped %llu send_backpressured %llu read_pauses %llu slow_closes %llu\n",
              (unsigned long long)workers.handled(), (unsigned long long)workers.retries(),
              (unsigned long long)m.messages_in, (unsigned long long)m.messages_out,
              (unsigned long long)m.inbound_dropped, (unsigned long long)m.send_backpressured,
              (unsigned long long)m.read_pauses,
              (unsigned long long)m.closed(ringlink::CloseReason::slow_consumer));
}
