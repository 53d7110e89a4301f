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
// command ring and never block. Lifetime methods (start, stop, the
// destructor) belong to one controlling thread that is neither a reactor nor
// a worker: stop joins those threads.
//
// Ownership: the Server copies the ServerConfig; the Handler is borrowed and
// must outlive the Server. Every payload passed to a Server method is copied
// (or, as a PayloadRef, shared) before the call returns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/broker_bridge.hpp"
#include "engine/handler.hpp"
#include "engine/ip_limiter.hpp"
#include "engine/metrics.hpp"
#include "engine/payload.hpp"
#include "engine/reactor.hpp"
#include "engine/server_config.hpp"
#include "engine/topics.hpp"

namespace ringlink {

class Server {
 public:
  // Starts nothing: no socket, no thread until start().
  Server(ServerConfig cfg, Handler& handler);
  // stop() with a 1 s deadline if still running. Never from a reactor or
  // worker thread (it would join itself).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Controlling thread. Binds the listeners and starts the threads. Returns
  // 0, or a negative errno: -EALREADY (running), -EINVAL (host is not an
  // address resolve_address takes, or a malformed broker URL),
  // -EPROTONOSUPPORT (a broker scheme this build lacks), -EADDRINUSE / -EACCES (bind), -EMFILE
  // (out of fds), or the io backend's setup error. On failure nothing keeps
  // running. Call once: a stopped Server cannot be started again; make a new
  // one.
  int start();
  // Any thread after start() returned. The bound port (useful with port 0);
  // 0 before start() and for a client-only engine (listen = false).
  std::uint16_t port() const noexcept { return port_; }
  // Any thread after start(): the TLS listener's port; 0 without one. With
  // listen_plain = false, port() is this port too.
  std::uint16_t tls_port() const noexcept { return tls_port_; }

  // Controlling thread, after start(). Reloads the TLS certificate and key
  // files named in the configuration (a renewed certificate under the same
  // path): handshakes that start afterwards use them, links already open or
  // handshaking keep what they have. The second form replaces the TLS
  // settings (new files, SNI entries, ciphers; not the port). Returns 0, or
  // the load's error with the reason in *why, and then the old certificates
  // stay in use: -EINVAL (a file missing, unreadable or invalid, a key that
  // does not match, a wrong passphrase), -ENOMEM, -ENOTCONN (no TLS
  // listener), -ENOPROTOOPT (built without the `tls` feature).
  int reload_tls(std::string* why = nullptr);
  int reload_tls(const TlsConfig& tls, std::string* why = nullptr);

  // Any thread. Copies the payload before returning; the reactor owning `id`
  // sends it on its next loop turn, in the order of this thread's calls.
  // Results:
  //   queued   posted to the reactor. Not yet admitted: the reactor applies
  //            the link's outbound policy when it runs the command. Under
  //            policy reject a full queue refuses the frame there, counts it
  //            (send_backpressured) and calls on_drain on the reactor thread
  //            once the queue empties; the caller is not told. Choose
  //            close_slow, or size max_queued_bytes, when cross-thread
  //            replies must not be skipped (docs/backpressure.md).
  //   not_posted  the reactor's command ring is full (or memory ran out):
  //            nothing was sent. Retry later; a worker thread may sleep and retry.
  //   closed   the id is stale, invalid or the link is closed.
  // Never backpressured: the link's queue lives on another thread.
  [[nodiscard]] SendResult send(LinkId id, std::span<const std::byte> payload, Opcode op = Opcode::binary);
  [[nodiscard]] SendResult send_text(LinkId id, std::string_view text);
  // As above without the copy: the reference is taken; do not write the
  // bytes after this call (other threads read them).
  [[nodiscard]] SendResult send(LinkId id, PayloadRef payload, Opcode op = Opcode::binary);
  // Any thread: starts the close handshake of `id` (no reason text; use
  // Link::close on the reactor thread for one). False when the id is stale or
  // the command ring is full; true means posted (on_close follows).
  bool close(LinkId id, std::uint16_t code = close_code::normal);

  // Any thread: one message to many links, encoded once (one buffer shared by
  // every link that queues it). `ids` and `payload` are copied before the
  // call returns. Returns how many reactors accepted the work: less than
  // reactor_count() means some command rings were full and their links got
  // nothing; 0 also when memory ran out. Per-link results are not reported:
  // each link applies its own outbound policy, and stale ids are skipped.
  std::size_t broadcast(std::span<const LinkId> ids, std::span<const std::byte> payload, Opcode op = Opcode::binary);
  // As broadcast, to every open server and client link of every reactor.
  std::size_t broadcast_all(std::span<const std::byte> payload, Opcode op = Opcode::binary);
  // Any thread: a copy of `payload` with its frame header pre-encoded (server
  // role, unmasked), for sending one buffer on many links yourself, e.g.
  // Link::send(PayloadRef) from the reactor thread. Links use the stored
  // header as is, so the Opcode given at send time must be this `op`.
  // Client links re-encode (they must mask). Empty when memory ran out.
  static PayloadRef make_frame_payload(std::span<const std::byte> payload, Opcode op);

