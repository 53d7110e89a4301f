// What the end-to-end tests of the tools share: the environment that names
// the binaries, scratch directories, files read whole, and child processes
// stopped by PID.
//
//   load_test::TempDir dir;
//   load_test::Child echo({load_test::env("RINGLINK_ECHO"), "--port", "0", "--port-file", dir.file("port")},
//                         dir.file("echo.out"));
//   const int port = load_test::wait_for_port(dir.file("port"));
//   EXPECT_EQ(echo.wait(30s), 0);
//
// Not part of the tools.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/wait_until.hpp"

extern char** environ;

namespace load_test {

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A scratch directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ringlink-load-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process; stdin is a pipe kept open while the Child lives (the
// python peers exit at its EOF), stdout and stderr go to one file. SIGKILLed
// by PID and reaped if still running when destroyed.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& out_path) {
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    stdin_ = in[1];
  }
  ~Child() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  bool exited() {
    if (done_ || pid_ <= 0) return true;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) done_ = true;
    return done_;
  }
  // Exit code; -1 on a signal, a failed start, or still running after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    ringlink::test::eventually([&] { return exited(); }, timeout, std::chrono::milliseconds(10));
    if (!done_) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int status_ = 0;
  bool done_ = false;
};

// The port a server wrote to `port_file` (a number and a newline), or 0.
inline int wait_for_port(const std::string& port_file,
                         std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  int port = 0;
  ringlink::test::eventually(
      [&] {
        const std::string text = read_file(port_file);
        if (text.empty() || text.back() != '\n') return false;
        port = std::atoi(text.c_str());
        return true;
      },
      timeout, std::chrono::milliseconds(20));
  return port;
}

}  // namespace load_test
