#include "engine/backend_epoll.hpp"

#include <unistd.h>

#include "engine/socket.hpp"

namespace ringlink {

int EpollBackend::open(ChunkPool&, std::string*) noexcept {
  epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_) return -errno;
  if (int r = wakeup_.open(); r < 0) return r;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_key;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, wakeup_.fd(), &ev) != 0) return -errno;
  return 0;
}

int EpollBackend::add_listener(int fd, std::uint32_t index) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = listener_key(index);
  return ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int EpollBackend::set_accepting(int fd, std::uint32_t index, bool on) noexcept {
  epoll_event ev{};
  // Re-arming with MOD also re-reports a pending connection (the edge of a
  // backlog that filled while we were not listening).
  ev.events = on ? (EPOLLIN | EPOLLET) : 0;
  ev.data.u64 = listener_key(index);
  return ::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

int EpollBackend::add_link(int fd, std::uint64_t key) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = key;
  return ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

void EpollBackend::remove_link(int fd, std::uint64_t) noexcept { ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

ssize_t EpollBackend::send(std::uint64_t, int fd, msghdr& msg, bool) noexcept { return send_msg(fd, msg); }

}  // namespace ringlink
