// Handler: what an application implements to receive a server's (or a
// client's) events. Every callback runs on the reactor thread that owns the
// link, except on_worker_message which runs on a worker thread. A callback
// that throws closes only its own link (1011) and is counted; the reactor
// carries on.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "engine/types.hpp"
#include "protocol/frame.hpp"
#include "protocol/handshake_server.hpp"

namespace ringlink {

class Link;

// The answer to an upgrade request.
struct UpgradeDecision {
  std::uint16_t status = 101;           // 101 accepts; anything else refuses with that status
  std::string_view subprotocol{};       // accepted subprotocol (must be one offered), or empty
  std::string_view body{};              // refusal body (text/plain)

  static UpgradeDecision accept(std::string_view subprotocol = {}) noexcept { return {101, subprotocol, {}}; }
  static UpgradeDecision refuse(std::uint16_t status, std::string_view body = {}) noexcept { return {status, {}, body}; }
};

// A plain HTTP response for a GET that is not an upgrade (e.g. a page).
struct HttpResponse {
  std::uint16_t status = 404;
  std::string_view content_type = "text/plain";
  std::string_view body{};              // copied by the engine before the callback's caller returns
};

class Handler {
 public:
  virtual ~Handler() = default;

  // A complete, valid upgrade request. `req` views are valid during the call.
  virtual UpgradeDecision on_upgrade(const UpgradeRequestParser& req) {
    (void)req;
    return UpgradeDecision::accept();
  }
  // A well-formed GET that is not an upgrade (no Upgrade header). Default: 426.
  virtual HttpResponse on_http(std::string_view path) {
    (void)path;
    return {426, "text/plain", "WebSocket upgrade required\n"};
  }
  // The link is open (server: after 101 sent; client: after 101 verified).
  virtual void on_open(Link& link) { (void)link; }
  // A whole message. `payload` is valid until the callback returns (it points
  // into a pooled receive buffer); copy or send it to keep it.
  virtual void on_message(Link& link, std::span<std::byte> payload, Opcode op) {
    (void)link; (void)payload; (void)op;
  }
  // InboundMode::workers: a message on worker thread `worker`. `payload` is
  // valid until the callback returns. Reply with Server::send(id, ...).
  virtual void on_worker_message(LinkId id, std::span<std::byte> payload, Opcode op, unsigned worker) {
    (void)id; (void)payload; (void)op; (void)worker;
  }
  virtual void on_pong(Link& link, std::span<std::byte> payload) { (void)link; (void)payload; }
  // The send queue emptied after a send() answered backpressured.
  virtual void on_drain(Link& link) { (void)link; }
  // A timer set with Link::set_timer expired.
  virtual void on_timer(Link& link) { (void)link; }
  // The link is gone: `code` is the peer's close code, the code we sent, or
  // 1006 when the connection ended without a close handshake; `reason` is
  // the close frame's reason (the peer's, or ours when we started the close).
  // The Link is valid during the call only; sends are refused.
  virtual void on_close(Link& link, std::uint16_t code, std::string_view reason) {
    (void)link; (void)code; (void)reason;
  }
  // Client links: connect or upgrade failed. `user_data` is the request's
  // (ConnectRequest::user_data); `id` is invalid when no link was made at all.
  // `error` is a negative errno (-ECONNREFUSED, -ETIMEDOUT for the handshake
  // timeout, -EMFILE...), or 0 with `http_status` set (a non-101 answer), or
  // 0 and status 0 for an invalid 101 (see the log).
  virtual void on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) {
    (void)id; (void)user_data; (void)error; (void)http_status;
  }
};

}  // namespace ringlink
