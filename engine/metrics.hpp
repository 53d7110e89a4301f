// Per-reactor counters. One reactor thread writes them; any thread may read
// them (snapshot()) without locks: each counter is a relaxed atomic that the
// single writer updates with a plain load + store, so the hot path pays no
// locked instruction. With the `metrics` flag off every update compiles away.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ringlink_config.hpp"

namespace ringlink {

class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    if constexpr (config::metrics) v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n = 1) noexcept {
    if constexpr (config::metrics) v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) noexcept {
    if constexpr (config::metrics) v_.store(n, std::memory_order_relaxed);
  }
  void raise_to(std::uint64_t n) noexcept {  // high-water marks
    if constexpr (config::metrics)
      if (n > v_.load(std::memory_order_relaxed)) v_.store(n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Why a link ended. Each has a counter.
enum class CloseReason : std::uint8_t {
  peer_close,          // the peer's close frame (any code)
  local_close,         // the application closed it
  protocol_error,      // 1002 sent
  invalid_utf8,        // 1007 sent
  too_big,             // 1009 sent
  policy,              // 1008 sent (inbound policy close)
  slow_consumer,       // outbound close-slow-consumer policy
  handler_exception,   // 1011 sent
  handshake_refused,   // upgrade refused with an HTTP status
  handshake_timeout,
  idle_timeout,
  ping_timeout,
  close_timeout,       // our close got no reply in time
  io_error,            // reset, EPIPE, read/write error
  peer_eof,            // TCP closed without a close frame
  shutdown,            // 1001 on graceful stop
  out_of_memory,       // memory for this link ran out (on_close reports 1011)
  count_,
};
inline constexpr std::size_t close_reason_count = static_cast<std::size_t>(CloseReason::count_);
const char* to_string(CloseReason r) noexcept;

// Loop-turn latency buckets (microseconds, upper bounds; last is +Inf).
inline constexpr std::array<std::uint64_t, 12> loop_turn_bounds_us = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 25000, UINT64_MAX};

// TLS handshake time buckets (microseconds from accept or connect to the
// handshake's end; last is +Inf).
inline constexpr std::array<std::uint64_t, 10> tls_handshake_bounds_us = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000, UINT64_MAX};

struct ReactorMetrics {
  Counter links_open;            // gauge
  Counter links_accepted;
  Counter links_refused;         // upgrade refused (status sent)
  Counter handshakes_failed;     // malformed or timed out before 101
  Counter messages_in;
  Counter messages_out;
  Counter bytes_in;              // payload bytes
  Counter bytes_out;             // wire bytes written
  Counter queued_bytes;          // gauge: bytes waiting in send queues
  Counter queued_bytes_high_water;
  Counter send_backpressured;    // send() answered backpressured
  Counter send_dropped;          // frames dropped by drop-oldest, or inbound drop-newest
  Counter inbound_dropped;       // messages dropped by the inbound drop-newest policy
  Counter paused_links;          // gauge: links whose reading is paused
  Counter read_pauses;           // times a link's reading was paused (any cause)
  Counter rate_limited;          // pauses caused by the inbound rate limit
  Counter pool_exhausted;        // reads deferred because the chunk pool was at its cap
  Counter loop_wakeups;
  Counter accept_backoffs;       // EMFILE/ENFILE on accept
  Counter accept_calls;          // accept4 calls (to see that nothing spins)
  Counter commands;              // cross-thread commands executed
  Counter commands_rejected;     // cross-thread command ring full
  Counter handler_exceptions;
  Counter out_of_memory;         // allocations refused; each ended (or shortened) one link only
  Counter write_calls;           // gather writes issued (sendmsg, or a send SQE)
  Counter partial_writes;        // writes the kernel took only in part
  Counter pages_returned;        // idle buffer pages handed back to the kernel after the load went
  Counter receive_bundles;       // io_uring: receives that filled several buffers in one completion
  // TLS (wss://) handshakes on server and client links.
  Counter tls_handshakes;        // completed
  Counter tls_failed_timeout;    // the handshake timeout ended it before TLS was up
  Counter tls_failed_protocol;   // a fatal TLS error (garbage, bad record, renegotiation, no shared cipher)
  Counter tls_failed_certificate;// a certificate was refused (by the peer, or by our client)
  Counter tls_failed_plaintext;  // plain HTTP on a TLS port (answered 400 in plain text)
  Counter tls_handshakes_pending;// gauge: handshake steps waiting for admission
  Counter tls_handshakes_queued; // handshake steps that had to wait (the turn's budget was spent)
  Counter tls_handshakes_shed;   // connections refused: the admission queue was full
  Counter tls_truncated;         // TLS links whose peer's stream ended (FIN or reset) inside a record
  std::array<Counter, tls_handshake_bounds_us.size()> tls_handshake_us{};
  Counter tls_handshake_us_sum;
  Counter topic_delivered;       // publications queued on subscribers' links
  Counter topic_dropped;         // publications a subscriber lost (refused, dropped, ring full)
  Counter topic_gaps;            // on_topic_gap reports
  Counter topic_link_cap;        // subscribes refused: the link had max_topics_per_link
  // permessage-deflate
  Counter deflate_links;           // Links with permessage-deflate in use.
  Counter deflate_context_bytes;   // Bytes of zlib contexts this reactor holds (dedicated and shared).
  Counter deflate_contexts;        // zlib contexts this reactor holds (dedicated and shared).
  Counter deflate_shared_fallbacks;// Links given no context takeover because the memory budget was spent.
  Counter deflate_in_wire_bytes;   // Compressed payload bytes received.
  Counter deflate_in_plain_bytes;  // Those bytes once inflated.
  Counter deflate_out_plain_bytes; // Payload bytes compressed for sending.
  Counter deflate_out_wire_bytes;  // Those bytes once deflated.
  Counter deflate_calls;           // Messages deflated (one per broadcast or publication shared by many links).
  Counter deflate_rsv1_errors;     // Links failed 1002: RSV1 without the extension, on a control frame or continuation.
  Counter deflate_corrupt;         // Links failed 1007: bad deflate data or a missing tail.
  Counter deflate_too_big;         // Links failed 1009: a message inflated past the size cap.
  std::array<Counter, close_reason_count> closes{};
  std::array<Counter, loop_turn_bounds_us.size()> loop_turn_us{};
  Counter loop_turn_us_sum;

