// The backend seam. The reactor sees completions: a connection accepted,
// bytes received into a buffer for a link, bytes sent, a link's read side
// ended, a wake-up from another thread. The compile-time `io_backend` flag
// picks the implementation; the reactor is written once against `Backend`.
//
//   epoll  EpollBackend: readiness, the backend reads into the reactor's
//          buffer (read_target/on_received) and writes inline.
//   uring  UringBackend: the kernel fills pool chunks from a provided buffer
//          ring (on_received_buffer) and reports sends (on_sent).
//   auto   AutoBackend: io_uring when setup and the probe succeed, else epoll
//          with one log line naming the reason.
//
// Every backend also has
//   ssize_t send_now(std::uint64_t key, int fd, msghdr& msg) noexcept;
// a write done before it returns, even on a completion backend: bytes taken
// or -errno (-EAGAIN when the socket is full). The reactor uses it when it
// must write within the turn (a burst that fills the send queue, replies
// queued before a FIN), and only while no send of that link is in flight.
#pragma once

#include <string>
#include <type_traits>

#include "engine/backend_epoll.hpp"
#include "engine/buffer_pool.hpp"
#include "ringlink_config.hpp"
#if RINGLINK_HAVE_URING
#include "engine/backend_uring.hpp"
#endif

namespace ringlink {

#if RINGLINK_HAVE_URING

// Dispatches each call to the backend chosen at open(). The branch is
// perfectly predicted; the two backends' state sits side by side.
class AutoBackend {
 public:
  const char* name() const noexcept { return uring_on_ ? UringBackend::name() : EpollBackend::name(); }
  bool inline_sends() const noexcept { return !uring_on_; }

  int open(ChunkPool& pool, std::string* why = nullptr) noexcept;
  void close() noexcept {
    if (uring_on_) uring_.close();
  }
  void wake() noexcept { uring_on_ ? uring_.wake() : epoll_.wake(); }
  int add_listener(int fd, std::uint32_t index) noexcept {
    return uring_on_ ? uring_.add_listener(fd, index) : epoll_.add_listener(fd, index);
  }
  int set_accepting(int fd, std::uint32_t index, bool on) noexcept {
    return uring_on_ ? uring_.set_accepting(fd, index, on) : epoll_.set_accepting(fd, index, on);
  }
  int add_link(int fd, std::uint64_t key) noexcept { return uring_on_ ? uring_.add_link(fd, key) : epoll_.add_link(fd, key); }
  void remove_link(int fd, std::uint64_t key) noexcept {
    uring_on_ ? uring_.remove_link(fd, key) : epoll_.remove_link(fd, key);
  }
  bool busy(std::uint32_t slot) const noexcept { return uring_on_ && uring_.busy(slot); }
  std::size_t lent_buffers() const noexcept { return uring_on_ ? uring_.lent_buffers() : 0; }
  std::size_t trim(bool quiet) noexcept { return uring_on_ ? uring_.trim(quiet) : 0; }
  ssize_t send(std::uint64_t key, int fd, msghdr& msg, bool zero_copy = false) noexcept {
    return uring_on_ ? uring_.send(key, fd, msg, zero_copy) : EpollBackend::send(key, fd, msg);
  }
  ssize_t send_now(std::uint64_t key, int fd, msghdr& msg) noexcept {
    return uring_on_ ? UringBackend::send_now(key, fd, msg) : EpollBackend::send_now(key, fd, msg);
  }
  template <class Sink, class LinkT>
  bool read_pass(Sink& sink, LinkT& link, int fd, bool hangup) noexcept {
    return uring_on_ ? uring_.read_pass(sink, link, fd, hangup) : EpollBackend::read_pass(sink, link, fd, hangup);
  }
  template <class Sink>
  int wait(int timeout_ms, Sink& sink) noexcept {
    return uring_on_ ? uring_.wait(timeout_ms, sink) : epoll_.wait(timeout_ms, sink);
  }

 private:
  bool uring_on_ = false;
  UringBackend uring_;
  EpollBackend epoll_;
};

#endif

#if RINGLINK_HAVE_URING
using Backend = std::conditional_t<config::backend == config::Backend::epoll, EpollBackend,
                                   std::conditional_t<config::backend == config::Backend::uring, UringBackend, AutoBackend>>;
#else
static_assert(config::backend != config::Backend::uring, "io_backend=uring needs liburing");
using Backend = EpollBackend;
#endif

}  // namespace ringlink
