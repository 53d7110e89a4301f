#include "engine/metrics.hpp"

namespace ringlink {

const char* to_string(CloseReason r) noexcept {
  switch (r) {
    case CloseReason::peer_close: return "peer_close";
    case CloseReason::local_close: return "local_close";
    case CloseReason::protocol_error: return "protocol_error";
    case CloseReason::invalid_utf8: return "invalid_utf8";
    case CloseReason::too_big: return "too_big";
    case CloseReason::policy: return "policy";
    case CloseReason::slow_consumer: return "slow_consumer";
    case CloseReason::handler_exception: return "handler_exception";
    case CloseReason::handshake_refused: return "handshake_refused";
    case CloseReason::handshake_timeout: return "handshake_timeout";
    case CloseReason::idle_timeout: return "idle_timeout";
    case CloseReason::ping_timeout: return "ping_timeout";
    case CloseReason::close_timeout: return "close_timeout";
    case CloseReason::io_error: return "io_error";
    case CloseReason::peer_eof: return "peer_eof";
    case CloseReason::shutdown: return "shutdown";
    case CloseReason::count_: break;
  }
  return "unknown";
}

void MetricsSnapshot::add(const ReactorMetrics& m) noexcept {
  links_open += m.links_open.get();
  links_accepted += m.links_accepted.get();
  links_refused += m.links_refused.get();
  handshakes_failed += m.handshakes_failed.get();
  messages_in += m.messages_in.get();
  messages_out += m.messages_out.get();
  bytes_in += m.bytes_in.get();
  bytes_out += m.bytes_out.get();
  queued_bytes += m.queued_bytes.get();
  queued_bytes_high_water += m.queued_bytes_high_water.get();
  send_backpressured += m.send_backpressured.get();
  send_dropped += m.send_dropped.get();
  inbound_dropped += m.inbound_dropped.get();
  paused_links += m.paused_links.get();
  read_pauses += m.read_pauses.get();
  rate_limited += m.rate_limited.get();
  pool_exhausted += m.pool_exhausted.get();
  loop_wakeups += m.loop_wakeups.get();
  accept_backoffs += m.accept_backoffs.get();
  accept_calls += m.accept_calls.get();
  commands += m.commands.get();
  commands_rejected += m.commands_rejected.get();
  handler_exceptions += m.handler_exceptions.get();
  for (std::size_t i = 0; i < closes.size(); ++i) closes[i] += m.closes[i].get();
  for (std::size_t i = 0; i < loop_turn_us.size(); ++i) loop_turn_us[i] += m.loop_turn_us[i].get();
}

}  // namespace ringlink
