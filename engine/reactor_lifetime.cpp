// A link's life: its slot and what it holds, every way it ends, its freeing.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "engine/reactor_internal.hpp"

namespace ringlink {

Link* Reactor::allocate_link(int fd, bool client) noexcept {
  Link* l = links_.take(cfg_.max_links_per_reactor);
  if (l == nullptr) return nullptr;
  // Every link is in these lists at most once: reserving them with the
  // table keeps a link's end from ever needing memory.
  if (closed_.capacity() < links_.capacity() || kernel_held_.capacity() < links_.capacity()) {
    try {
      closed_.reserve(links_.capacity());
      kernel_held_.reserve(links_.capacity());
    } catch (const std::bad_alloc&) {
      links_.release(*l);
      return nullptr;
    }
  }
  l->reactor_ = this;
  l->fd_ = fd;
  l->flags_ = client ? Link::f_client : 0;
  if (cfg_.tcp_nodelay) l->set(Link::f_nodelay);
  l->paused_ = 0;
  l->state_ = LinkState::handshaking;
  l->close_code_ = close_code::abnormal;
  l->close_reason_ = CloseReason::peer_eof;
  l->rstart_ = l->rlen_ = 0;
  l->last_rx_ms_ = ms32();
  l->mark_ms_ = ms32();
  ++live_links_;
  return l;
}

void Reactor::free_link(Link& l) noexcept {
  timers_->cancel(l.timer_);
  if constexpr (config::tls) {
    if (l.has(Link::f_tls)) detach_tls(l);
  }
  release_rbuf(l);
  if (l.sendq_ != nullptr) {
    metrics_.queued_bytes.sub(l.sendq_->bytes());
    queues_.release(l.sendq_);
    l.sendq_ = nullptr;
  }
  if (l.aux_ != nullptr) {
    end_deflate(l);
    if (l.aux_->ip && ip_limiter_ != nullptr) ip_limiter_->release(*l.aux_->ip);
    for (const LinkAux::Pending& p : l.aux_->pending) pool_->release(p.chunk);
    delete l.aux_;
    l.aux_ = nullptr;
  }
  if (l.session_ != nullptr) {
    drop_session(l.session_);
    l.session_ = nullptr;
  }
  l.user_data_ = nullptr;
  l.flags_ = 0;
  l.paused_ = 0;
  l.fd_ = -1;
  links_.release(l);
  --live_links_;
}

void Reactor::abort_link(Link& l, CloseReason why, std::uint16_t code, int error) noexcept {
  if (l.closed()) return;
  const LinkState was = l.state_;
  if constexpr (config::tls) {
    // The peer's stream ended (FIN, reset): on a TLS link, maybe inside a record.
    if (l.has(Link::f_tls) && (why == CloseReason::peer_eof || why == CloseReason::io_error)) tls_stream_ended(l);
  }
  l.state_ = LinkState::closed;
  leave_topics(l);
  metrics_.closed(why);
  if (l.paused_ & ~Link::p_budget) metrics_.paused_links.sub();
  if (l.has(Link::f_opened)) {
    --open_links_;
    metrics_.links_open.sub();
  }
  if (l.fd_ >= 0) {
    backend_.remove_link(l.fd_, l.id().raw());
    ::close(l.fd_);
    l.fd_ = -1;
  }
  if (l.has(Link::f_opened) && !l.has(Link::f_close_notified)) {
    l.set(Link::f_close_notified);
    const std::uint16_t reported = (l.close_code_ != close_code::abnormal) ? l.close_code_ : code;
    const std::string_view reason = l.aux_ != nullptr ? std::string_view(l.aux_->close_text) : std::string_view{};
    try {
      handler_.on_close(l, reported, reason);
    } catch (...) {
      metrics_.handler_exceptions.add();
    }
  } else if (l.has(Link::f_client) && was == LinkState::handshaking) {
    int err = -ECONNABORTED;
    std::uint16_t status = 0;
    if (why == CloseReason::handshake_timeout) err = -ETIMEDOUT;
    if (why == CloseReason::handshake_refused) {
      err = 0;
      status = code;
    }
    if (why == CloseReason::io_error && error != 0) err = error;
    try {
      handler_.on_connect_failed(LinkId{index_, l.slot_, l.generation_.load(std::memory_order_relaxed)}, l.user_data_,
                                 err, status);
    } catch (...) {
      metrics_.handler_exceptions.add();
    }
  }
  closed_.push_back(&l);  // within the capacity reserved in allocate_link
}

void Reactor::send_close_and_wait(Link& l, std::uint16_t code, std::string_view reason, CloseReason why) noexcept {
  if (l.is(LinkState::handshaking)) {
    abort_link(l, why, code);
    return;
  }
  if (!l.is(LinkState::open)) return;
  Session* s = session_of(l);
  if (s == nullptr) {
    out_of_memory(l);
    return;
  }
  if (!s->start_close()) return;
  enter_closing(l, code, why, reason);
  send_close_frame(l, code, reason);
}

void Reactor::enter_closing(Link& l, std::uint16_t code, CloseReason why, std::string_view text) noexcept {
  l.close_code_ = code;
  l.close_reason_ = why;
  l.state_ = LinkState::closing;
  leave_topics(l);   // a closing link takes no more publications
  l.mark_ms_ = ms32();
  if (!text.empty()) {
    if (LinkAux* aux = aux_of(l)) {
      try {
        aux->close_text.assign(text.substr(0, max_control_payload - 2));
      } catch (const std::bad_alloc&) {
        metrics_.out_of_memory.add();  // on_close reports no reason
      }
    }
  }
  arm_timer(l);
}

void Reactor::close_after_last_frame(Link& l) noexcept {
  if (l.closed()) return;
  l.set(Link::f_close_after_flush);
  if (l.sendq_ == nullptr) half_close_and_linger(l);
}

// Our last frame (close, or an HTTP response) has left. The server
// half-closes and waits for the peer's FIN (close_timeout bounds it), so the
// peer reads our close before it sees the TCP close; closing at once could
// reset the connection while the peer's unread bytes are in flight and lose
// the frame.
void Reactor::half_close_and_linger(Link& l) noexcept {
  l.clear(Link::f_close_after_flush);
  if (l.closed()) return;
  if (!l.is(LinkState::closing)) l.state_ = LinkState::closing;
  l.mark_ms_ = ms32();
  if (!l.has(Link::f_client) && !l.has(Link::f_write_shut)) {
    if constexpr (config::tls) {
      if (l.has(Link::f_tls)) tls_close_notify(l);
    }
    ::shutdown(l.fd_, SHUT_WR);
    l.set(Link::f_write_shut);
    // Bytes already buffered are discarded from now on.
    l.rlen_ = 0;
    release_rbuf(l);
  }
  arm_timer(l);
}

void Reactor::out_of_memory(Link& l) noexcept {
  metrics_.out_of_memory.add();
  abort_link(l, CloseReason::out_of_memory, close_code::internal_error);
}

// Frees the links closed this turn, except those the kernel still holds
// requests of: those wait, and are looked at again at every turn's end.
void Reactor::free_closed() noexcept {
  if (!kernel_held_.empty()) {
    std::size_t kept = 0;
    for (Link* l : kernel_held_) {
      if (backend_.busy(l->slot_)) {
        kernel_held_[kept++] = l;
      } else {
        free_link(*l);
      }
    }
    kernel_held_.resize(kept);
  }
  for (Link* l : closed_) {
    if (backend_.busy(l->slot_)) {
      kernel_held_.push_back(l);  // within the capacity reserved in allocate_link
    } else {
      free_link(*l);
    }
  }
  closed_.clear();
}

LinkAux* Reactor::aux_of(Link& l) noexcept {
  if (l.aux_ == nullptr) {
    l.aux_ = new (std::nothrow) LinkAux{};
    if (l.aux_ == nullptr) metrics_.out_of_memory.add();
  }
  return l.aux_;
}

void Reactor::trim_aux(Link& l) noexcept {
  if (l.aux_ != nullptr && l.aux_->empty()) {
    delete l.aux_;
    l.aux_ = nullptr;
  }
}

Session* Reactor::session_of(Link& l) noexcept {
  if (l.session_ == nullptr) {
    const Role role = l.has(Link::f_client) ? Role::client : Role::server;
    if (!session_cache_.empty()) {
      l.session_ = session_cache_.back();
      session_cache_.pop_back();
      *l.session_ = Session{role};
    } else {
      l.session_ = new (std::nothrow) Session{role};
      if (l.session_ == nullptr) metrics_.out_of_memory.add();
    }
    if (l.session_ != nullptr) l.session_->set_compression(l.compressed());
  }
  return l.session_;
}

void Reactor::drop_session(Session* s) noexcept {
  s->release_buffers();
  if (session_cache_.size() < 1024 && push_nothrow(session_cache_, s)) return;
  delete s;
}

}  // namespace ringlink
