#include "engine/metrics.hpp"

#include <cstdio>

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
    case CloseReason::out_of_memory: return "out_of_memory";
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
  out_of_memory += m.out_of_memory.get();
  write_calls += m.write_calls.get();
  partial_writes += m.partial_writes.get();
  pages_returned += m.pages_returned.get();
  receive_bundles += m.receive_bundles.get();
  tls_handshakes += m.tls_handshakes.get();
  tls_failed_timeout += m.tls_failed_timeout.get();
  tls_failed_protocol += m.tls_failed_protocol.get();
  tls_failed_certificate += m.tls_failed_certificate.get();
  tls_failed_plaintext += m.tls_failed_plaintext.get();
  tls_handshakes_pending += m.tls_handshakes_pending.get();
  tls_handshakes_queued += m.tls_handshakes_queued.get();
  tls_handshakes_shed += m.tls_handshakes_shed.get();
  tls_truncated += m.tls_truncated.get();
  for (std::size_t i = 0; i < tls_handshake_us.size(); ++i) tls_handshake_us[i] += m.tls_handshake_us[i].get();
  topic_delivered += m.topic_delivered.get();
  topic_dropped += m.topic_dropped.get();
  topic_gaps += m.topic_gaps.get();
  topic_link_cap += m.topic_link_cap.get();
  deflate_links += m.deflate_links.get();
  deflate_context_bytes += m.deflate_context_bytes.get();
  deflate_contexts += m.deflate_contexts.get();
  deflate_shared_fallbacks += m.deflate_shared_fallbacks.get();
  deflate_in_wire_bytes += m.deflate_in_wire_bytes.get();
  deflate_in_plain_bytes += m.deflate_in_plain_bytes.get();
  deflate_out_plain_bytes += m.deflate_out_plain_bytes.get();
  deflate_out_wire_bytes += m.deflate_out_wire_bytes.get();
  deflate_calls += m.deflate_calls.get();
  deflate_rsv1_errors += m.deflate_rsv1_errors.get();
  deflate_corrupt += m.deflate_corrupt.get();
  deflate_too_big += m.deflate_too_big.get();
  for (std::size_t i = 0; i < closes.size(); ++i) closes[i] += m.closes[i].get();
  for (std::size_t i = 0; i < loop_turn_us.size(); ++i) loop_turn_us[i] += m.loop_turn_us[i].get();
}

}  // namespace ringlink

