// How links arrive: the listener's accepts, adopted sockets, and outbound
// connects. Both sides meet in register_link.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/log.hpp"
#include "engine/reactor_internal.hpp"

namespace ringlink {

void Reactor::on_acceptable(std::uint32_t listener) noexcept {
  const Fd& lfd = listener == 1 ? tls_listen_fd_ : listen_fd_;
  if (!lfd || stopping_ || accept_paused_) return;
  for (;;) {
    int fd = ::accept4(lfd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      on_accepted(listener, -errno);
      return;
    }
    on_accepted(listener, fd);
  }
}

// One accept's outcome: a new socket, or -errno.
void Reactor::on_accepted(std::uint32_t listener, int fd) noexcept {
  metrics_.accept_calls.add();
  if (fd < 0) {
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
      accept_backoff();
      return;
    }
    if (fd != -ECONNABORTED && fd != -EINTR && fd != -EAGAIN)
      RINGLINK_LOG(LogLevel::warn, "reactor %u: accept failed: %s", index_, std::strerror(-fd));
    return;
  }
  if (stopping_) {
    ::close(fd);
    return;
  }
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  const bool limited = ip_limiter_ != nullptr &&
                       ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0;
  const LinkId id = adopt(fd, listener == 1);
  if (!id.valid()) {
    metrics_.links_refused.add();
    return;
  }
  IpKey ip;
  if (limited && ip_key_of(peer, ip)) {
    Link& l = *find(id);
    if (!ip_limiter_->acquire(ip)) {
      metrics_.links_refused.add();
      send_refusal_and_close(l, 429, "too many connections from this address\n", CloseReason::handshake_refused);
    } else if (LinkAux* aux = aux_of(l)) {
      aux->ip = ip;
    } else {
      ip_limiter_->release(ip);
      out_of_memory(l);
    }
  }
}

LinkId Reactor::adopt(int fd, bool tls) noexcept {
  Link* l = allocate_link(fd, false);
  if (l == nullptr) {
    ::close(fd);
    return {};
  }
  metrics_.links_accepted.add();
  if (tls) {
    bool attached = false;
    if constexpr (config::tls) attached = tls_ctx_ != nullptr && attach_tls(*l, nullptr);
    if (!attached) {
      out_of_memory(*l);
      return {};
    }
  }
  return register_link(*l);
}

// Both sides: the socket joins the backend and the handshake's deadline
// starts. An invalid id when the backend refused it (the link is gone).
LinkId Reactor::register_link(Link& l) noexcept {
  if (l.has(Link::f_nodelay)) set_nodelay(l.fd_, true);  // fails harmlessly on non-TCP sockets
  const LinkId id = l.id();
  if (backend_.add_link(l.fd_, id.raw()) < 0) {
    abort_link(l, CloseReason::io_error, close_code::abnormal);
    return {};
  }
  arm_timer(l);
  return id;
}

// Out of descriptors: stop accepting for a while instead of spinning on a
// listener that stays readable; links already open keep being served.
void Reactor::accept_backoff() noexcept {
  metrics_.accept_backoffs.add();
  accept_paused_ = true;
  accept_resume_ms_ = now_ms_ + std::max<std::uint32_t>(cfg_.accept_backoff_ms, 1);
  if (listen_fd_) backend_.set_accepting(listen_fd_.get(), 0, false);
  if (tls_listen_fd_) backend_.set_accepting(tls_listen_fd_.get(), 1, false);
}

Reactor::Connected Reactor::connect(const ConnectRequest& req) noexcept {
  const int fd = start_connect(req.address, req.has_source ? &req.source : nullptr);
  if (fd < 0) return {LinkId{}, fd};
  Link* l = allocate_link(fd, true);
  if (l == nullptr) {
    ::close(fd);
    return {LinkId{}, -ENOSPC};  // max_links_per_reactor reached
  }
  l->user_data_ = req.user_data;
  const LinkId id = l->id();
  if (!register_link(*l).valid()) return {id, 0};  // on_connect_failed reported it
  if (req.tls.enabled) {
    bool attached = false;
    if constexpr (config::tls) attached = attach_tls_client(*l, req);
    if (!attached) {
      if (!l->closed()) abort_link(*l, CloseReason::io_error, close_code::abnormal, -ENOPROTOOPT);
      return {id, 0};
    }
  }
  if (!send_upgrade_request(*l, req)) out_of_memory(*l);
  return {id, 0};
}

}  // namespace ringlink
