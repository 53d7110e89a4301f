// Reactor: one thread, one backend, many links.
//
// Each loop turn: wait for the backend (sleeping until the next timer, never
// polling), read from ready links under a per-link budget, run expired
// timers, run commands other threads posted, flush links with pending
// output, then free links closed during the turn. Applications meet the
// reactor through Handler callbacks and Link; Server owns the reactors and
// their threads. Everything here runs on the reactor thread unless marked
// "any thread".
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "engine/backend.hpp"
#include "engine/buffer_pool.hpp"
#include "engine/handler.hpp"
#include "engine/ip_limiter.hpp"
#include "engine/link.hpp"
#include "engine/metrics.hpp"
#include "engine/payload.hpp"
#include "engine/ring_mpsc.hpp"
#include "engine/ring_spsc.hpp"
#include "engine/server_config.hpp"
#include "engine/socket.hpp"
#include "engine/timer_wheel.hpp"
#include "protocol/handshake_client.hpp"
#include "protocol/session.hpp"

namespace ringlink {

class Server;

// An outbound connection request (see Reactor::connect / Server::connect).
struct ConnectRequest {
  SocketAddress address;
  bool has_source = false;
  SocketAddress source;           // local address to bind (spreads source ports)
  std::string host_header;        // Host value
  std::string path = "/";
  std::string origin;
  std::string protocols;
  void* user_data = nullptr;      // becomes Link::user_data()
};

// A message handed to a worker thread (InboundMode::workers).
struct InboundMessage {
  LinkId id;
  Opcode op = Opcode::binary;
  PayloadRef payload;
};

// Work posted to a reactor from any thread.
struct Command {
  enum class Kind : std::uint8_t { send, close, broadcast_all, broadcast_ids, connect, stop, resume_handoff };
  Kind kind = Kind::send;
  Opcode op = Opcode::binary;
  std::uint16_t code = close_code::normal;
  LinkId id{};
  PayloadRef payload{};            // send/broadcast: payload (header pre-encoded for broadcast)
  std::shared_ptr<const std::vector<LinkId>> ids{};   // broadcast_ids
  std::shared_ptr<ConnectRequest> connect{};
  std::uint64_t deadline_ms = 0;   // stop
};

class Reactor {
 public:
  using ClockFn = std::uint64_t (*)() noexcept;

  Reactor(std::uint32_t index, const ServerConfig& cfg, Handler& handler, Server* server);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Sets up the backend; `listen_fd` (owned from now on) may be -1. Call on
  // the thread that will run the reactor (pools and heaps are per thread).
  int open(int listen_fd) noexcept;
  // Runs until a stop command completed. Returns 0 or -errno.
  int run() noexcept;
  // One loop turn with at most `max_wait_ms` of sleep (tests).
  void run_once(int max_wait_ms) noexcept;

  // Any thread. False when the command ring is full (counted).
  [[nodiscard]] bool post(Command&& cmd) noexcept;
  // Any thread: is `id` a live link of this reactor right now? (advisory)
  bool alive(LinkId id) const noexcept;

  std::uint32_t index() const noexcept { return index_; }
  const ReactorMetrics& metrics() const noexcept { return metrics_; }
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  Server* server() const noexcept { return server_; }
  const ServerConfig& config() const noexcept { return cfg_; }

  // Reactor thread.
  Link* find(LinkId id) noexcept;
  // Sends one pre-encoded payload to every open link of this reactor; returns
  // how many queued it.
  std::size_t broadcast_all(const PayloadRef& payload, Opcode op) noexcept;
  std::size_t broadcast(std::span<const LinkId> ids, const PayloadRef& payload, Opcode op) noexcept;
  // Takes a connected, non-blocking socket (accepted elsewhere, or one end of
  // a socketpair) as a server link: it starts in the handshake. Returns its
  // id, or an invalid id (the fd is closed) when no slot is left.
  LinkId adopt(int fd) noexcept;
  // Starts an outbound connection; returns its id (on_open or
  // on_connect_failed follows), or an invalid id with *error set (-errno of
  // socket/bind/connect, -ENOSPC when max_links_per_reactor is reached).
  LinkId connect(const ConnectRequest& req, int* error = nullptr) noexcept;
  std::uint64_t now_ms() const noexcept { return now_ms_; }
  // Replaces the clock (tests: a manual clock, no sleeping). Reactor thread.
  void set_clock(ClockFn clock) noexcept;
  std::size_t links_open() const noexcept { return open_links_; }
  const ChunkPool& pool() const noexcept { return *pool_; }
  // Receive chunks links hold (partial frames, messages being delivered):
  // the pool's chunks in use less those lent to the kernel's buffer ring.
  std::size_t chunks_held() const noexcept { return pool_->in_use() - backend_.lent_buffers(); }
  // "epoll" or "io_uring": what this reactor runs on (auto decides at open()).
  const char* backend_name() const noexcept { return backend_.name(); }

  // Worker hand-off (InboundMode::workers): worker w pops its ring.
  bool pop_inbound(unsigned worker, InboundMessage& out) noexcept;
  void notify_inbound_space() noexcept;   // any thread: a worker freed room

  // --- backend sink interface (called by the backend) ---
  Link* link_for(std::uint64_t key) noexcept;
  void on_acceptable(std::uint32_t listener) noexcept;
  void on_accepted(std::uint32_t listener, int fd_or_error) noexcept;
  void on_readable(Link& link, bool hangup) noexcept;
  void on_writable(Link& link) noexcept;
  void on_wake() noexcept;
  void begin_turn() noexcept;
  std::span<std::byte> read_target(Link& link) noexcept;
  bool on_received(Link& link, std::byte* data, std::size_t n) noexcept;
  bool on_received_buffer(Link& link, std::byte* chunk, std::size_t n) noexcept;
  void on_sent(Link& link, ssize_t res) noexcept;
  void on_read_end(Link& link, int err) noexcept;

