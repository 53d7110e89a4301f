// Timers: one wheel node per link, due at the earliest of its deadlines
// (handshake, idle, keepalive ping and pong, rate-limit pause, close, the
// application's timer). A deadline that moved later (new traffic) is found
// when the node fires, which then re-arms for the new time: traffic never
// touches the wheel.
//
// The protocol's own deadlines (handshake, idle, keepalive, close) are
// coarse: rounded up to a multiple of timer_slack_ms of the reactor clock.
// The wheel can only say which slot holds the next node, not in which round,
// so every distinct slot in use costs a wake-up per round; 10,000 quiet links
// with exact keepalive deadlines would wake the reactor hundreds of times a
// second. Rounded, they share 4096 / 256 = 16 slots (a few wake-ups a
// second) and their pings leave in batches. The application's timer and the
// rate-limit pause stay exact.
#include <algorithm>

#include "engine/reactor_internal.hpp"

namespace ringlink {

void Reactor::arm_timer(Link& l) noexcept {
  if (l.closed()) return;
  const std::uint64_t now = now_ms_;
  // Link times are 32-bit reactor milliseconds; their signed distance from
  // now is exact for spans under 24 days, and may point into the future (an
  // application timer).
  auto at = [&](std::uint32_t t32, std::uint32_t after) -> std::uint64_t {
    const std::int64_t delta = static_cast<std::int32_t>(t32 - ms32());
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(now) + delta) + after;
  };
  std::uint64_t due = UINT64_MAX;
  auto consider = [&](std::uint64_t t) { due = std::min(due, t); };
  auto coarse = [](std::uint64_t t) { return (t + timer_slack_ms - 1) / timer_slack_ms * timer_slack_ms; };
  switch (l.state_) {
    case LinkState::handshaking:
      if (cfg_.handshake_timeout_ms) consider(coarse(at(l.mark_ms_, cfg_.handshake_timeout_ms)));
      break;
    case LinkState::open:
      if (cfg_.idle_timeout_ms) consider(coarse(at(l.last_rx_ms_, cfg_.idle_timeout_ms)));
      if (cfg_.ping_interval_ms) {
        if (l.has(Link::f_awaiting_pong)) {
          consider(coarse(at(l.mark_ms_, cfg_.pong_timeout_ms)));
        } else {
          consider(coarse(at(l.last_rx_ms_, cfg_.ping_interval_ms)));
        }
      }
      if (l.paused_ & Link::p_rate) {
        const RateState& rate = *l.aux_->rate;
        const std::uint64_t wait = std::max(rate.messages.ms_until(1, now), rate.bytes.ms_until(1, now));
        consider(now + std::max<std::uint64_t>(wait, 1));
      }
      if (l.aux_ != nullptr && l.aux_->app_timer_armed) consider(at(l.aux_->app_timer_ms, 0));
      break;
    case LinkState::closing:
      consider(coarse(at(l.mark_ms_, close_timeout_ms(cfg_))));
      break;
    case LinkState::closed:
      break;
  }
  if (due == UINT64_MAX) {
    timers_->cancel(l.timer_);
  } else {
    timers_->schedule(l.timer_, due);
  }
}

void Reactor::on_timer(Link& l) noexcept {
  const std::uint32_t now32 = ms32();
  auto elapsed = [&](std::uint32_t since) { return now32 - since; };
  switch (l.state_) {
    case LinkState::handshaking:
      if (cfg_.handshake_timeout_ms && elapsed(l.mark_ms_) >= cfg_.handshake_timeout_ms) {
        if constexpr (config::tls) {
          if (l.has(Link::f_tls)) tls_timed_out(l);
        }
        if (l.has(Link::f_client)) {
          abort_link(l, CloseReason::handshake_timeout, close_code::abnormal);
        } else {
          metrics_.handshakes_failed.add();
          send_refusal_and_close(l, 408, "handshake timeout\n", CloseReason::handshake_timeout);
        }
        return;
      }
      break;
    case LinkState::open:
      if (cfg_.idle_timeout_ms && elapsed(l.last_rx_ms_) >= cfg_.idle_timeout_ms) {
        send_close_and_wait(l, close_code::going_away, "idle timeout", CloseReason::idle_timeout);
        return;
      }
      if (cfg_.ping_interval_ms) {
        if (l.has(Link::f_awaiting_pong)) {
          if (static_cast<std::int32_t>(l.last_rx_ms_ - l.mark_ms_) > 0) {
            l.clear(Link::f_awaiting_pong);  // the peer spoke after our ping
          } else if (elapsed(l.mark_ms_) >= cfg_.pong_timeout_ms) {
            // The peer is gone or stuck: say so (1011) and give it
            // close_timeout to answer before the socket goes.
            send_close_and_wait(l, close_code::internal_error, "ping timeout", CloseReason::ping_timeout);
            return;
          }
        }
        // Past the turn's quota the link's deadline stays due, so arm_timer
        // below puts it in the wheel's current slot: the next turn sends it.
        if (!l.has(Link::f_awaiting_pong) && elapsed(l.last_rx_ms_) >= cfg_.ping_interval_ms &&
            pings_this_turn_ < max_pings_per_turn) {
          ++pings_this_turn_;
          l.set(Link::f_awaiting_pong);
          l.mark_ms_ = now32;
          (void)send_frame(l, Opcode::ping, {}, {});
          if (l.closed()) return;
        }
      }
      if (l.paused_ & Link::p_rate) {
        const RateState& rate = *l.aux_->rate;
        if (rate.messages.ms_until(1, now_ms_) == 0 && rate.bytes.ms_until(1, now_ms_) == 0) resume(l, Link::p_rate);
      }
      if (l.aux_ != nullptr && l.aux_->app_timer_armed && static_cast<std::int32_t>(now32 - l.aux_->app_timer_ms) >= 0) {
        l.aux_->app_timer_armed = false;
        trim_aux(l);
        call_handler(l, [&] { handler_.on_timer(l); });
        if (l.closed()) return;
      }
      break;
    case LinkState::closing:
      if (elapsed(l.mark_ms_) >= close_timeout_ms(cfg_)) {
        // The cause stays the reason (slow consumer, protocol error...); a
        // close the application started that the peer never answered is a
        // close timeout.
        CloseReason why = l.close_reason_;
        if (why == CloseReason::local_close && !l.has(Link::f_write_shut)) why = CloseReason::close_timeout;
        abort_link(l, why, l.close_code_);
        return;
      }
      break;
    case LinkState::closed:
      return;
  }
  arm_timer(l);
}

}  // namespace ringlink
