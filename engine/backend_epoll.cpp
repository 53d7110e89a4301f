#include "engine/backend_epoll.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/socket.hpp"

namespace ringlink {

int EpollBackend::open(ChunkPool&, std::string*) noexcept {
  epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_) return -errno;
  wakefd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wakefd_) return -errno;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_key;
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, wakefd_.get(), &ev) != 0) return -errno;
  return 0;
}

void EpollBackend::wake() noexcept {
  // One write per burst of commands: the flag is cleared by the reactor
  // before it drains, so a command pushed after the drain wakes it again.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wakefd_.get(), &one, sizeof one);
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
