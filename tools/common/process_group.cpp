#include "tools/common/process_group.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace ringlink::tools {

namespace {

bool write_all(int fd, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

struct Header {
  std::uint32_t type;
  std::uint32_t length;
};

}  // namespace

bool write_frame(int fd, std::uint32_t type, std::span<const std::byte> payload) noexcept {
  if (payload.size() > max_frame_bytes) return false;
  const Header h{type, static_cast<std::uint32_t>(payload.size())};
  return write_all(fd, &h, sizeof h) && write_all(fd, payload.data(), payload.size());
}

ProcessGroup::~ProcessGroup() {
  for (Child& c : children_) {
    if (c.exited || c.pid <= 0) continue;
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, &c.status, 0);
  }
}

bool ProcessGroup::spawn(unsigned n, const std::function<int(unsigned, int)>& body, std::string& error) {
  const pid_t parent = ::getpid();
  for (unsigned i = 0; i < n; ++i) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      error = std::string("pipe: ") + std::strerror(errno);
      return false;
    }
    std::fflush(nullptr);  // nothing buffered is written twice
    const pid_t pid = ::fork();
    if (pid < 0) {
      error = std::string("fork: ") + std::strerror(errno);
      ::close(fds[0]);
      ::close(fds[1]);
      return false;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
      ::close(fds[0]);
      for (Child& c : children_) c.pipe.reset();  // the siblings' pipes are the parent's
      const int rc = body(i, fds[1]);
      std::fflush(nullptr);
      ::_exit(rc);
    }
    ::close(fds[1]);
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    Child c;
    c.pid = pid;
    c.pipe.reset(fds[0]);
    children_.push_back(std::move(c));
  }
  return true;
}

bool ProcessGroup::read_child(unsigned i, std::vector<Frame>& out) {
  Child& c = children_[i];
  std::byte chunk[65536];
  for (;;) {
    const ssize_t r = ::read(c.pipe.get(), chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (r <= 0) {
      c.pipe.reset();
      return false;
    }
    c.buffer.insert(c.buffer.end(), chunk, chunk + r);
    std::size_t at = 0;
    while (c.buffer.size() - at >= sizeof(Header)) {
      Header h;
      std::memcpy(&h, c.buffer.data() + at, sizeof h);
      if (h.length > max_frame_bytes) {
        c.pipe.reset();
        c.buffer.clear();
        return false;
      }
      if (c.buffer.size() - at - sizeof h < h.length) break;
      Frame f;
      f.child = i;
      f.type = h.type;
      const auto* p = c.buffer.data() + at + sizeof h;
      f.payload.assign(p, p + h.length);
      out.push_back(std::move(f));
      at += sizeof h + h.length;
    }
    c.buffer.erase(c.buffer.begin(), c.buffer.begin() + static_cast<std::ptrdiff_t>(at));
  }
}

void ProcessGroup::poll(int timeout_ms, std::vector<Frame>& out) {
  std::vector<pollfd> fds;
  std::vector<unsigned> which;
  for (unsigned i = 0; i < children_.size(); ++i) {
    if (!children_[i].pipe) continue;
    fds.push_back(pollfd{children_[i].pipe.get(), POLLIN, 0});
    which.push_back(i);
  }
  if (fds.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return;
  }
  if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  for (std::size_t k = 0; k < fds.size(); ++k)
    if (fds[k].revents != 0) (void)read_child(which[k], out);
}

std::vector<unsigned> ProcessGroup::reap() {
  std::vector<unsigned> done;
  for (unsigned i = 0; i < children_.size(); ++i) {
    Child& c = children_[i];
    if (c.exited) continue;
    if (::waitpid(c.pid, &c.status, WNOHANG) == c.pid) {
      c.exited = true;
      done.push_back(i);
    }
  }
  return done;
}

void ProcessGroup::signal_all(int sig) noexcept {
  for (const Child& c : children_)
    if (!c.exited && c.pid > 0) ::kill(c.pid, sig);
}

bool ProcessGroup::all_exited() const noexcept {
  for (const Child& c : children_)
    if (!c.exited) return false;
  return true;
}

bool ProcessGroup::wait_all(std::chrono::milliseconds timeout, std::vector<Frame>& out) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    poll(50, out);
    (void)reap();
    // Exited, and its pipe read to the end: nothing more will come.
    bool done = true;
    for (const Child& c : children_) done = done && c.exited && !c.pipe;
    if (done) return true;
    if (all_exited()) {
      // A grandchild could hold a pipe open; what was written is in by now.
      for (unsigned i = 0; i < children_.size(); ++i)
        if (children_[i].pipe) (void)read_child(i, out);
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  bool clean = true;
  for (Child& c : children_) {
    if (c.exited) continue;
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, &c.status, 0);
    c.exited = c.killed = true;
    clean = false;
  }
  for (unsigned i = 0; i < children_.size(); ++i)
    if (children_[i].pipe) (void)read_child(i, out);
  return clean;
}

std::string ProcessGroup::describe(int status) {
  char text[96];
  if (WIFEXITED(status)) {
    std::snprintf(text, sizeof text, "exited with status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    std::snprintf(text, sizeof text, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  } else {
    std::snprintf(text, sizeof text, "ended with wait status %d", status);
  }
  return text;
}

}  // namespace ringlink::tools
