#include "tools/echo/metrics_report.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>

#include "engine/server.hpp"

namespace echo_report {

void print_metrics(const ringlink::MetricsSnapshot& m, std::uint64_t send_retries, std::FILE* out) {
  std::fprintf(out,
               "ringlink-echo metrics: links open %llu, accepted %llu, refused %llu, handshakes failed %llu\n"
               "  messages in %llu, out %llu; bytes in %llu, out %llu; queued %llu (high-water %llu)\n"
               "  backpressured %llu, dropped %llu, paused links %llu, handler exceptions %llu, wakeups %llu\n"
               "  accept calls %llu, accept backoffs %llu\n"
               "  inbound dropped %llu, read pauses %llu, commands rejected %llu, worker send retries %llu\n"
               "  closes:",
               (unsigned long long)m.links_open, (unsigned long long)m.links_accepted,
               (unsigned long long)m.links_refused, (unsigned long long)m.handshakes_failed,
               (unsigned long long)m.messages_in, (unsigned long long)m.messages_out,
               (unsigned long long)m.bytes_in, (unsigned long long)m.bytes_out,
               (unsigned long long)m.queued_bytes, (unsigned long long)m.queued_bytes_high_water,
               (unsigned long long)m.send_backpressured, (unsigned long long)m.send_dropped,
               (unsigned long long)m.paused_links, (unsigned long long)m.handler_exceptions,
               (unsigned long long)m.loop_wakeups, (unsigned long long)m.accept_calls,
               (unsigned long long)m.accept_backoffs, (unsigned long long)m.inbound_dropped,
               (unsigned long long)m.read_pauses, (unsigned long long)m.commands_rejected,
               (unsigned long long)send_retries);
  for (std::size_t i = 0; i < ringlink::close_reason_count; ++i)
    if (m.closes[i] != 0)
      std::fprintf(out, " %s=%llu", ringlink::to_string(static_cast<ringlink::CloseReason>(i)),
                   (unsigned long long)m.closes[i]);
  std::fprintf(out, "\n");
  std::fflush(out);
}

void merge_metrics(ringlink::MetricsSnapshot& to, const ringlink::MetricsSnapshot& from) noexcept {
  // Every field is a std::uint64_t (alone or in an array): summing them as
  // one array keeps a field added later from being forgotten here.
  static_assert(std::is_trivially_copyable_v<ringlink::MetricsSnapshot>);
  static_assert(sizeof(ringlink::MetricsSnapshot) % sizeof(std::uint64_t) == 0);
  constexpr std::size_t n = sizeof(ringlink::MetricsSnapshot) / sizeof(std::uint64_t);
  std::array<std::uint64_t, n> a{}, b{};
  std::memcpy(a.data(), &to, sizeof to);
  std::memcpy(b.data(), &from, sizeof from);
  for (std::size_t i = 0; i < n; ++i) a[i] += b[i];
  const std::uint64_t high_water = std::max(to.queued_bytes_high_water, from.queued_bytes_high_water);
  std::memcpy(static_cast<void*>(&to), a.data(), sizeof to);
  to.queued_bytes_high_water = high_water;
}

}  // namespace echo_report
