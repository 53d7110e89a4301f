// Reactor: one thread, one backend, many links. The implementation behind
// Server; applications meet it only through Handler callbacks and Link.
//
// Each loop turn: wait for the backend (sleeping until the next timer, never
// polling), read from ready links under a per-link budget, run expired
// timers, run commands other threads posted, flush links with pending
// output, then free links closed during the turn. Everything here runs on
// the reactor thread unless marked "any thread".
//
// The code lives in one file per concern (docs/architecture.md draws them):
//   reactor.cpp           construction, the loop turn, post, find
//   reactor_accept.cpp    listening, accept, adopt, outbound connect
//   reactor_lifetime.cpp  a link's allocation, the ways it ends, its freeing
//   reactor_input.cpp     read targets, received bytes, pending chunks, pause/resume
//   reactor_frames.cpp    the frame loop, peer close, protocol failure, rate and hand-off gates
//   reactor_upgrade.cpp   the server's upgrade, plain HTTP and /metrics, refusals, the client's check
//   reactor_output.cpp    frame building, queueing policy, flush, sent completions
//   reactor_timers.cpp    one wheel entry per link: every deadline
//   reactor_commands.cpp  cross-thread commands, broadcast, stop
//   reactor_tls.cpp       the TLS transport: ciphertext in, records sealed at the flush
//   reactor_topics.cpp    topic members, publication fan-out, lost publications and gaps
//   reactor_deflate.cpp   permessage-deflate: negotiation, inflating, deflating, shared contexts
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "engine/backend.hpp"
#include "engine/buffer_pool.hpp"
#include "engine/command.hpp"
#include "engine/connect_request.hpp"
#include "engine/handler.hpp"
#include "engine/handoff.hpp"
#include "engine/ip_limiter.hpp"
#include "engine/link.hpp"
#include "engine/link_table.hpp"
#include "engine/metrics.hpp"
#include "engine/payload.hpp"
#include "engine/publication.hpp"
#include "engine/ring_mpsc.hpp"
#include "engine/send_queue.hpp"
#include "engine/server_config.hpp"
#include "engine/socket.hpp"
#include "engine/timer_wheel.hpp"
#include "engine/topic_members.hpp"
#include "engine/topics.hpp"
#include "protocol/deflate_codec.hpp"
#include "protocol/deflate_negotiation.hpp"
#include "protocol/handshake_client.hpp"
#include "protocol/session.hpp"

struct ssl_st;

namespace ringlink {

class Server;
struct LinkAux;
class TlsLink;
class TlsServerContext;
class TlsClientContexts;

class Reactor {
 public:
  using ClockFn = std::uint64_t (*)() noexcept;
  // Handshake, idle, keepalive and close deadlines fire up to this much late
  // (reactor_timers.cpp says why); application timers are exact.
  static constexpr std::uint32_t timer_slack_ms = 256;
  // Keepalive pings sent in one turn, at most; the rest wait for the next
  // turn. Each takes a send queue until the kernel has the ping, and coarse
  // deadlines make links opened together due together: 15,000 of them pinged
  // in one turn took 15,000 queues at once.
  static constexpr std::uint32_t max_pings_per_turn = 256;

