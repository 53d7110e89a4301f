// Connection flood past RLIMIT_NOFILE: ringlink-echo runs under a low fd
// limit (prlimit). Links already open keep being served, accepting resumes
// when descriptors free up, and the listener is not spun on: the server backs
// off at most once per accept_backoff_ms (its metrics, printed on SIGUSR1 and
// at exit, count accept calls and back-offs). Every wait is for a condition;
// its deadline only stops a hang.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/server_config.hpp"
#include "tests/wait_until.hpp"
#include "tests/wire_client.hpp"

using namespace std::chrono_literals;
using ringlink::test::eventually;
using ringlink::wire::WireConn;

namespace {

struct Child {
  pid_t pid = -1;
  std::string err_path;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The last "accept calls N, accept backoffs M" the server printed, or false.
bool last_accept_counts(const std::string& err, unsigned long& calls, unsigned long& backoffs) {
  const std::size_t at = err.rfind("accept calls ");
  return at != std::string::npos &&
         std::sscanf(err.c_str() + at, "accept calls %lu, accept backoffs %lu", &calls, &backoffs) == 2;
}

}  // namespace

TEST(FdLimit, FloodPastNofileKeepsServingAndResumes) {
  const char* echo = std::getenv("RINGLINK_ECHO");
  if (echo == nullptr || ::access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "needs RINGLINK_ECHO and prlimit";
  char dir_tmpl[] = "/tmp/ringlink-fdlimit-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_tmpl), nullptr);
  const std::string dir = dir_tmpl;
  const std::string port_file = dir + "/port";
  Child child;
  child.err_path = dir + "/stderr";
  const auto started = std::chrono::steady_clock::now();
  child.pid = ::fork();
  ASSERT_GE(child.pid, 0);
  if (child.pid == 0) {
    std::freopen(child.err_path.c_str(), "w", stderr);
    // 40 descriptors: stdio, epoll, eventfd, listener leave room for ~30 links.
    ::execl("/usr/bin/prlimit", "prlimit", "--nofile=40:40", echo, "--port", "0", "--reactors", "1",
            "--port-file", port_file.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::uint16_t port = 0;
  ASSERT_TRUE(eventually([&] {
    std::ifstream f(port_file);
    unsigned p = 0;
    if (f >> p) port = static_cast<std::uint16_t>(p);
    return port != 0;
  })) << slurp(child.err_path);

  // Whether the server has run out of descriptors: it has backed off at
  // least once. Reads its last metrics and asks for fresh ones (SIGUSR1,
  // which it looks at ten times a second; its stderr is unbuffered).
  auto asked = std::chrono::steady_clock::now() - 1s;
  const auto out_of_fds = [&] {
    unsigned long calls = 0, backoffs = 0;
    if (last_accept_counts(slurp(child.err_path), calls, backoffs) && backoffs > 0) return true;
    if (std::chrono::steady_clock::now() - asked >= 100ms) {
      ::kill(child.pid, SIGUSR1);
      asked = std::chrono::steady_clock::now();
    }
    return false;
  };

  // Fill the server up: keep opening until an upgrade is not answered
  // because the server is out of descriptors (the kernel accepted it, the
  // server could not).
  std::vector<std::unique_ptr<WireConn>> open;
  bool full = false;
  for (int i = 0; i < 60 && !full; ++i) {
    auto c = std::make_unique<WireConn>();
    ASSERT_TRUE(c->send_upgrade(port));
    bool answered = false;
    ASSERT_TRUE(eventually([&] { return (answered = c->readable()) || (full = out_of_fds()); }))
        << "neither a 101 nor a back-off\n" << slurp(child.err_path);
    if (answered) {
      ASSERT_EQ(c->read_head(), 101);
      open.push_back(std::move(c));
    }
  }
  ASSERT_TRUE(full) << "the fd limit did not bite";
  ASSERT_GT(open.size(), 10u);

  // More connections wait in the backlog while the server is out of fds.
  std::vector<std::unique_ptr<WireConn>> waiting;
  for (int i = 0; i < 5; ++i) {
    waiting.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(waiting.back()->send_upgrade(port));
  }

  // Links already open are served as usual.
  for (auto& c : open) {
    ASSERT_TRUE(c->send_text("alive"));
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->text(), "alive");
  }
  // Free ten descriptors: the waiting connections get their 101.
  for (int i = 0; i < 10; ++i) {
    open.back()->send_close(1000);
    open.back()->wait_eof();
    open.pop_back();
  }
  for (auto& c : waiting) EXPECT_EQ(c->read_head(), 101);

  open.clear();  // closing our ends lets the graceful stop finish at once
  waiting.clear();
  ::kill(child.pid, SIGTERM);
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  child.pid = -1;
  const auto lived = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string err = slurp(child.err_path);
  unsigned long calls = 0, backoffs = 0;
  ASSERT_TRUE(last_accept_counts(err, calls, backoffs)) << err;
  EXPECT_GT(backoffs, 0u);
  // No spin: a back-off pauses accepting for accept_backoff_ms, so there are
  // at most as many back-offs as such pauses fit in the server's life (half
  // the pause allowed for the reactor's cached clock, plus one). A slower
  // machine only lengthens the life; a spin would back off on every turn.
  const auto pause = std::chrono::milliseconds(ringlink::ServerConfig{}.accept_backoff_ms);
  const auto most_backoffs = static_cast<unsigned long>(lived / (pause / 2)) + 1;
  EXPECT_LE(backoffs, most_backoffs) << err;
  // Every accept call either took one of the connections this test made
  // (at most 60 + 5) or backed off.
  EXPECT_LE(calls, backoffs + 60 + 5) << err;
  std::remove(port_file.c_str());
  std::remove(child.err_path.c_str());
  ::rmdir(dir.c_str());
}
