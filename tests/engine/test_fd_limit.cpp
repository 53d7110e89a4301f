// Connection flood past RLIMIT_NOFILE: ringlink-echo runs under a low fd
// limit (prlimit). Links already open keep being served, accepting resumes
// when descriptors free up, and the listener is not spun on (accept calls
// are counted in the metrics the server prints at exit).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/wire_client.hpp"

using namespace std::chrono_literals;
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
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::this_thread::sleep_for(10ms);
    std::ifstream f(port_file);
    unsigned p = 0;
    if (f >> p) port = static_cast<std::uint16_t>(p);
  }
  ASSERT_NE(port, 0) << slurp(child.err_path);

  // Fill the server up: keep opening until an upgrade does not complete.
  std::vector<std::unique_ptr<WireConn>> open;
  for (int i = 0; i < 60; ++i) {
    auto c = std::make_unique<WireConn>();
    ASSERT_TRUE(c->send_upgrade(port));
    if (c->read_head(300) != 101) break;  // accepted by the kernel, not by the server
    open.push_back(std::move(c));
  }
  ASSERT_GT(open.size(), 10u);
  ASSERT_LT(open.size(), 60u) << "the fd limit did not bite";

  // More connections wait in the backlog while the server is out of fds.
  std::vector<std::unique_ptr<WireConn>> waiting;
  for (int i = 0; i < 5; ++i) {
    waiting.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(waiting.back()->send_upgrade(port));
  }
  std::this_thread::sleep_for(500ms);

  // Links already open are served as usual.
  for (auto& c : open) {
    ASSERT_TRUE(c->send_text("alive"));
    auto f = c->read_frame(2000);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->text(), "alive");
  }
  // Free ten descriptors: the waiting connections get their 101.
  for (int i = 0; i < 10; ++i) {
    open.back()->send_close(1000);
    open.back()->wait_eof(2000);
    open.pop_back();
  }
  for (auto& c : waiting) EXPECT_EQ(c->read_head(3000), 101);

  open.clear();  // closing our ends lets the graceful stop finish at once
  waiting.clear();
  ::kill(child.pid, SIGTERM);
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  child.pid = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string err = slurp(child.err_path);
  const std::size_t at = err.rfind("accept calls ");
  ASSERT_NE(at, std::string::npos) << err;
  unsigned long calls = 0, backoffs = 0;
  ASSERT_EQ(std::sscanf(err.c_str() + at, "accept calls %lu, accept backoffs %lu", &calls, &backoffs), 2) << err;
  EXPECT_GT(backoffs, 0u);
  // ~1 s of back-off at 100 ms per retry, a few calls each: nowhere near a spin.
  EXPECT_LT(calls, 400u) << err;
  std::remove(port_file.c_str());
  std::remove(child.err_path.c_str());
  ::rmdir(dir.c_str());
}
