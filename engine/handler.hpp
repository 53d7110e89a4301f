// Handler: what an application implements to receive a server's (or a
// client's) events. Every callback runs on the reactor thread that owns the
// link, except on_worker_message which runs on a worker thread. A callback
// that throws closes only its own link (1011) and is counted; the reactor
// carries on.
//
//   struct Echo : ringlink::Handler {
//     void on_message(ringlink::Link& link, std::span<std::byte> msg, ringlink::Opcode op) override {
//       (void)link.send(msg, op);   // see examples/echo.cpp for the lossless version
//     }
//   };
//
// One Handler serves every reactor, so its callbacks run concurrently on
// several threads (one per reactor, plus the workers): state shared between
// links needs a lock or must be per link (Link::user_data). Callbacks for
// one link never overlap, and run in the order the events happened.
//
// Borrowed, never owned: a Link& and every span or string_view passed in are
// valid until the callback returns. Keep the LinkId, not the Link&.
// Callbacks must not block: a reactor thread serves every other link too.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "engine/types.hpp"
#include "protocol/frame.hpp"
#include "protocol/handshake_server.hpp"

namespace ringlink {

class Link;

// The answer to an upgrade request. The views are read after on_upgrade
// returns, before any other callback on that thread: point them at static
// text, at the request (`req` outlives that moment), or at memory the
// handler keeps; never at a local std::string.
struct UpgradeDecision {
  std::uint16_t status = 101;           // 101 accepts; anything else refuses with that status
  std::string_view subprotocol{};       // accepted subprotocol (must be one offered), or empty
  std::string_view body{};              // refusal body (text/plain)

  static UpgradeDecision accept(std::string_view subprotocol = {}) noexcept { return {101, subprotocol, {}}; }
  static UpgradeDecision refuse(std::uint16_t status, std::string_view body = {}) noexcept { return {status, {}, body}; }
};

// A plain HTTP response for a GET that is not an upgrade (e.g. a page). The
// engine copies both views right after on_http returns, before any other
// callback on that thread, so they must outlive the return itself: static
// text or memory the handler keeps, never a local std::string.
struct HttpResponse {
  std::uint16_t status = 404;
  std::string_view content_type = "text/plain";
  std::string_view body{};
};

class Handler {
 public:
  virtual ~Handler() = default;

  // Reactor thread. A complete, valid upgrade request (method, version, key
  // and Origin already checked). `req` views are valid during the call; the
  // query string is in req.target(). Refuse with a 3xx-5xx status. The
  // subprotocol must be one the client offered (req.protocols()): the engine
  // checks only that it is a token, and answers 500 when it is not.
  // Server links: when this accepts, on_open for the same link runs next on
  // this thread, before any other callback. That is how state computed here
  // (a room, a user) reaches the link: keep it in a thread_local and move it
  // to Link::user_data in on_open (examples/chat.cpp).
  virtual UpgradeDecision on_upgrade(const UpgradeRequestParser& req) {
    (void)req;
    return UpgradeDecision::accept();
  }
  // Reactor thread. A well-formed GET that is not an upgrade (no Upgrade
  // header); `path` has no query string. The engine sends the response with
  // Connection: close and closes; no Link is made and on_close does not run.
  // GET /metrics never gets here when ServerConfig::metrics_endpoint is on.
  // Default: 426.
  virtual HttpResponse on_http(std::string_view path) {
    (void)path;
    return {426, "text/plain", "WebSocket upgrade required\n"};
  }
  // Reactor thread. The link is open (server: after 101 sent; client: after
  // 101 verified); sends are accepted from now on.
  virtual void on_open(Link& link) { (void)link; }
  // Reactor thread (InboundMode::inline_handler). A whole message: text is
  // valid UTF-8, fragments are joined. `payload` is valid until the callback
  // returns (it points into a pooled receive buffer, which the callback may
  // modify in place); copy or send it to keep it.
  virtual void on_message(Link& link, std::span<std::byte> payload, Opcode op) {
    (void)link; (void)payload; (void)op;
  }
  // Worker thread `worker` (InboundMode::workers): a message, copied out of
  // the receive buffer; `payload` is this worker's until the callback
  // returns. Messages of one link always reach the same worker, in order. No
  // Link here: reply with Server::send(id, ...), close with Server::close.
  // May block (only this worker's links wait, and their reactors pause them
  // under InboundPolicy::pause).
  virtual void on_worker_message(LinkId id, std::span<std::byte> payload, Opcode op, unsigned worker) {
    (void)id; (void)payload; (void)op; (void)worker;
  }
  // Reactor thread: a pong arrived (answers to the engine's pings included);
  // `payload` is borrowed until the callback returns.
  virtual void on_pong(Link& link, std::span<std::byte> payload) { (void)link; (void)payload; }
  // Reactor thread: the send queue emptied after a send answered (or, for a
  // cross-thread Server::send, the reactor found) backpressured. Once per
  // such episode; an empty queue takes the next message whatever its size.
  virtual void on_drain(Link& link) { (void)link; }
  // Reactor thread: `link` missed publications first_lost_seq ..
  // first_lost_seq + count - 1 of `topic` (its outbound policy refused or
  // dropped them, or its reactor's command ring was full). Told once per
  // gap, before the next publication of that topic is queued on the link, so
  // a notice sent from here reaches the client ahead of it. Sequence numbers
  // are this server's, per topic (docs/pubsub.md).
  virtual void on_topic_gap(Link& link, std::string_view topic, std::uint64_t first_lost_seq, std::uint64_t count) {
    (void)link; (void)topic; (void)first_lost_seq; (void)count;
  }
  // Reactor thread: a timer set with Link::set_timer expired.
  virtual void on_timer(Link& link) { (void)link; }
  // The link is gone: `code` is the peer's close code, the code we sent, or
  // 1006 when the connection ended without a close handshake; `reason` is
  // the close frame's reason (the peer's, or ours when we started the close).
  // Reactor thread. Runs once per link that reached on_open, last of its
  // callbacks. The Link is valid during the call only; sends are refused.
  // Free what Link::user_data points to here.
  virtual void on_close(Link& link, std::uint16_t code, std::string_view reason) {
    (void)link; (void)code; (void)reason;
  }
  // Reactor thread. Client links: connect or upgrade failed (instead of
  // on_open; on_close does not follow). `user_data` is the request's
  // (ConnectRequest::user_data); `id` is invalid when no link was made at all.
  // `error` is a negative errno (-ECONNREFUSED, -ETIMEDOUT for the handshake
  // timeout, -EMFILE...), or 0 with `http_status` set (a non-101 answer), or
  // 0 and status 0 for an invalid 101 (see the log). wss:// adds
  // -EKEYREJECTED (the server's certificate failed verification: untrusted,
  // expired, another name), -EPROTO (any other TLS failure) and
  // -ENOPROTOOPT (this build has no TLS, or the CA file did not load).
  virtual void on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) {
    (void)id; (void)user_data; (void)error; (void)http_status;
  }
};

}  // namespace ringlink