  // --- Topics (docs/pubsub.md). A topic is 1..255 bytes without NUL.
  // Any thread, after start(). Subscribes `id` to `topic`; a publication
  // made after this returned `subscribed` or `posted` reaches the link. On
  // the link's own reactor thread (its handler callbacks) it is done at once
  // and the answer is final; from any other thread it is posted to that
  // reactor (see SubscribeResult). A link leaves every topic when it closes.
  [[nodiscard]] SubscribeResult subscribe(LinkId id, std::string_view topic);
  // Any thread. True when the link was subscribed (on its reactor thread) or
  // the removal was posted (elsewhere); false when the topic has no
  // subscriber, the id is stale, or the ring is full.
  bool unsubscribe(LinkId id, std::string_view topic);
  // Any thread, after start(). One message to every subscriber of `topic`
  // on every reactor: framed once, handed to each reactor with subscribers
  // as one reference-counted buffer, queued on each link under its outbound
  // policy. Publications of one thread to one topic arrive in order, never
  // twice; what a link's policy refuses or drops is counted per topic and
  // reported by Handler::on_topic_gap. No subscriber: one hash lookup, no
  // copy. `payload` is copied before the call returns.
  PublishResult publish(std::string_view topic, std::span<const std::byte> payload, Opcode op = Opcode::binary);
  PublishResult publish_text(std::string_view topic, std::string_view text);
  // As publish, to this server's subscribers only (the broker bridge hands
  // other nodes' publications here; they are not forwarded again).
  PublishResult publish_local(std::string_view topic, std::span<const std::byte> payload, Opcode op = Opcode::binary);
  // The broker bridge's counters; null without ServerConfig::broker.
  const BrokerStats* broker_stats() const noexcept { return bridge_ ? &bridge_->stats() : nullptr; }
  // Any thread: a topic's counters (zeros when it has no subscriber now).
  struct TopicStats {
    std::uint64_t subscribers = 0, published = 0, delivered = 0, dropped = 0;
  };
  TopicStats topic_stats(std::string_view topic) const;
  // The server-wide topic table (tests, the broker bridge); null before start().
  TopicRegistry* topic_registry() noexcept { return topics_.get(); }

  // Any thread: an outbound WebSocket connection on the next reactor
  // (round robin). `req` is copied. False when that reactor's command ring is
  // full (nothing happens); otherwise on_open or on_connect_failed follows on
  // that reactor's thread, with req.user_data as the link's user_data.
  bool connect(const ConnectRequest& req);

  // Controlling thread (never a reactor or worker: it joins them): graceful
  // stop. Stops accepting, sends close 1001 to every link, flushes, waits for
  // the replies until the deadline, then drops what is left and joins every
  // thread. on_close runs for every open link before it returns. A no-op when not
  // running.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));
  // Between a successful start() and the end of stop(). Any thread (a
  // sender may poll it to stop sending); start() and stop() themselves
  // belong to the controlling thread.
  bool running() const noexcept { return running_.load(std::memory_order_acquire); }

  // Any thread: the counters summed over reactors (relaxed reads: each
  // counter is exact, the set is not one instant). Valid after stop() too.
  MetricsSnapshot snapshot() const;
  // Any thread: the /metrics body (every reactor's counters, then the
  // server's topic counters).
  void write_metrics(std::string& out) const;
  // Any thread after start().
  std::size_t reactor_count() const noexcept { return reactors_.size(); }
  // The implementation's reactor (tests, tools): most of its methods are for
  // its own thread only; see engine/reactor.hpp.
  Reactor& reactor(std::size_t i) noexcept { return *reactors_[i]; }
  const ServerConfig& config() const noexcept { return cfg_; }

  // Used by reactors for the worker hand-off; not for applications.
  void notify_worker(unsigned worker) noexcept;
  void request_handoff_space(std::uint32_t reactor) noexcept;
  // Shared by the reactors when ServerConfig::max_links_per_ip is set.
  IpLimiter* ip_limiter() noexcept { return ip_limiter_.get(); }

 private:
  struct Worker;
  void worker_main(unsigned index);
  void handle_inbound(InboundMessage& msg, unsigned worker) noexcept;
  std::size_t post_broadcast(std::shared_ptr<const std::vector<LinkId>> ids, std::span<const std::byte> payload,
                             Opcode op);

  ServerConfig cfg_;
  Handler& handler_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> worker_threads_;
  std::unique_ptr<std::atomic<bool>[]> wants_space_;
  std::unique_ptr<IpLimiter> ip_limiter_;
  std::unique_ptr<TopicRegistry> topics_;
  std::unique_ptr<BrokerBridge> bridge_;
  std::atomic<std::uint32_t> next_connect_{0};
  std::atomic<bool> workers_stop_{false};
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::shared_ptr<TlsServerContext> tls_;  // with a TLS listener
  std::atomic<bool> running_{false};
};

}  // namespace ringlink
