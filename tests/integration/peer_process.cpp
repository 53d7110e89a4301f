#include "tests/integration/peer_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace itest {

namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string peer_script(const std::string& name) { return env_or_empty("RINGLINK_PEERS_DIR") + "/" + name; }

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::unique_ptr<PeerProcess> PeerProcess::start(const std::vector<std::string>& argv, std::string* error) {
  auto fail = [&](const char* what, int err) -> std::unique_ptr<PeerProcess> {
    if (error != nullptr) *error = std::string(what) + ": " + std::strerror(err);
    return nullptr;
  };
  if (argv.empty()) return fail("argv", EINVAL);
  std::unique_ptr<PeerProcess> p(new PeerProcess());

  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return fail("pipe", errno);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return fail("pipe", e);
  }
  p->stdin_fd_ = in_pipe[1];
  p->stdout_fd_ = out_pipe[0];
  // The child's stderr goes to an unlinked file: it can never block the
  // child, and we read it back only to explain a failure.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/ringlink-peer-XXXXXX";
  p->stderr_fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (p->stderr_fd_ < 0) {
    const int e = errno;
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    return fail("mkostemp", e);
  }
  ::unlink(tmpl.c_str());

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p->stderr_fd_, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  if (rc != 0) return fail(argv[0].c_str(), rc);
  p->pid_ = pid;
  // pidfd lets wait() sleep in poll() until the exit instead of polling waitpid.
  p->pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  ::fcntl(p->stdout_fd_, F_SETFL, ::fcntl(p->stdout_fd_, F_GETFL) | O_NONBLOCK);
  return p;
}

PeerProcess::~PeerProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  close_fd(stdin_fd_);
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  close_fd(pidfd_);
}

bool PeerProcess::reap(bool block) noexcept {
  if (exited_) return true;
  int st = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = st;
      return true;
    }
    if (r < 0 && errno == EINTR) continue;
    return false;
  }
}

bool PeerProcess::pump_stdout(int timeout_ms) {
  if (stdout_eof_) return false;
  pollfd pfd{stdout_fd_, POLLIN, 0};
  const int n = ::poll(&pfd, 1, timeout_ms);
  if (n <= 0) return n == 0;
  char buf[4096];
  for (;;) {
    const ssize_t r = ::read(stdout_fd_, buf, sizeof buf);
    if (r > 0) {
      out_buf_.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    if (r == 0) {
      stdout_eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN;
  }
}

std::optional<std::string> PeerProcess::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto nl = out_buf_.find('\n'); nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    if (stdout_eof_) return std::nullopt;
    const int left = ms_left(deadline);
    if (left == 0) return std::nullopt;
    pump_stdout(left);
  }
}

std::optional<int> PeerProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (reap(false)) return status_;
    const int left = ms_left(deadline);
    if (left == 0) return std::nullopt;
    pollfd pfds[2];
    nfds_t n = 0;
    if (pidfd_ >= 0) pfds[n++] = {pidfd_, POLLIN, 0};
    if (!stdout_eof_) pfds[n++] = {stdout_fd_, POLLIN, 0};
    // Without a pidfd, look at waitpid again every 20 ms.
    const int slice = pidfd_ >= 0 ? left : std::min(left, 20);
    if (n == 0) {
      ::poll(nullptr, 0, slice);
      continue;
    }
    if (::poll(pfds, n, slice) > 0) pump_stdout(0);
  }
}

bool PeerProcess::send_signal(int sig) noexcept { return !exited_ && pid_ > 0 && ::kill(pid_, sig) == 0; }

std::string PeerProcess::stderr_text() const {
  std::string text;
  char buf[4096];
  off_t off = 0;
  for (;;) {
    const ssize_t r = ::pread(stderr_fd_, buf, sizeof buf, off);
    if (r <= 0) break;
    text.append(buf, static_cast<std::size_t>(r));
    off += r;
  }
  return text;
}

std::string PeerProcess::describe_status() const { return exited_ ? describe_wait_status(status_) : "running"; }

std::string run_peer(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  std::string error;
  auto p = PeerProcess::start(argv, &error);
  if (!p) return "spawn failed: " + error;
  const std::optional<int> st = p->wait(timeout);
  if (!st) return "timed out after " + std::to_string(timeout.count()) + " ms; stderr:\n" + p->stderr_text();
  if (exited_ok(*st)) return {};
  return describe_wait_status(*st) + "; stdout:\n" + p->pending_stdout() + "\nstderr:\n" + p->stderr_text();
}

bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in >= 0) ::inotify_add_watch(in, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
  struct stat sb;
  bool found = false;
  for (;;) {
    // Checked after the watch is in place, so a file created meanwhile is seen.
    if (::stat(path.c_str(), &sb) == 0) {
      found = true;
      break;
    }
    const int left = ms_left(deadline);
    if (left == 0) break;
    if (in >= 0) {
      pollfd pfd{in, POLLIN, 0};
      if (::poll(&pfd, 1, left) > 0) {
        char buf[4096];
        while (::read(in, buf, sizeof buf) > 0) {
        }
      }
    } else {
      ::poll(nullptr, 0, std::min(left, 20));
    }
  }
  if (in >= 0) ::close(in);
  return found;
}

}  // namespace itest