 private:
  friend class Link;
  struct Slab;

  // links
  Link* allocate_link(int fd, bool client) noexcept;
  void free_link(Link& link) noexcept;
  // `error` (a negative errno) is reported to on_connect_failed for client
  // links that never opened; opened links report `code` to on_close.
  void close_now(Link& link, CloseReason why, std::uint16_t code, int error = 0) noexcept;
  void start_close(Link& link, std::uint16_t code, std::string_view reason, CloseReason why) noexcept;
  void finish_close(Link& link) noexcept;   // after our close frame or 4xx left
  void free_closed() noexcept;

  // input
  void process_input(Link& link) noexcept;
  bool process_handshake(Link& link) noexcept;
  bool process_client_handshake(Link& link) noexcept;
  bool process_frames(Link& link) noexcept;
  bool open_link(Link& link) noexcept;
  void deliver(Link& link, std::span<std::byte> payload, Opcode op) noexcept;
  void release_rbuf(Link& link) noexcept;
  void feed_chunk(Link& link, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept;
  void stash(Link& link, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept;
  void drain_pending(Link& link) noexcept;
  void refuse(Link& link, std::uint16_t status, std::string_view body, CloseReason why,
              bool counted_as_refusal) noexcept;
  void pause(Link& link, std::uint8_t why) noexcept;
  void resume(Link& link, std::uint8_t why) noexcept;
  void mark_ready(Link& link) noexcept;
  Session& session_of(Link& link) noexcept;
  void drop_session(Session* s) noexcept;
  LinkAux& aux_of(Link& link) noexcept;
  void trim_aux(Link& link) noexcept;

  // output
  SendResult enqueue(Link& link, std::span<const std::byte> header, std::span<const std::byte> payload,
                     PayloadRef shared, bool control) noexcept;
  SendResult send_frame(Link& link, Opcode op, std::span<const std::byte> payload, PayloadRef shared) noexcept;
  void send_close_frame(Link& link, std::uint16_t code, std::string_view reason) noexcept;
  void send_raw(Link& link, std::string_view bytes) noexcept;   // HTTP responses
  // `now`: write synchronously even on a completion backend.
  void flush(Link& link, bool now = false) noexcept;
  void after_sent(Link& link, std::size_t n) noexcept;
  void mark_dirty(Link& link) noexcept;
  template <class F> void drop_unsent(SendQueue& q, F&& should_drop) noexcept;
  SendQueue* acquire_queue() noexcept;
  void release_queue(SendQueue* q) noexcept;

  // timers
  void arm_timer(Link& link) noexcept;
  void on_timer(Link& link) noexcept;
  std::uint32_t ms32() const noexcept { return static_cast<std::uint32_t>(now_ms_); }

  // commands, accept, stop
  void run_command(Command& cmd) noexcept;
  void accept_backoff(std::uint32_t listener) noexcept;
  void begin_stop(std::uint64_t deadline_ms) noexcept;
  void check_stop() noexcept;
  void handoff(Link& link, std::span<std::byte> payload, Opcode op) noexcept;
  void fill_mask(MaskKey& key) noexcept;
  template <class F> bool guarded(Link& link, F&& f) noexcept;

  const ServerConfig& cfg_;
  Handler& handler_;
  Server* server_;
  std::uint32_t index_;
  Backend backend_;
  ReactorMetrics metrics_;
  std::unique_ptr<ChunkPool> pool_;
  std::unique_ptr<TimerWheel> timers_;
  std::unique_ptr<Slab> slab_;
  MpscRing<Command> commands_;
  std::vector<std::unique_ptr<SpscRing<InboundMessage>>> handoff_;  // one per worker
  std::atomic<bool> handoff_space_{false};
  std::atomic<std::uint64_t> handoff_pops_{0};  // seq_cst: pairs with the space request
  std::vector<LinkId> handoff_waiting_;   // links paused by a full hand-off ring or their quota
  // Per link slot (workers mode): the ring's push count after the link's
  // last message, and how many it pushed since it last had none waiting.
  std::vector<std::uint64_t> handoff_last_;
  std::vector<std::uint32_t> handoff_run_;
  std::vector<LinkId> ready_;             // links with more to read
  std::vector<LinkId> dirty_;             // links with output to flush
  std::vector<LinkId> pool_waiting_;      // links waiting for a receive chunk
  std::vector<Link*> closed_;             // freed at the end of the turn
  std::vector<Link*> lingering_;          // closed, the kernel still holds their requests
  std::vector<SendQueue*> queue_cache_;
  std::vector<Session*> session_cache_;   // sessions of links at rest, reused
  std::vector<std::byte> mask_scratch_;   // client frames are masked here
  std::unique_ptr<IpLimiter> own_ip_limiter_;  // a reactor without a server
  IpLimiter* ip_limiter_ = nullptr;        // the server's, when max_links_per_ip is set
  Fd listen_fd_;
  bool accepting_ = false;
  bool accept_paused_ = false;
  std::uint64_t accept_resume_ms_ = 0;
  bool stopping_ = false;
  std::uint64_t stop_deadline_ms_ = 0;
  std::atomic<bool> stopped_{false};
  std::uint64_t now_ms_ = 0;
  std::uint64_t turn_start_ns_ = 0;
  ClockFn clock_;
  std::size_t open_links_ = 0;
  std::size_t live_links_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ringlink