  void closed(CloseReason r) noexcept { closes[static_cast<std::size_t>(r)].add(); }
  void tls_handshake(std::uint64_t us) noexcept {
    if constexpr (config::metrics) {
      tls_handshakes.add();
      std::size_t i = 0;
      while (us > tls_handshake_bounds_us[i]) ++i;
      tls_handshake_us[i].add();
      tls_handshake_us_sum.add(us);
    }
  }
  void loop_turn(std::uint64_t us) noexcept {
    if constexpr (config::metrics) {
      std::size_t i = 0;
      while (us > loop_turn_bounds_us[i]) ++i;
      loop_turn_us[i].add();
      loop_turn_us_sum.add(us);
    }
  }
};

// Appends the Prometheus text exposition (version 0.0.4) of every reactor's
// counters to `out`, one series per reactor (label reactor="i"). Any thread.
void write_prometheus(std::string& out, std::span<const ReactorMetrics* const> reactors);
// The "# HELP" and "# TYPE" lines of one series, for series written elsewhere.
void write_prometheus_header(std::string& out, const char* name, const char* type, const char* help);

// Plain copy of the counters, summed over reactors by Server::snapshot().
struct MetricsSnapshot {
  std::uint64_t links_open = 0, links_accepted = 0, links_refused = 0, handshakes_failed = 0;
  std::uint64_t messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t queued_bytes = 0, queued_bytes_high_water = 0;
  std::uint64_t send_backpressured = 0, send_dropped = 0, inbound_dropped = 0;
  std::uint64_t paused_links = 0, read_pauses = 0, rate_limited = 0, pool_exhausted = 0;
  std::uint64_t loop_wakeups = 0, accept_backoffs = 0, accept_calls = 0;
  std::uint64_t commands = 0, commands_rejected = 0, handler_exceptions = 0;
  std::uint64_t out_of_memory = 0, write_calls = 0, partial_writes = 0, pages_returned = 0;
  std::uint64_t receive_bundles = 0;
  std::uint64_t tls_handshakes = 0, tls_failed_timeout = 0, tls_failed_protocol = 0;
  std::uint64_t tls_failed_certificate = 0, tls_failed_plaintext = 0;
  std::uint64_t tls_handshakes_pending = 0, tls_handshakes_queued = 0, tls_handshakes_shed = 0;
  std::uint64_t tls_truncated = 0;
  std::array<std::uint64_t, tls_handshake_bounds_us.size()> tls_handshake_us{};
  std::uint64_t topic_delivered = 0, topic_dropped = 0, topic_gaps = 0, topic_link_cap = 0;
  std::uint64_t deflate_links = 0, deflate_context_bytes = 0, deflate_contexts = 0, deflate_shared_fallbacks = 0, deflate_in_wire_bytes = 0, deflate_in_plain_bytes = 0, deflate_out_plain_bytes = 0, deflate_out_wire_bytes = 0, deflate_calls = 0, deflate_rsv1_errors = 0, deflate_corrupt = 0, deflate_too_big = 0;
  std::array<std::uint64_t, close_reason_count> closes{};
  std::array<std::uint64_t, loop_turn_bounds_us.size()> loop_turn_us{};

  void add(const ReactorMetrics& m) noexcept;
  std::uint64_t closed(CloseReason r) const noexcept { return closes[static_cast<std::size_t>(r)]; }
};

}  // namespace ringlink