namespace ringlink {

namespace {

struct Series {
  const char* name;
  const char* type;  // counter or gauge
  const char* help;
  const Counter ReactorMetrics::*field;
};

constexpr Series kSeries[] = {
    {"ringlink_links_open", "gauge", "Links open now.", &ReactorMetrics::links_open},
    {"ringlink_links_accepted_total", "counter", "TCP connections accepted.", &ReactorMetrics::links_accepted},
    {"ringlink_links_refused_total", "counter", "Upgrades refused with an HTTP status (hook, origin), or no slot left.",
     &ReactorMetrics::links_refused},
    {"ringlink_handshakes_failed_total", "counter", "Malformed or timed-out upgrade requests.",
     &ReactorMetrics::handshakes_failed},
    {"ringlink_messages_in_total", "counter", "Messages received.", &ReactorMetrics::messages_in},
    {"ringlink_messages_out_total", "counter", "Messages queued or written.", &ReactorMetrics::messages_out},
    {"ringlink_bytes_in_total", "counter", "Payload bytes received.", &ReactorMetrics::bytes_in},
    {"ringlink_bytes_out_total", "counter", "Bytes written to sockets.", &ReactorMetrics::bytes_out},
    {"ringlink_queued_bytes", "gauge", "Bytes waiting in send queues.", &ReactorMetrics::queued_bytes},
    {"ringlink_queued_bytes_high_water", "gauge", "Most bytes ever waiting in send queues.",
     &ReactorMetrics::queued_bytes_high_water},
    {"ringlink_send_backpressured_total", "counter", "Sends refused because a send queue was full.",
     &ReactorMetrics::send_backpressured},
    {"ringlink_send_dropped_total", "counter", "Queued frames dropped by the drop-oldest policy.",
     &ReactorMetrics::send_dropped},
    {"ringlink_inbound_dropped_total", "counter", "Messages dropped by the drop-newest inbound policy.",
     &ReactorMetrics::inbound_dropped},
    {"ringlink_paused_links", "gauge", "Links whose reading is paused now.", &ReactorMetrics::paused_links},
    {"ringlink_read_pauses_total", "counter", "Times a link's reading was paused.", &ReactorMetrics::read_pauses},
    {"ringlink_rate_limited_total", "counter", "Pauses caused by the inbound rate limit.", &ReactorMetrics::rate_limited},
    {"ringlink_pool_exhausted_total", "counter", "Reads deferred because the chunk pool was at its cap.",
     &ReactorMetrics::pool_exhausted},
    {"ringlink_loop_wakeups_total", "counter", "Reactor loop turns.", &ReactorMetrics::loop_wakeups},
    {"ringlink_accept_backoffs_total", "counter", "Accept back-offs after EMFILE/ENFILE.",
     &ReactorMetrics::accept_backoffs},
    {"ringlink_accept_calls_total", "counter", "accept4 calls.", &ReactorMetrics::accept_calls},
    {"ringlink_commands_total", "counter", "Cross-thread commands run.", &ReactorMetrics::commands},
    {"ringlink_commands_rejected_total", "counter", "Cross-thread commands refused: ring full.",
     &ReactorMetrics::commands_rejected},
    {"ringlink_handler_exceptions_total", "counter", "Handler callbacks that threw.",
     &ReactorMetrics::handler_exceptions},
    {"ringlink_out_of_memory_total", "counter", "Allocations refused; each affected one link only.",
     &ReactorMetrics::out_of_memory},
    {"ringlink_write_calls_total", "counter", "Gather writes issued: one per link per turn when corked.",
     &ReactorMetrics::write_calls},
    {"ringlink_partial_writes_total", "counter", "Writes the kernel took only in part (socket buffer full).",
     &ReactorMetrics::partial_writes},
    {"ringlink_pages_returned_total", "counter",
     "Pages of idle buffers handed back to the kernel once the load went away.", &ReactorMetrics::pages_returned},
    {"ringlink_receive_bundles_total", "counter",
     "io_uring receives that filled several buffers in one completion (kernel 6.10+).", &ReactorMetrics::receive_bundles},
    {"ringlink_tls_handshakes_total", "counter", "TLS handshakes completed.", &ReactorMetrics::tls_handshakes},
    {"ringlink_tls_handshakes_pending", "gauge", "TLS handshake steps waiting for the turn's admission budget.",
     &ReactorMetrics::tls_handshakes_pending},
    {"ringlink_tls_handshakes_queued_total", "counter", "TLS handshake steps that waited for admission.",
     &ReactorMetrics::tls_handshakes_queued},
    {"ringlink_tls_handshakes_shed_total", "counter", "TLS connections refused because the admission queue was full.",
     &ReactorMetrics::tls_handshakes_shed},
    {"ringlink_tls_truncated_total", "counter",
     "TLS links whose peer's stream ended (FIN or reset) in the middle of a record.", &ReactorMetrics::tls_truncated},
    {"ringlink_topic_delivered_total", "counter", "Publications queued on subscribers' links.",
     &ReactorMetrics::topic_delivered},
    {"ringlink_topic_dropped_total", "counter",
     "Publications subscribers lost: refused or dropped by their outbound policy, or their reactor's ring was full.",
     &ReactorMetrics::topic_dropped},
    {"ringlink_topic_gaps_total", "counter", "Gaps reported to the application (on_topic_gap).",
     &ReactorMetrics::topic_gaps},
    {"ringlink_topic_link_cap_total", "counter", "Subscribes refused: the link had max_topics_per_link topics.",
     &ReactorMetrics::topic_link_cap},
    {"ringlink_deflate_links", "gauge", "Links with permessage-deflate in use.", &ReactorMetrics::deflate_links},
    {"ringlink_deflate_context_bytes", "gauge", "Bytes of zlib contexts this reactor holds (dedicated and shared).", &ReactorMetrics::deflate_context_bytes},
    {"ringlink_deflate_contexts", "gauge", "zlib contexts this reactor holds (dedicated and shared).", &ReactorMetrics::deflate_contexts},
    {"ringlink_deflate_shared_fallbacks_total", "counter", "Links given no context takeover because the memory budget was spent.", &ReactorMetrics::deflate_shared_fallbacks},
    {"ringlink_deflate_in_wire_bytes_total", "counter", "Compressed payload bytes received.", &ReactorMetrics::deflate_in_wire_bytes},
    {"ringlink_deflate_in_plain_bytes_total", "counter", "Those bytes once inflated.", &ReactorMetrics::deflate_in_plain_bytes},
    {"ringlink_deflate_out_plain_bytes_total", "counter", "Payload bytes compressed for sending.", &ReactorMetrics::deflate_out_plain_bytes},
    {"ringlink_deflate_out_wire_bytes_total", "counter", "Those bytes once deflated.", &ReactorMetrics::deflate_out_wire_bytes},
    {"ringlink_deflate_calls_total", "counter", "Messages deflated (one per broadcast or publication shared by many links).", &ReactorMetrics::deflate_calls},
    {"ringlink_deflate_rsv1_errors_total", "counter", "Links failed 1002: RSV1 without the extension, on a control frame or continuation.", &ReactorMetrics::deflate_rsv1_errors},
    {"ringlink_deflate_corrupt_total", "counter", "Links failed 1007: bad deflate data or a missing tail.", &ReactorMetrics::deflate_corrupt},
    {"ringlink_deflate_too_big_total", "counter", "Links failed 1009: a message inflated past the size cap.", &ReactorMetrics::deflate_too_big},
};

// TLS handshake failures, one series per reason.
struct TlsFailure {
  const char* reason;
  const Counter ReactorMetrics::*field;
};
constexpr TlsFailure kTlsFailures[] = {
    {"timeout", &ReactorMetrics::tls_failed_timeout},
    {"protocol", &ReactorMetrics::tls_failed_protocol},
    {"certificate", &ReactorMetrics::tls_failed_certificate},
    {"plaintext", &ReactorMetrics::tls_failed_plaintext},
};

void header(std::string& out, const char* name, const char* type, const char* help) {
  write_prometheus_header(out, name, type, help);
}

void sample(std::string& out, const char* name, const char* suffix, unsigned reactor, const char* extra_label,
            const std::string& extra_value, const std::string& value) {
  out += name;
  out += suffix;
  out += "{reactor=\"";
  out += std::to_string(reactor);
  out += '"';
  if (extra_label != nullptr) {
    out += ',';
    out += extra_label;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += "} ";
  out += value;
  out += '\n';
}

std::string seconds(std::uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(us) / 1e6);
  return buf;
}

}  // namespace

void write_prometheus(std::string& out, std::span<const ReactorMetrics* const> reactors) {
  for (const Series& s : kSeries) {
    header(out, s.name, s.type, s.help);
    for (unsigned r = 0; r < reactors.size(); ++r)
      sample(out, s.name, "", r, nullptr, {}, std::to_string((reactors[r]->*s.field).get()));
  }
  header(out, "ringlink_closes_total", "counter", "Links closed, by reason.");
  for (unsigned r = 0; r < reactors.size(); ++r)
    for (std::size_t i = 0; i < close_reason_count; ++i)
      sample(out, "ringlink_closes_total", "", r, "reason", to_string(static_cast<CloseReason>(i)),
             std::to_string(reactors[r]->closes[i].get()));
  header(out, "ringlink_tls_handshakes_failed_total", "counter", "TLS handshakes that failed, by reason.");
  for (unsigned r = 0; r < reactors.size(); ++r)
    for (const TlsFailure& f : kTlsFailures)
      sample(out, "ringlink_tls_handshakes_failed_total", "", r, "reason", f.reason,
             std::to_string((reactors[r]->*f.field).get()));
  header(out, "ringlink_tls_handshake_seconds", "histogram", "Time from accept (or connect) to the TLS handshake's end.");
  for (unsigned r = 0; r < reactors.size(); ++r) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < tls_handshake_bounds_us.size(); ++i) {
      cumulative += reactors[r]->tls_handshake_us[i].get();
      const bool last = i + 1 == tls_handshake_bounds_us.size();
      sample(out, "ringlink_tls_handshake_seconds", "_bucket", r, "le",
             last ? std::string("+Inf") : seconds(tls_handshake_bounds_us[i]), std::to_string(cumulative));
    }
    sample(out, "ringlink_tls_handshake_seconds", "_sum", r, nullptr, {}, seconds(reactors[r]->tls_handshake_us_sum.get()));
    sample(out, "ringlink_tls_handshake_seconds", "_count", r, nullptr, {}, std::to_string(cumulative));
  }
  header(out, "ringlink_loop_turn_seconds", "histogram", "Time a reactor spends on one loop turn.");
  for (unsigned r = 0; r < reactors.size(); ++r) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < loop_turn_bounds_us.size(); ++i) {
      cumulative += reactors[r]->loop_turn_us[i].get();
      const bool last = i + 1 == loop_turn_bounds_us.size();
      sample(out, "ringlink_loop_turn_seconds", "_bucket", r, "le", last ? std::string("+Inf") : seconds(loop_turn_bounds_us[i]),
             std::to_string(cumulative));
    }
    sample(out, "ringlink_loop_turn_seconds", "_sum", r, nullptr, {}, seconds(reactors[r]->loop_turn_us_sum.get()));
    sample(out, "ringlink_loop_turn_seconds", "_count", r, nullptr, {}, std::to_string(cumulative));
  }
}

void write_prometheus_header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace ringlink
