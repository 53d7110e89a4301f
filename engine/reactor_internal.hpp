// Helpers the reactor's files share. Reactor-internal.
#pragma once

#include <new>
#include <string_view>

#include "engine/link_state.hpp"
#include "engine/reactor.hpp"
#include "engine/tls_link.hpp"
#include "protocol/handshake_server.hpp"

namespace ringlink {

inline std::uint16_t sendable_or_normal(std::uint16_t code) noexcept {
  return close_code_sendable(code) ? code : close_code::normal;
}

inline CloseReason reason_for_fail(std::uint16_t code) noexcept {
  switch (code) {
    case close_code::invalid_payload: return CloseReason::invalid_utf8;
    case close_code::message_too_big: return CloseReason::too_big;
    default: return CloseReason::protocol_error;
  }
}

inline std::uint32_t close_timeout_ms(const ServerConfig& cfg) noexcept {
  return cfg.close_timeout_ms ? cfg.close_timeout_ms : 5000;
}

// push_back that reports out of memory instead of throwing.
template <class V, class T>
[[nodiscard]] bool push_nothrow(V& v, T&& x) noexcept {
  try {
    v.push_back(std::forward<T>(x));
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

// A handler's exception ends only its own link: an open link gets 1011, a
// handshaking one a 500.
template <class F>
bool Reactor::call_handler(Link& l, F&& f) noexcept {
  try {
    f();
    return true;
  } catch (...) {
    metrics_.handler_exceptions.add();
    if (l.is(LinkState::open)) {
      send_close_and_wait(l, close_code::internal_error, "handler error", CloseReason::handler_exception);
    } else if (l.is(LinkState::handshaking)) {
      send_refusal_and_close(l, 500, {}, CloseReason::handler_exception);
    }
    return false;
  }
}

}  // namespace ringlink
