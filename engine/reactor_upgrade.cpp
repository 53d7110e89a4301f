// The upgrade, both sides: the server reads a request and answers 101, a
// refusal, or plain HTTP (and /metrics); the client checks the server's 101.
// Either way open_link() ends the handshake.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "engine/log.hpp"
#include "engine/reactor_internal.hpp"
#include "engine/server.hpp"

namespace ringlink {

namespace {

bool origin_allowed(const ServerConfig& cfg, std::string_view origin) noexcept {
  if (cfg.allowed_origins.empty()) return true;
  return std::find(cfg.allowed_origins.begin(), cfg.allowed_origins.end(), origin) != cfg.allowed_origins.end();
}

}  // namespace

// Server side. True when the link opened.
bool Reactor::serve_upgrade(Link& l) noexcept {
  LinkAux* aux = aux_of(l);
  if (aux != nullptr && !aux->handshake) aux->handshake.reset(new (std::nothrow) HandshakeState());
  if (aux == nullptr || !aux->handshake) {
    out_of_memory(l);
    return false;
  }
  auto& req = aux->handshake->request;
  const std::string_view data(reinterpret_cast<const char*>(l.rbuf_ + l.rstart_), l.rlen_);
  const ParseStatus st = req.parse(data);
  if (st == ParseStatus::incomplete) return false;

  if (st == ParseStatus::error) {
    // A well-formed GET that simply is not an upgrade is plain HTTP.
    if (req.method() == "GET" && !req.header("Upgrade").has_value() && req.head_length() > 0) {
      serve_plain_http(l);
    } else {
      metrics_.handshakes_failed.add();
      send_refusal_and_close(l, req.error_status(), req.error_reason(), CloseReason::handshake_refused);
    }
    return false;
  }

  if (!origin_allowed(cfg_, req.origin())) {
    metrics_.links_refused.add();
    send_refusal_and_close(l, 403, "origin not allowed\n", CloseReason::handshake_refused);
    return false;
  }
  UpgradeDecision decision;
  if (!call_handler(l, [&] { decision = handler_.on_upgrade(req); })) return false;
  if (decision.status != 101) {
    metrics_.links_refused.add();
    send_refusal_and_close(l, decision.status, decision.body, CloseReason::handshake_refused);
    return false;
  }
  std::array<char, 128> ext;
  const std::size_t ext_len = negotiate_deflate_for(l, req, ext);
  std::array<char, 1024> out;
  const std::size_t n =
      write_accept_response(out, req.key(), decision.subprotocol, std::string_view(ext.data(), ext_len));
  if (n == 0) {
    metrics_.links_refused.add();
    send_refusal_and_close(l, 500, {}, CloseReason::handshake_refused);
    return false;
  }
  const std::size_t head = req.head_length();
  l.rstart_ += static_cast<std::uint32_t>(head);
  l.rlen_ -= static_cast<std::uint32_t>(head);
  aux->handshake.reset();  // `req` dies here
  l.state_ = LinkState::open;
  send_http(l, std::string_view(out.data(), n));
  // The 101 leaves now, not at the turn's end: a connect storm would
  // otherwise hold a send queue (15 KiB) per link accepted in the turn until
  // the flush, or on io_uring until the completion, and the allocator keeps
  // what such a peak touched long after. A fresh socket takes ~200 bytes at
  // once; what it does not take goes the usual way.
  flush(l, true);
  return l.is(LinkState::open) && open_link(l);
}

// A GET without an upgrade: /metrics (when enabled) or the handler's
// on_http answer, then the link ends as after a refusal.
void Reactor::serve_plain_http(Link& l) noexcept {
  const UpgradeRequestParser& req = l.aux_->handshake->request;
  std::string text;
  try {
    if (cfg_.metrics_endpoint && req.path() == "/metrics") {
      std::string body;
      if (server_ != nullptr) {
        server_->write_metrics(body);
      } else {
        const ReactorMetrics* mine[] = {&metrics_};
        write_prometheus(body, mine);
      }
      append_http_response(text, 200, "text/plain; version=0.0.4", body);
    } else {
      HttpResponse resp;
      const bool handled = call_handler(l, [&] { resp = handler_.on_http(req.path()); });
      if (!handled || l.closed()) return;
      append_http_response(text, resp.status, resp.content_type, resp.body);
    }
  } catch (const std::bad_alloc&) {
    out_of_memory(l);
    return;
  }
  send_http(l, text);
  l.close_reason_ = CloseReason::handshake_refused;
  l.rlen_ = 0;
  close_after_last_frame(l);
}

// Answers a handshaking link with an HTTP refusal and ends it: the response
// is sent, then the server half-closes and waits for the peer. The caller
// counts it (a refusal, a failed handshake, or neither).
void Reactor::send_refusal_and_close(Link& l, std::uint16_t status, std::string_view body, CloseReason why) noexcept {
  if constexpr (config::tls) {
    // Before the TLS handshake there is no channel to answer on.
    if (l.has(Link::f_tls) && !tls_of(l)->handshake_done()) {
      abort_link(l, why, close_code::abnormal);
      return;
    }
  }
  std::array<char, 1024> out;
  const std::size_t n = write_refusal(out, status, body.substr(0, 512));
  l.rlen_ = 0;
  send_http(l, std::string_view(out.data(), n));
  if (l.closed()) return;
  enter_closing(l, l.close_code_, why, {});
  close_after_last_frame(l);
}

// Client side: checks the server's answer to our request. True when the
// link opened.
bool Reactor::verify_upgrade(Link& l) noexcept {
  HandshakeState* hs = l.aux_->handshake.get();
  const std::string_view data(reinterpret_cast<const char*>(l.rbuf_ + l.rstart_), l.rlen_);
  const ParseStatus st = hs->response->parse(data);
  if (st == ParseStatus::incomplete) return false;
  if (st == ParseStatus::error) {
    const std::uint16_t status = hs->response->status();
    RINGLINK_LOG(LogLevel::debug, "reactor %u: upgrade refused: %s (status %u)", index_,
                 to_string(hs->response->error()), status);
    abort_link(l, CloseReason::handshake_refused, status);
    return false;
  }
  if (hs->deflate_offer && !accept_deflate_answer(l, *hs->response, *hs->deflate_offer)) {
    abort_link(l, CloseReason::handshake_refused, close_code::mandatory_extension);
    return false;
  }
  const std::size_t head = hs->response->head_length();
  l.rstart_ += static_cast<std::uint32_t>(head);
  l.rlen_ -= static_cast<std::uint32_t>(head);
  l.aux_->handshake.reset();
  l.state_ = LinkState::open;
  return open_link(l);
}

// Client side: queues the upgrade request of a link still connecting. False
// when out of memory.
bool Reactor::send_upgrade_request(Link& l, const ConnectRequest& req) noexcept {
  LinkAux* aux = aux_of(l);
  if (aux == nullptr) return false;
  aux->handshake.reset(new (std::nothrow) HandshakeState());
  HandshakeState* hs = aux->handshake.get();
  if (hs == nullptr) return false;
  std::array<std::byte, 16> nonce;
  for (std::size_t i = 0; i < nonce.size(); i += 8) {
    const std::uint64_t r = rng_();
    std::memcpy(nonce.data() + i, &r, 8);
  }
  std::array<char, 2048> out;
  std::size_t n = 0;
  try {
    hs->key = make_client_key(nonce);
    hs->offered_protocols = req.protocols;
    hs->response.emplace(*hs->key, hs->offered_protocols);
    UpgradeRequestSpec spec;
    spec.host = req.host_header;
    spec.path = req.path;
    spec.origin = req.origin;
    spec.protocols = req.protocols;
    std::string extensions;
    if (config::deflate && req.deflate) {
      hs->deflate_offer = deflate_offer_for(req);
      std::array<char, 128> offer;
      const std::size_t k = write_deflate_offer(offer, *hs->deflate_offer);
      extensions = "Sec-WebSocket-Extensions: ";
      extensions.append(offer.data(), k);
      extensions += "\r\n";
      spec.extra_headers = extensions;
      hs->response->allow_extensions();
    }
    n = write_upgrade_request(out, spec, *hs->key);
  } catch (const std::bad_alloc&) {
    return false;
  }
  // With epoll the first writable edge (the connection is made) sends it; a
  // completion backend's send waits for the connection by itself.
  if (backend_.inline_sends()) l.set(Link::f_want_write);
  send_http(l, std::string_view(out.data(), n));
  return true;
}

// Both roles: the upgrade is done and the link carries frames from now on.
bool Reactor::open_link(Link& l) noexcept {
  l.set(Link::f_opened);
  ++open_links_;
  metrics_.links_open.add();
  l.last_rx_ms_ = ms32();
  if (cfg_.rate_messages_per_s > 0 || cfg_.rate_bytes_per_s > 0) {
    LinkAux* aux = aux_of(l);
    if (aux == nullptr) {
      out_of_memory(l);
      return false;
    }
    aux->rate.emplace(RateState{TokenBucket(cfg_.rate_messages_per_s, std::max(cfg_.rate_burst_messages, 1.0)),
                                TokenBucket(cfg_.rate_bytes_per_s, std::max(cfg_.rate_burst_bytes, 1.0))});
  }
  trim_aux(l);
  arm_timer(l);
  call_handler(l, [&] { handler_.on_open(l); });
  return l.is(LinkState::open);
}

}  // namespace ringlink
