// The epoll backend: edge-triggered readiness turned into the completion
// events the reactor understands (see backend.hpp for the seam).
//
// Each socket is registered once for in/out/rdhup with EPOLLET. On a read
// edge the backend reads into the buffer the sink names until EAGAIN, a short
// read, or the read budget; a link that ran out of budget is reported back
// (read_pass() returns true) so the reactor keeps it on its ready list: the
// edge will not fire again for bytes already waiting. Sends are gather writes
// done at once; a short write waits for the next EPOLLOUT edge.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "engine/buffer_pool.hpp"
#include "engine/fd.hpp"
#include "engine/wakeup.hpp"
#include "ringlink_config.hpp"

namespace ringlink {

class EpollBackend {
 public:
  static constexpr const char* name() noexcept { return "epoll"; }
  // send() completes (or fails with -EAGAIN) before it returns.
  static constexpr bool inline_sends() noexcept { return true; }

  // Keys in epoll data: links use their LinkId's raw value (generation != 0);
  // listeners and the wake-up fd use generation 0 with these slots.
  static constexpr std::uint64_t wake_key = 0xFFFFFFull << 32;
  static std::uint64_t listener_key(std::uint32_t index) noexcept { return static_cast<std::uint64_t>(index) << 32; }

  int open(ChunkPool& pool, std::string* why = nullptr) noexcept;
  void close() noexcept {}
  void wake() noexcept { wakeup_.wake(); }

  int add_listener(int fd, std::uint32_t index) noexcept;
  int set_accepting(int fd, std::uint32_t index, bool on) noexcept;
  int add_link(int fd, std::uint64_t key) noexcept;
  void remove_link(int fd, std::uint64_t key) noexcept;
  // Reads and writes finish inside the calls: the kernel never holds a
  // link's memory.
  static constexpr bool busy(std::uint32_t) noexcept { return false; }
  // Pool chunks the kernel holds for future reads: none, epoll reads into
  // the link's own chunk.
  static constexpr std::size_t lent_buffers() noexcept { return 0; }
  // Reads land in pool chunks the reactor trims itself: nothing held here.
  static constexpr std::size_t trim(bool) noexcept { return 0; }

  // Gather write; returns bytes written or -errno (-EAGAIN: socket full, the
  // sink hears on_writable at the next edge).
  static ssize_t send(std::uint64_t key, int fd, msghdr& msg, bool zero_copy = false) noexcept;
  // The seam's synchronous write (see backend.hpp); here every send is one.
  static ssize_t send_now(std::uint64_t key, int fd, msghdr& msg) noexcept { return send(key, fd, msg); }

  // Reads one link until EAGAIN, a short read, the budget, or the sink
  // stopping (empty read_target). Returns true when bytes may remain. With
  // `hangup` (the edge carried RDHUP/HUP/ERR) a short read does not end the
  // pass: the FIN behind the data brings no further edge, so it is read now.
  template <class Sink, class LinkT>
  static bool read_pass(Sink& sink, LinkT& link, int fd, bool hangup) noexcept;

  // Waits up to timeout_ms (-1: no limit) and dispatches every event.
  template <class Sink>
  int wait(int timeout_ms, Sink& sink) noexcept;

 private:
  Fd epfd_;
  Wakeup wakeup_;
  std::array<epoll_event, 256> events_{};
};

template <class Sink, class LinkT>
bool EpollBackend::read_pass(Sink& sink, LinkT& link, int fd, bool hangup) noexcept {
  std::size_t total = 0;
  for (;;) {
    std::span<std::byte> target = sink.read_target(link);
    if (target.empty()) return false;  // paused or no buffer: the sink re-arms later
    ssize_t n = ::recv(fd, target.data(), target.size(), 0);
    if (n > 0) {
      const bool alive = sink.on_received(link, target.data(), static_cast<std::size_t>(n));
      if (!alive) return false;
      total += static_cast<std::size_t>(n);
      // A short read drained the socket: new bytes bring a new edge.
      if (static_cast<std::size_t>(n) < target.size() && !hangup) return false;
      if (total >= config::read_budget) return true;
      continue;
    }
    if (n == 0) {
      sink.on_read_end(link, 0);
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    sink.on_read_end(link, -errno);
    return false;
  }
}

template <class Sink>
int EpollBackend::wait(int timeout_ms, Sink& sink) noexcept {
  int n = ::epoll_wait(epfd_.get(), events_.data(), static_cast<int>(events_.size()), timeout_ms);
  const int wait_errno = errno;
  sink.begin_turn();
  if (n < 0) return wait_errno == EINTR ? 0 : -wait_errno;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t key = events_[i].data.u64;
    const std::uint32_t ev = events_[i].events;
    if (static_cast<std::uint32_t>(key) == 0) {  // not a link
      if (key == wake_key) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wakeup_.fd(), &v, sizeof v);
        wakeup_.consumed();
        sink.on_wake();
      } else {
        sink.on_acceptable(static_cast<std::uint32_t>(key >> 32));
      }
      continue;
    }
    auto* link = sink.link_for(key);
    if (link == nullptr) continue;  // freed this turn: a stale event
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
      sink.on_readable(*link, (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && sink.link_for(key) == link) sink.on_writable(*link);
  }
  return n;
}

}  // namespace ringlink