  Reactor(std::uint32_t index, const ServerConfig& cfg, Handler& handler, Server* server);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Sets up the backend; `listen_fd` and `tls_listen_fd` (owned from now
  // on) may be -1. Links accepted on the second speak TLS with the
  // certificates of set_tls(). Call on the thread that will run the reactor
  // (pools and heaps are per thread).
  int open(int listen_fd, int tls_listen_fd = -1) noexcept;
  // Before open(): the certificates for TLS links (borrowed; must outlive
  // the reactor). Without it the TLS listener's links are refused.
  void set_tls(TlsServerContext* ctx) noexcept { tls_ctx_ = ctx; }
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
  // Sends one pre-encoded payload to the open links among `ids`, or to every
  // open link of this reactor when `ids` is null; returns how many queued it.
  std::size_t broadcast(const std::vector<LinkId>* ids, const PayloadRef& payload, Opcode op) noexcept;
  // Takes a connected, non-blocking socket (accepted elsewhere, or one end of
  // a socketpair) as a server link: it starts in the handshake (TLS first
  // with `tls`). Returns its id, or an invalid id (the fd is closed) when no
  // slot is left or, with `tls`, no TLS session could be made.
  LinkId adopt(int fd, bool tls = false) noexcept;
  // Starts an outbound connection. Returns its id (on_open or
  // on_connect_failed follows), or -errno of socket/bind/connect, or
  // -ENOSPC when max_links_per_reactor is reached.
  struct Connected {
    LinkId id;
    int error = 0;
    bool ok() const noexcept { return error == 0; }
  };
  Connected connect(const ConnectRequest& req) noexcept;
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

  // The reactor whose thread this is (in run/run_once), else null. Any thread.
  static Reactor* current() noexcept;
  // Topics (reactor_topics.cpp), reactor thread. The registry counted the
  // subscriber before (TopicRegistry::acquire): every answer but
  // `subscribed` gives that count back. `since`: the first publication
  // number the member may receive.
  SubscribeResult subscribe(LinkId id, std::shared_ptr<Topic> topic, std::uint64_t since) noexcept;
  bool unsubscribe(LinkId id, const std::shared_ptr<Topic>& topic) noexcept;
  const TopicMembers& topic_members() const noexcept { return members_; }

  // Worker hand-off (InboundMode::workers): worker w pops its ring.
  bool pop_inbound(unsigned worker, InboundMessage& out) noexcept { return handoff_.pop(worker, out); }
  void inbound_done(std::uint32_t slot) noexcept { handoff_.done(slot); }  // worker: handled
  void notify_inbound_space() noexcept;   // any thread: a worker freed room

  // --- Backend only: the sink the backend reports to (engine/backend.hpp).
  // Applications never call these.
  Link* link_for(std::uint64_t key) noexcept;
  Link* link_in_slot(std::uint32_t slot) noexcept;  // the live link there, if any
  void on_acceptable(std::uint32_t listener) noexcept;
  void on_accepted(std::uint32_t listener, int fd_or_error) noexcept;
  void on_readable(Link& link, bool hangup) noexcept;
  void on_writable(Link& link) noexcept;
  void on_wake() noexcept {}
  void begin_turn() noexcept;
  std::span<std::byte> read_target(Link& link) noexcept;
  bool on_received(Link& link, std::byte* data, std::size_t n) noexcept;
  bool on_received_buffer(Link& link, std::byte* chunk, std::size_t n) noexcept;
  void on_bundle(std::size_t) noexcept { metrics_.receive_bundles.add(); }
  void on_sent(Link& link, ssize_t res) noexcept;
  void on_read_end(Link& link, int err) noexcept;

 private:
  friend class Link;

  // loop turn (reactor.cpp)
  int sleep_budget(int max_wait_ms) const noexcept;
  void serve_over_budget() noexcept;
  void serve_read_again() noexcept;
  void serve_pool_waiters() noexcept;
  void run_timers() noexcept;
  void resume_accepting() noexcept;
  void run_commands() noexcept;
  void serve_handoff_waiters() noexcept;
  void flush_all() noexcept;
  void join_list(std::vector<LinkId>& list, Link& link, Link::Flag member) noexcept;

  // accept (reactor_accept.cpp)
  LinkId register_link(Link& link) noexcept;
  void accept_backoff() noexcept;

  // lifetime (reactor_lifetime.cpp). The ways a link ends, by what each sends:
  //   abort_link              nothing: the socket closes now (the peer sees 1006)
  //   send_close_and_wait     a close frame after what is queued; waits for the peer's
  //   send_refusal_and_close  an HTTP refusal, then as close_after_last_frame
  //   close_after_last_frame  what is queued, then FIN (half_close_and_linger)
  //   half_close_and_linger   FIN now; waits (close_timeout) for the peer's FIN
  // enter_closing is the one transition into `closing`.
  Link* allocate_link(int fd, bool client) noexcept;
  void free_link(Link& link) noexcept;
  // `error` (a negative errno) is reported to on_connect_failed for client
  // links that never opened; opened links report `code` to on_close.
  void abort_link(Link& link, CloseReason why, std::uint16_t code, int error = 0) noexcept;
  void send_close_and_wait(Link& link, std::uint16_t code, std::string_view reason, CloseReason why) noexcept;
  void enter_closing(Link& link, std::uint16_t code, CloseReason why, std::string_view text) noexcept;
  void close_after_last_frame(Link& link) noexcept;
  void half_close_and_linger(Link& link) noexcept;
  void out_of_memory(Link& link) noexcept;   // counted; ends this link only (1011)
  void free_closed() noexcept;
  LinkAux* aux_of(Link& link) noexcept;      // null when out of memory
  void trim_aux(Link& link) noexcept;
  Session* session_of(Link& link) noexcept;  // null when out of memory
  void drop_session(Session* s) noexcept;

  // input (reactor_input.cpp)
  std::span<std::byte> plain_target(Link& link) noexcept;
  void process_input(Link& link) noexcept;
  void release_rbuf(Link& link) noexcept;
  void feed_chunk(Link& link, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept;
  void stash(Link& link, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept;
  void drain_pending(Link& link) noexcept;
  void pause(Link& link, Link::Pause why) noexcept;
  void resume(Link& link, Link::Pause why) noexcept;
  void mark_ready(Link& link) noexcept;
  void pause_for_budget(Link& link) noexcept;

  // frames (reactor_frames.cpp)
  bool process_frames(Link& link) noexcept;
  bool handoff_gate(Link& link) noexcept;
  bool rate_gate(Link& link) noexcept;
  void on_peer_close(Link& link, const SessionEvent& ev) noexcept;
  void on_protocol_fail(Link& link, const SessionEvent& ev) noexcept;
  void deliver(Link& link, std::span<std::byte> payload, Opcode op) noexcept;
  void hand_to_worker(Link& link, std::span<std::byte> payload, Opcode op) noexcept;

  // upgrade (reactor_upgrade.cpp)
  bool serve_upgrade(Link& link) noexcept;
  void serve_plain_http(Link& link) noexcept;
  bool verify_upgrade(Link& link) noexcept;
  bool open_link(Link& link) noexcept;
  void send_refusal_and_close(Link& link, std::uint16_t status, std::string_view body, CloseReason why) noexcept;
  bool send_upgrade_request(Link& link, const ConnectRequest& req) noexcept;

  // permessage-deflate (reactor_deflate.cpp)
  // Server: agrees on the first offer it can honour; writes the answer into
  // `out` and returns its length (0: the extension is not in use).
  std::size_t negotiate_deflate_for(Link& link, const UpgradeRequestParser& req, std::span<char> out) noexcept;
  // Client: what to offer (budget permitting, with context takeover).
  DeflateClientOptions deflate_offer_for(const ConnectRequest& req) const noexcept;
  // Client: checks the 101's answer; false when the link must fail.
  bool accept_deflate_answer(Link& link, const UpgradeResponseParser& resp, const DeflateClientOptions& offered) noexcept;
  bool start_deflate(Link& link, const DeflateParams& agreed, bool client, std::size_t charged) noexcept;
  // A compressed message: replaces ev's payload with the inflated bytes,
  // or turns ev into the fail event (1007, 1009, 1011).
  void inflate_event(Link& link, Session& session, SessionEvent& ev) noexcept;
  // Compresses a data payload for `link` when it should be: true with
  // `out` set to the compressed bytes (send with RSV1).
  bool deflate_for(Link& link, std::span<const std::byte> payload, std::span<const std::byte>& out) noexcept;
  // Would a data payload of `size` bytes go through the link's own
  // compressor (context takeover), whose state then keeps it?
  bool deflates_in_own_context(const Link& link, std::size_t size) const noexcept;
  // One message for many links (a broadcast, a topic's publication): its
  // frames compressed once per window, each made when a link first needs it.
  struct CompressedOnce {
    std::array<PayloadRef, 16> frames{};
    std::array<bool, 16> tried{};
    PayloadRef none;   // no shared frame: send_frame compresses for the link
  };
  // The frame `link` gets of `plain` (a frame built once for many): the one
  // compressed once at its window (no context takeover), `none` (context
  // takeover: its own context), or `plain` (no deflate, below the threshold,
  // window 8, out of memory).
  const PayloadRef& frame_for_many(Link& link, const PayloadRef& plain, Opcode op, CompressedOnce& once) noexcept;
  // `plain` compressed once for links without context takeover at this
  // window: the frame (RSV1 set) with its header stored and plain's trailer
  // (a publication's tag) copied. Empty when out of memory.
  PayloadRef deflate_shared(const PayloadRef& plain, Opcode op, std::uint8_t bits) noexcept;
  Deflater* shared_deflater(std::uint8_t bits) noexcept;
  Inflater* shared_inflater(std::uint8_t bits) noexcept;
  void end_deflate(Link& link) noexcept;

  // output (reactor_output.cpp)
  SendResult send_frame(Link& link, Opcode op, std::span<const std::byte> payload, PayloadRef shared) noexcept;
  void send_close_frame(Link& link, std::uint16_t code, std::string_view reason) noexcept;
  void send_http(Link& link, std::string_view bytes) noexcept;   // an HTTP head (and body)
  SendResult enqueue(Link& link, std::span<const std::byte> header, std::span<const std::byte> payload,
                     PayloadRef shared, bool control) noexcept;
  SendResult admit(Link& link, std::size_t total, bool control) noexcept;
  // Writes a corked burst out first when the queue is past its marks or
  // `total` more would not fit; false when the link ended.
  bool make_room(Link& link, std::size_t total, bool control) noexcept;
  // `now`: write synchronously even on a completion backend.
  void flush(Link& link, bool now = false) noexcept;
  void after_sent(Link& link, std::size_t n) noexcept;
  void mark_flush(Link& link) noexcept;
  void count_dropped(const SendQueue::Dropped& d) noexcept;
  void fill_mask(MaskKey& key) noexcept;
  void trim_memory() noexcept;

  // TLS transport (reactor_tls.cpp; compiled with the `tls` feature only,
  // called under `if constexpr (config::tls)`)
  TlsLink* tls_of(const Link& link) const noexcept { return tls_links_[link.slot_]; }
  bool attach_tls(Link& link, ssl_st* ssl) noexcept;
  bool attach_tls_client(Link& link, const ConnectRequest& req) noexcept;
  void detach_tls(Link& link) noexcept;
  std::span<std::byte> tls_read_target(Link& link) noexcept;
  bool tls_received(Link& link, std::byte* data, std::size_t n, std::byte* chunk) noexcept;
  bool tls_feed(Link& link, const std::byte* data, std::size_t n, std::byte* chunk) noexcept;
  void tls_pump(Link& link) noexcept;
  bool tls_resume(Link& link) noexcept;
  bool tls_plaintext_on_tls_port(Link& link, const std::byte* data, std::size_t n) noexcept;
  void tls_seal(Link& link) noexcept;
  void tls_emit(Link& link) noexcept;
  void tls_fail(Link& link) noexcept;
  void tls_handshake_done(Link& link) noexcept;
  void tls_close_notify(Link& link) noexcept;
  void tls_timed_out(Link& link) noexcept;
  void tls_stream_ended(Link& link) noexcept;
  bool tls_admit(Link& link) noexcept;
  void tls_admit_queued() noexcept;

  // timers (reactor_timers.cpp)
  void arm_timer(Link& link) noexcept;
  void on_timer(Link& link) noexcept;
  std::uint32_t ms32() const noexcept { return static_cast<std::uint32_t>(now_ms_); }

  // topics (reactor_topics.cpp)
  void fan_out(Command& cmd) noexcept;
  void leave_topics(Link& link) noexcept;
  void note_dropped_frame(LinkId link, const SendFrame& frame) noexcept;
  void settle_lost() noexcept;
  void report_gaps(Link& link, Topic& topic) noexcept;
  bool may_report_gap(Link& link, std::size_t total) const noexcept;

  // commands and stop (reactor_commands.cpp)
  void run_command(Command& cmd) noexcept;
  void begin_stop(std::uint64_t deadline_ms) noexcept;
  void check_stop() noexcept;

  // A handler call: an exception closes only its own link (reactor_internal.hpp).
  template <class F>
  bool call_handler(Link& link, F&& f) noexcept;

  const ServerConfig& cfg_;
  Handler& handler_;
  Server* server_;
  std::uint32_t index_;
  Backend backend_;
  ReactorMetrics metrics_;
  std::unique_ptr<ChunkPool> pool_;
  std::unique_ptr<TimerWheel> timers_;
  LinkTable links_;
  MpscRing<Command> commands_;
  Handoff handoff_;
  std::vector<LinkId> read_again_;        // links with more to read
  std::vector<LinkId> over_budget_;       // links that read their budget this turn (p_budget)
  std::uint64_t run_key_ = 0;             // the link the last receives of this turn went to,
  std::size_t run_bytes_ = 0;             // and how many bytes in a row
  std::vector<LinkId> flush_list_;        // links with output to flush at the turn's end
  std::vector<LinkId> pool_waiting_;      // links waiting for a receive chunk
  std::vector<Link*> closed_;             // freed at the end of the turn
  std::vector<Link*> kernel_held_;        // closed; the kernel still holds their requests
  SendQueueCache queues_;
  std::vector<Session*> session_cache_;   // sessions of links at rest, reused
  std::vector<std::byte> mask_scratch_;   // client frames are masked here
  ByteBuffer inflate_out_;                // the message being delivered, inflated
  ByteBuffer deflate_out_;                // the message being sent, deflated
  // Contexts of links without context takeover, by window bits: reset
  // after each message, so any link of this reactor can use them.
  std::array<std::unique_ptr<Deflater>, 16> shared_tx_;
  std::array<std::unique_ptr<Inflater>, 16> shared_rx_;
  std::unique_ptr<IpLimiter> own_ip_limiter_;  // a reactor without a server
  IpLimiter* ip_limiter_ = nullptr;        // the server's, when max_links_per_ip is set
  Fd listen_fd_;
  Fd tls_listen_fd_;                      // listener 1: its links speak TLS
  TlsServerContext* tls_ctx_ = nullptr;
  std::shared_ptr<TlsClientContexts> tls_clients_;  // made at the first wss:// connect
  std::vector<TlsLink*> tls_links_;       // by slot; grown at the first TLS link
  std::vector<std::byte> tls_out_;        // what OpenSSL wrote in one call, then queued
  std::vector<std::byte> tls_in_;         // epoll reads ciphertext here
  std::vector<std::byte> tls_plain_;      // small frames joined into one record
  std::deque<LinkId> tls_admission_;      // handshake steps waiting, oldest first (bounded)
  std::uint32_t tls_budget_ = 0;          // handshake steps this turn may still run
  bool accepting_ = false;
  bool accept_paused_ = false;
  std::uint64_t accept_resume_ms_ = 0;
  bool stopping_ = false;
  std::uint64_t stop_deadline_ms_ = 0;
  std::atomic<bool> stopped_{false};
  std::uint64_t now_ms_ = 0;
  std::uint64_t turn_start_ns_ = 0;
  std::uint64_t next_trim_ms_ = 0;
  std::uint32_t pings_this_turn_ = 0;     // keepalive pings sent by this turn's timers
  std::uint32_t receives_since_trim_ = 0; // reads (or receive completions) since the last trim
  bool trim_due_ = false;                  // input came since the last trim
  ClockFn clock_;
  std::size_t open_links_ = 0;
  std::size_t live_links_ = 0;
  std::mt19937_64 rng_;
  TopicRegistry* registry_ = nullptr;     // the server's; null without one (no topics)
  TopicMembers members_;
  std::vector<TopicMembers::Member> fanout_scratch_;   // one publication's members, reused
  struct Lost {                           // a publication a link's queue dropped, to settle
    LinkId link;
    PublicationTag tag;
  };
  std::vector<Lost> lost_;
};

}  // namespace ringlink
