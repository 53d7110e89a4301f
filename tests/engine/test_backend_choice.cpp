// Which backend a server runs on, in builds with io_backend=auto.
//
// Proves: where io_uring works the server runs on it; where it does not (here:
// a seccomp filter refuses io_uring_setup, as a container runtime's default
// profile may), the server logs exactly one line naming the reason, runs on
// epoll, and serves a WebSocket echo as usual.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/log.hpp"
#include "engine/server.hpp"
#include "tests/wire_client.hpp"

using namespace ringlink;

namespace {

struct Echo : Handler {
  void on_message(Link& l, std::span<std::byte> p, Opcode op) override { (void)l.send(p, op); }
};

ServerConfig two_reactors() {
  ServerConfig cfg;
  cfg.port = 0;
  cfg.reactors = 2;
  return cfg;
}

// True when one upgrade and one echo went through.
bool echo_once(std::uint16_t port) {
  wire::WireConn c;
  if (c.open(port) != 101) return false;
  if (!c.send_text("through the fallback")) return false;
  auto f = c.read_frame(5000);
  return f && f->text() == "through the fallback";
}

#if defined(__x86_64__)
constexpr std::uint32_t audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t audit_arch = AUDIT_ARCH_AARCH64;
#else
constexpr std::uint32_t audit_arch = 0;
#endif

// io_uring_setup fails with EPERM from now on, for this process.
bool refuse_io_uring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, audit_arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

int log_pipe = -1;
void to_pipe(LogLevel, const char* line) noexcept {
  std::string s = line;
  s += '\n';
  [[maybe_unused]] ssize_t r = ::write(log_pipe, s.data(), s.size());
}

}  // namespace

TEST(BackendChoice, AutoRunsOnIoUringWhereItWorks) {
  if constexpr (config::backend != config::Backend::automatic) GTEST_SKIP() << "io_backend is not auto";
  const int fd = static_cast<int>(::syscall(__NR_io_uring_setup, 0u, nullptr));
  // io_uring_setup with no params answers EFAULT when the call exists and
  // is allowed; ENOSYS/EPERM mean this machine refuses it.
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) GTEST_SKIP() << "io_uring refused here: " << std::strerror(errno);
  Echo h;
  Server s(two_reactors(), h);
  ASSERT_EQ(s.start(), 0);
  for (std::size_t i = 0; i < s.reactor_count(); ++i) EXPECT_STREQ(s.reactor(i).backend_name(), "io_uring");
  EXPECT_TRUE(echo_once(s.port()));
  s.stop();
}

// A build with io_backend=uring has no fallback: where the kernel refuses
// io_uring its servers do not start and this test fails, so CI's
// BACKEND=uring step proves io_uring ran instead of staying green on epoll.
TEST(BackendChoice, UringBuildRunsOnIoUringOrFails) {
  if constexpr (config::backend != config::Backend::uring) GTEST_SKIP() << "io_backend is not uring";
  Echo h;
  Server s(two_reactors(), h);
  ASSERT_EQ(s.start(), 0) << "io_backend=uring and the kernel refused io_uring";
  for (std::size_t i = 0; i < s.reactor_count(); ++i) EXPECT_STREQ(s.reactor(i).backend_name(), "io_uring");
  EXPECT_TRUE(echo_once(s.port()));
  s.stop();
}

// Where the kernel has receive bundles (6.10), a message larger than a
// buffer arrives in completions of several buffers each, handed over in
// order: the echo comes back byte for byte, and the bundles are counted.
// Without them (an older kernel, or epoll) the count stays 0.
TEST(BackendChoice, LargeMessagesArriveInBundlesWhereTheKernelHasThem) {
  Echo h;
  ServerConfig cfg = two_reactors();
  cfg.reactors = 1;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  wire::WireConn c;
  ASSERT_EQ(c.open(s.port()), 101);
  wire::Bytes big(1 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 131 + (i >> 12));
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(c.send_binary(big));
    auto f = c.read_frame(10000);
    ASSERT_TRUE(f) << "round " << round;
    ASSERT_TRUE(f->payload == big) << "round " << round << ": the echo differs";
  }
  utsname u{};
  int major = 0, minor = 0;
  ASSERT_EQ(::uname(&u), 0);
  ASSERT_EQ(std::sscanf(u.release, "%d.%d", &major, &minor), 2);
  const bool kernel_has_bundles = major > 6 || (major == 6 && minor >= 10);
  if (std::string_view(s.reactor(0).backend_name()) == "io_uring" && kernel_has_bundles)
    EXPECT_GT(s.snapshot().receive_bundles, 0u);
  else
    EXPECT_EQ(s.snapshot().receive_bundles, 0u);
  s.stop();
}

TEST(BackendChoice, AutoFallsBackToEpollWithOneLogLine) {
  if constexpr (config::backend != config::Backend::automatic) GTEST_SKIP() << "io_backend is not auto";
  if (audit_arch == 0) GTEST_SKIP() << "no seccomp arch constant for this CPU";
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: io_uring refused, then a server on two reactors.
    ::close(p[0]);
    log_pipe = p[1];
    set_log_sink(&to_pipe);
    if (!refuse_io_uring()) ::_exit(10);
    Echo h;
    Server s(two_reactors(), h);
    if (s.start() != 0) ::_exit(11);
    for (std::size_t i = 0; i < s.reactor_count(); ++i)
      if (std::string_view(s.reactor(i).backend_name()) != "epoll") ::_exit(12);
    if (!echo_once(s.port())) ::_exit(13);
    s.stop();
    ::_exit(0);
  }
  ::close(p[1]);
  std::string log;
  char buf[512];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) log.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: seccomp, 11: start, 12: not on epoll, 13: echo failed; log:\n" << log;
  const std::string_view expected = "io_uring unavailable (io_uring_setup: Operation not permitted); using epoll";
  const std::size_t at = log.find(expected);
  EXPECT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find(expected, at + 1), std::string::npos) << "logged more than once:\n" << log;
}
