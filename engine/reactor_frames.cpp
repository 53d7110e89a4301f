// Frames of an open link: decoding through the Session, the gates a message
// passes first (worker hand-off room, inbound rate), delivery, the peer's
// close and protocol failures.
#include "engine/reactor_internal.hpp"
#include "engine/server.hpp"

namespace ringlink {

// Decodes what the link holds. False when it stopped early (paused, closing,
// closed); true when it needs more bytes.
bool Reactor::process_frames(Link& l) noexcept {
  while (l.rlen_ > 0 && !l.paused() && !l.closed()) {
    if (!handoff_gate(l) || !rate_gate(l)) return false;
    // session_of() is out of line; once made, the session is only read here.
    Session* session = l.session_ != nullptr ? l.session_ : session_of(l);
    if (session == nullptr) {
      out_of_memory(l);
      return false;
    }
    std::span<std::byte> in(l.rbuf_ + l.rstart_, l.rlen_);
    SessionEvent ev = session->feed(in, pool_->chunk_size());
    l.rstart_ += static_cast<std::uint32_t>(ev.consumed);
    l.rlen_ -= static_cast<std::uint32_t>(ev.consumed);
    switch (ev.kind) {
      case SessionEventKind::need_more:
        return true;
      case SessionEventKind::message:
        if (ev.compressed) {
          inflate_event(l, *session, ev);
          if (ev.kind == SessionEventKind::fail) {
            on_protocol_fail(l, ev);
            return false;
          }
        }
        metrics_.messages_in.add();
        metrics_.bytes_in.add(ev.payload.size());
        if (l.aux_ != nullptr && l.aux_->rate) {
          l.aux_->rate->messages.try_take(1, now_ms_);
          l.aux_->rate->bytes.try_take(static_cast<double>(ev.payload.size()), now_ms_);
        }
        if (l.is(LinkState::open)) deliver(l, ev.payload, ev.opcode);
        break;
      case SessionEventKind::ping:
        if (l.is(LinkState::open)) (void)send_frame(l, Opcode::pong, ev.payload, {});
        break;
      case SessionEventKind::pong:
        l.clear(Link::f_awaiting_pong);
        if (l.is(LinkState::open)) call_handler(l, [&] { handler_.on_pong(l, ev.payload); });
        break;
      case SessionEventKind::close:
        on_peer_close(l, ev);
        return false;
      case SessionEventKind::fail:
        if (ev.rsv1_misuse) metrics_.deflate_rsv1_errors.add();
        on_protocol_fail(l, ev);
        return false;
    }
  }
  return true;
}

// Lossless hand-off: stop before decoding a message that has nowhere to go.
// False when the link was parked until a worker makes room.
bool Reactor::handoff_gate(Link& l) noexcept {
  if (!handoff_.enabled() || !l.is(LinkState::open)) return true;
  const std::uint64_t pops_seen = handoff_.pops();
  if (!handoff_.must_wait(l.slot_) || cfg_.inbound_policy != InboundPolicy::pause) return true;
  pause(l, Link::p_handoff);
  if (!handoff_.park(l.id())) {
    out_of_memory(l);
    return false;
  }
  if (server_ != nullptr) server_->request_handoff_space(index_);
  // A worker that popped before it could see the request will not wake us.
  handoff_.recheck(pops_seen);
  return false;
}

// The inbound rate limit: an empty bucket pauses the link until its timer.
bool Reactor::rate_gate(Link& l) noexcept {
  if (l.aux_ == nullptr || !l.aux_->rate) return true;
  const RateState& rate = *l.aux_->rate;
  if (rate.messages.ms_until(1, now_ms_) == 0 && rate.bytes.ms_until(1, now_ms_) == 0) return true;
  metrics_.rate_limited.add();
  pause(l, Link::p_rate);
  arm_timer(l);
  return false;
}

void Reactor::on_peer_close(Link& l, const SessionEvent& ev) noexcept {
  if (ev.reply) {
    // The peer started the close: echo its code, then end the TCP side.
    enter_closing(l, ev.code, CloseReason::peer_close, ev.reason);
    send_close_frame(l, ev.code, {});
  } else if (!ev.reason.empty()) {
    // Our close was answered: the handshake is complete. The peer's reason
    // is what on_close reports.
    if (LinkAux* aux = aux_of(l)) {
      try {
        aux->close_text.assign(ev.reason);
      } catch (const std::bad_alloc&) {
        metrics_.out_of_memory.add();
      }
    }
  }
  close_after_last_frame(l);
  l.rlen_ = 0;
  arm_timer(l);
}

void Reactor::on_protocol_fail(Link& l, const SessionEvent& ev) noexcept {
  enter_closing(l, ev.code, reason_for_fail(ev.code), ev.reason);
  send_close_frame(l, ev.code, ev.reason);
  close_after_last_frame(l);
  l.rlen_ = 0;
  arm_timer(l);
}

void Reactor::deliver(Link& l, std::span<std::byte> payload, Opcode op) noexcept {
  if (handoff_.enabled()) {
    hand_to_worker(l, payload, op);
    return;
  }
  call_handler(l, [&] { handler_.on_message(l, payload, op); });
}

void Reactor::hand_to_worker(Link& l, std::span<std::byte> payload, Opcode op) noexcept {
  switch (handoff_.push(l.slot_, l.id(), op, payload)) {
    case Handoff::PushResult::ok:
      if (server_ != nullptr) server_->notify_worker(handoff_.worker_of(l.slot_));
      return;
    case Handoff::PushResult::out_of_memory:
      send_close_and_wait(l, close_code::try_again_later, "out of memory", CloseReason::policy);
      return;
    case Handoff::PushResult::full:
      // Full although checked (drop_newest / close policies do not check first).
      if (cfg_.inbound_policy == InboundPolicy::close) {
        send_close_and_wait(l, close_code::policy_violation, "receiver overloaded", CloseReason::policy);
      } else {
        metrics_.inbound_dropped.add();
      }
      return;
  }
}

}  // namespace ringlink
