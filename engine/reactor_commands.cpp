// Work from other threads (Server's send, close, broadcast, connect, stop, topics),
// and the graceful stop it can start.
#include "engine/reactor_internal.hpp"

namespace ringlink {

void Reactor::run_command(Command& cmd) noexcept {
  metrics_.commands.add();
  switch (cmd.kind) {
    case Command::Kind::send:
      if (Link* l = find(cmd.id)) (void)send_frame(*l, cmd.op, cmd.payload.bytes(), cmd.payload);
      break;
    case Command::Kind::close:
      if (Link* l = find(cmd.id)) l->close(cmd.code);
      break;
    case Command::Kind::broadcast:
      broadcast(cmd.ids.get(), cmd.payload, cmd.op);
      break;
    case Command::Kind::connect:
      if (cmd.connect) {
        const Connected c = connect(*cmd.connect);
        if (!c.ok()) {
          try {
            handler_.on_connect_failed(c.id, cmd.connect->user_data, c.error, 0);
          } catch (...) {
            metrics_.handler_exceptions.add();
          }
        }
      }
      break;
    case Command::Kind::stop:
      begin_stop(cmd.deadline_ms);
      break;
    case Command::Kind::resume_handoff:
      handoff_.set_space();
      break;
    case Command::Kind::subscribe:
      if (cmd.topic) (void)subscribe(cmd.id, std::move(cmd.topic), cmd.seq);
      break;
    case Command::Kind::unsubscribe:
      if (cmd.topic) (void)unsubscribe(cmd.id, cmd.topic);
      break;
    case Command::Kind::publish:
      fan_out(cmd);
      break;
  }
}

// Links with permessage-deflate and no context takeover get the message
// compressed once per window size, shared by reference like the plain
// frame (frame_for_many); links with context takeover compress it each in
// their own context (send_frame), the others get the plain frame.
std::size_t Reactor::broadcast(const std::vector<LinkId>* ids, const PayloadRef& payload, Opcode op) noexcept {
  std::size_t n = 0;
  CompressedOnce once;
  auto send_to = [&](Link& l) {
    if (!l.is(LinkState::open)) return;
    if (send_frame(l, op, payload.bytes(), frame_for_many(l, payload, op, once)) == SendResult::queued) ++n;
  };
  if (ids == nullptr) {
    links_.for_each_slot(send_to);
  } else {
    for (LinkId id : *ids)
      if (Link* l = find(id)) send_to(*l);
  }
  return n;
}

void Reactor::begin_stop(std::uint64_t deadline_ms) noexcept {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ms_ = deadline_ms;
  if (listen_fd_) {
    backend_.set_accepting(listen_fd_.get(), 0, false);
    listen_fd_.reset();
  }
  links_.for_each_slot([&](Link& l) {
    if (l.is(LinkState::open)) {
      send_close_and_wait(l, close_code::going_away, "server shutdown", CloseReason::shutdown);
    } else if (l.is(LinkState::handshaking)) {
      abort_link(l, CloseReason::shutdown, close_code::going_away);
    }
  });
  check_stop();
}

void Reactor::check_stop() noexcept {
  if (live_links_ > 0 && now_ms_ >= stop_deadline_ms_) {
    links_.for_each_slot([&](Link& l) {
      if (!l.closed())
        abort_link(l, l.is(LinkState::closing) ? l.close_reason_ : CloseReason::shutdown, close_code::going_away);
    });
    free_closed();
  }
  if (live_links_ == 0) stopped_.store(true, std::memory_order_release);
}

}  // namespace ringlink
