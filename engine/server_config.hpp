// Runtime configuration: what differs per deployment. Compile-time choices
// (backend, framing, allocator, buffer and ring sizes) are meson options; see
// ringlink_config.hpp and the README.
//
//   ringlink::ServerConfig cfg;
//   cfg.port = 9001;
//   cfg.outbound_policy = ringlink::OutboundPolicy::drop_oldest;
//   ringlink::Server server{cfg, handler};   // copies cfg: later edits change nothing
//
// start() refuses what it cannot use (a host that is not an address: -EINVAL;
// a port in use: -EADDRINUSE); reactors is capped at 256; the rest is taken
// as given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tls_config.hpp"
#include "engine/deflate_config.hpp"
#include "engine/types.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

struct ServerConfig {
  std::string host = "127.0.0.1";     // address to listen on
  std::uint16_t port = 0;             // 0: the kernel picks; Server::port() tells
  unsigned reactors = 0;              // 0: one per online core
  int backlog = 4096;
  bool listen = true;                 // false: client-only engine (no listener)
  // SO_REUSEPORT even with one reactor, so other processes (ringlink-echo
  // --processes) can listen on the same port; several reactors always set it.
  bool reuse_port = false;
  // wss://: with tls.cert_file set, a TLS listener on tls.port too (see
  // engine/tls_config.hpp). The plain listener on `port` stays unless
  // listen_plain is false. A build without the `tls` feature refuses a
  // TLS configuration at start() (-ENOPROTOOPT).
  TlsConfig tls;
  bool listen_plain = true;
  // TLS handshake admission, per reactor: a handshake step (the ClientHello
  // costs about a millisecond of CPU, an echo a microsecond) runs only while
  // the turn's budget lasts; the rest wait, oldest first, in a bounded queue
  // (the handshake timeout covers the wait). A full queue refuses the new
  // connection (counted). So a connect storm cannot starve open links.
  std::uint32_t tls_handshakes_per_turn = 16;
  std::uint32_t tls_handshake_queue = 4096;

  // Timeouts in milliseconds; 0 disables.
  std::uint32_t handshake_timeout_ms = 10'000;  // TCP accept -> complete upgrade
  std::uint32_t idle_timeout_ms = 0;            // no message from the peer -> close 1001
  // Keepalive: a peer whose machine vanished (no FIN, no RST) is otherwise
  // held forever. Quiet this long -> we send a ping; nothing back within
  // pong_timeout -> close 1011, and the socket goes after close_timeout: a
  // dead link is gone within 35 + 15 + 5 = 55 s (each deadline may be up to
  // Reactor::timer_slack_ms late). Busy links never ping; a ping and its pong
  // cost the server 12-16 us here, so 10,000 quiet links cost 0.04-0.05 s of
  // CPU per 10 s (bench/scripts/keepalive_idle.sh, bench/data/split/).
  std::uint32_t ping_interval_ms = 35'000;
  std::uint32_t pong_timeout_ms = 15'000;
  std::uint32_t close_timeout_ms = 5'000;       // our close frame -> peer's reply or TCP close

  // Outbound: per-link cap on queued bytes; slot count is the send_ring_slots flag.
  std::uint32_t max_queued_bytes = 1u << 20;
  OutboundPolicy outbound_policy = OutboundPolicy::reject;
  std::uint16_t close_slow_code = close_code::policy_violation;  // or try_again_later (1013)

  // Inbound.
  InboundMode inbound_mode = InboundMode::inline_handler;
  InboundPolicy inbound_policy = InboundPolicy::pause;
  unsigned workers = 0;               // worker threads for InboundMode::workers (0: 1)
  // The worker threads that run: `workers` (at least 1) in InboundMode::workers, else none.
  unsigned worker_threads() const noexcept {
    return inbound_mode == InboundMode::workers ? (workers == 0 ? 1 : workers) : 0;
  }
  // Policy pause: most messages one link may have waiting in its worker's
  // ring; past it that link alone pauses, so a flooding link cannot queue
  // the other links' messages behind thousands of its own. 0: no quota.
  std::uint32_t handoff_quota = 8;
  // Per-link inbound rate limit (token buckets); 0 disables. Enforced by
  // pausing reads until tokens return, never by dropping.
  double rate_messages_per_s = 0, rate_burst_messages = 0;
  double rate_bytes_per_s = 0, rate_burst_bytes = 0;

  // Memory caps per reactor.
  std::uint32_t max_links_per_reactor = 1u << 20;
  std::uint32_t pool_max_chunks = 16384;        // x chunk_size bytes of receive buffers

  bool tcp_nodelay = true;
  std::uint32_t accept_backoff_ms = 100;        // after EMFILE/ENFILE
  // Allowed Origin values for browsers; empty: any. A mismatch is refused 403.
  std::vector<std::string> allowed_origins;
  // Most connections open at once from one peer IP address, over all
  // reactors; 0: no limit. Beyond it a connection is answered 429 and closed.
  // When set, every link keeps its address in its side state (about 80 bytes).
  std::uint32_t max_links_per_ip = 0;
  // Serve GET /metrics (Prometheus text, every reactor's counters) on the
  // same listener, before Handler::on_http sees the request. Anyone who can
  // reach the port can read it: listen on a private address, or leave it off.
  bool metrics_endpoint = false;

  // Topics (Server::subscribe/publish, docs/pubsub.md). Refusals past
  // either cap are counted (ringlink_topic_refused_total).
  std::uint32_t max_topics = 100'000;          // topics with subscribers on this server
  std::uint32_t max_topics_per_link = 1'024;
  // Topics across processes: "redis://host:port" (or "nats://host:port")
  // of a broker every node uses; empty: this server's topics stay local.
  // Channel `<broker_prefix>:<topic>`. start() answers -EPROTONOSUPPORT for
  // a scheme this build lacks (meson features redis, nats) and -EINVAL for
  // a malformed URL; an unreachable broker is no error (the bridge retries).
  std::string broker;
  std::string broker_prefix = "ringlink";
  std::uint32_t broker_max_queued = 65'536;     // publications waiting to be forwarded
  std::uint32_t broker_backoff_max_ms = 5'000;  // reconnect backoff cap (from 100 ms, doubling)
  // permessage-deflate (RFC 7692): off unless deflate.enabled, and only
  // where the meson feature `deflate` is built (engine/deflate_config.hpp).
  DeflateConfig deflate;
};

}  // namespace ringlink
