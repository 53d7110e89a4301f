// Helpers for the integration tests: peer processes (python3-websockets,
// gorilla/websocket, the ringlink-echo binary) started with posix_spawn,
// read and waited on with timeouts, and always killed at the end.
//
//   auto p = itest::PeerProcess::start({itest::python(), itest::peer_script("ws_server.py"), "echo"});
//   ASSERT_TRUE(p) << "spawn failed";
//   std::optional<std::string> line = p->read_line(std::chrono::seconds(10));
//   ...
//   std::optional<int> status = p->wait(std::chrono::seconds(5));  // raw wait status
//
// The child's stdin is a pipe that the test keeps open: peer scripts exit when
// it reaches EOF, so a crashed test leaves no peer behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace itest {

// Paths handed over by meson (environment); empty when not configured.
std::string env_or_empty(const char* name);
inline std::string python() { return "/usr/bin/python3"; }
std::string peer_script(const std::string& name);  // $RINGLINK_PEERS_DIR/name

class PeerProcess {
 public:
  // Starts argv[0] (a path) with argv. Null when spawning failed (`error`
  // tells why).
  static std::unique_ptr<PeerProcess> start(const std::vector<std::string>& argv, std::string* error = nullptr);
  ~PeerProcess();  // SIGKILL if still running, then reaped
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // The next stdout line (without '\n'), or nullopt on timeout or EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Waits for exit, draining stdout meanwhile. The raw wait status, or
  // nullopt on timeout (the process keeps running).
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool send_signal(int sig) noexcept;
  // Everything the child wrote on stderr so far / on stdout and not yet
  // returned by read_line.
  std::string stderr_text() const;
  const std::string& pending_stdout() const noexcept { return out_buf_; }
  // "exit 0", "exit 3", "signal 9", or "running".
  std::string describe_status() const;

 private:
  PeerProcess() = default;
  bool pump_stdout(int timeout_ms);  // false: EOF or error
  bool reap(bool block) noexcept;

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;   // unlinked temporary file
  int pidfd_ = -1;       // -1 when pidfd_open is unavailable
  bool exited_ = false;
  bool stdout_eof_ = false;
  int status_ = 0;
  std::string out_buf_;
};

// Human-readable wait status, e.g. for assertion messages.
std::string describe_wait_status(int status);
// True when `status` is a normal exit with code 0.
bool exited_ok(int status);

// Runs a peer to completion within `timeout`; returns "" when it exited 0,
// otherwise what happened and its stderr (for the assertion message).
std::string run_peer(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// Waits (inotify, bounded) until `path` exists; false on timeout.
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace itest
