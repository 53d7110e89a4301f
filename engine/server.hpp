// Server: N reactors (one per core by default), each with its own
// SO_REUSEPORT listener and thread, plus optional worker threads for the
// inbound hand-off. The same object runs client links (connect()).
//
//   struct Echo : ringlink::Handler {
//     void on_message(ringlink::Link& l, std::span<std::byte> p, ringlink::Opcode op) override {
//       (void)l.send(p, op);
//     }
//   } echo;
//   ringlink::ServerConfig cfg{.port = 9001};
//   ringlink::Server server{cfg, echo};
//   if (int err = server.start(); err < 0) { /* -errno: bind failed, ... */ }
//   ...
//   server.stop(std::chrono::seconds(5));   // close 1001, flush, join
//
// Methods marked "any thread" may be called from any thread, including
// handler callbacks; they reach the owning reactor through its bounded
// command ring and never block.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/handler.hpp"
#include "engine/metrics.hpp"
#include "engine/payload.hpp"
#include "engine/reactor.hpp"
#include "engine/server_config.hpp"

namespace ringlink {

class Server {
 public:
  Server(ServerConfig cfg, Handler& handler);
  ~Server();  // stop() with a 1 s deadline if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts the threads. Returns 0, or -errno (bind
  // or listen failed, out of fds, io backend setup failed). Call once.
  int start();
  // The bound port (useful with port 0). 0 before start().
  std::uint16_t port() const noexcept { return port_; }

  // Any thread. Copies the payload; the reactor owning `id` sends it.
  // Results: queued (posted; the reactor applies the link's policy, counted
  // in the metrics), backpressured (the link's queue was over its cap when
  // looked at), dropped (the reactor's command ring is full), closed (stale
  // or closed id).
  [[nodiscard]] SendResult send(LinkId id, std::span<const std::byte> payload, Opcode op = Opcode::binary);
  [[nodiscard]] SendResult send_text(LinkId id, std::string_view text);
  [[nodiscard]] SendResult send(LinkId id, PayloadRef payload, Opcode op = Opcode::binary);
  // Any thread: starts the close handshake of `id`. False when the id is stale
  // or the command ring is full.
  bool close(LinkId id, std::uint16_t code = close_code::normal);

  // Any thread: one message to many links, encoded once (one buffer shared by
  // every link that queues it). Returns how many reactors accepted the work.
  std::size_t broadcast(std::span<const LinkId> ids, std::span<const std::byte> payload, Opcode op = Opcode::binary);
  std::size_t broadcast_all(std::span<const std::byte> payload, Opcode op = Opcode::binary);
  // A payload with its frame header pre-encoded (server role, unmasked).
  static PayloadRef make_frame_payload(std::span<const std::byte> payload, Opcode op);

  // Any thread: an outbound WebSocket connection on the next reactor
  // (round robin). on_open or on_connect_failed reports the outcome.
  bool connect(const ConnectRequest& req);

  // Any thread except a reactor's: graceful stop. Stops accepting, sends
  // close 1001 to every link, flushes, waits for the replies until the
  // deadline, then drops what is left and joins every thread.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));
  bool running() const noexcept { return running_; }

  MetricsSnapshot snapshot() const;
  std::size_t reactor_count() const noexcept { return reactors_.size(); }
  Reactor& reactor(std::size_t i) noexcept { return *reactors_[i]; }
  const ServerConfig& config() const noexcept { return cfg_; }

  // Used by reactors for the worker hand-off.
  void notify_worker(unsigned worker) noexcept;
  void request_handoff_space(std::uint32_t reactor) noexcept;

 private:
  struct Worker;
  void worker_main(unsigned index);

  ServerConfig cfg_;
  Handler& handler_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> worker_threads_;
  std::unique_ptr<std::atomic<bool>[]> wants_space_;
  std::atomic<std::uint32_t> next_connect_{0};
  std::atomic<bool> workers_stop_{false};
  std::uint16_t port_ = 0;
  bool running_ = false;
};

}  // namespace ringlink
