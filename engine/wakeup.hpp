// Wakeup: how other threads wake a reactor's loop. An eventfd the loop waits
// on (epoll watches it, io_uring reads it), and a "pending" flag so that a
// burst of posts costs one write, not one per post.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "engine/fd.hpp"

namespace ringlink {

class Wakeup {
 public:
  // Returns 0 or -errno.
  int open() noexcept {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    fd_.reset(fd);
    pending_.store(false, std::memory_order_relaxed);
    return 0;
  }
  void close() noexcept { fd_.reset(); }
  int fd() const noexcept { return fd_.get(); }

  // Any thread, after it published what the loop should look at.
  void wake() noexcept {
    // One write per burst: while a wake-up is pending the loop has yet to
    // clear the flag (consumed()) and drain, and that drain will see what
    // was published before this call.
    if (pending_.exchange(true, std::memory_order_acq_rel)) return;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(fd_.get(), &one, sizeof one);
  }

  // The loop calls this once it has consumed the eventfd, before it drains
  // what the wakers published; a post after that drain wakes it again.
  //
  // An exchange, not a release store: the drain's reads must not move above
  // the clear. With a plain store, a waker could still see `true` after the
  // drain read an empty queue, skip its write, and its post would wait for
  // some later wake-up. The two read-modify-writes of the flag are ordered:
  // either the waker's comes first, and this acquire makes its post visible
  // to the drain, or this one does, and the waker sees `false` and writes.
  void consumed() noexcept { pending_.exchange(false, std::memory_order_acq_rel); }

 private:
  Fd fd_;
  std::atomic<bool> pending_{false};
};

}  // namespace ringlink
