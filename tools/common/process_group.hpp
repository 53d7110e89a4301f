// Forked worker processes of one tool (ringlink-echo --processes, ringlink-load
// --processes) and the pipes they report to the parent through.
//
//   ringlink::tools::ProcessGroup group;
//   if (!group.spawn(n, [&](unsigned i, int fd) { ...; return write_frame(fd, 1, bytes) ? 0 : 1; }, error)) ...
//   std::vector<ringlink::tools::Frame> frames;
//   group.poll(100, frames);                 // whatever complete frames arrived
//   for (unsigned i : group.reap()) ...      // children that exited meanwhile
//   group.signal_all(SIGTERM);
//   group.wait_all(std::chrono::seconds(10), frames);  // then SIGKILL by PID
//
// A frame is a 4-byte type, a 4-byte length and the payload, written with
// blocking writes; the parent reads without blocking. Children are forked
// before any thread starts, so the child is a faithful copy.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/fd.hpp"

namespace ringlink::tools {

inline constexpr std::uint32_t max_frame_bytes = 256u << 20;  // a bound, not a size we expect

bool write_frame(int fd, std::uint32_t type, std::span<const std::byte> payload) noexcept;

template <class T>
bool write_pod(int fd, std::uint32_t type, const T& value) noexcept {
  return write_frame(fd, type, std::as_bytes(std::span<const T, 1>(&value, 1)));
}

struct Frame {
  unsigned child = 0;
  std::uint32_t type = 0;
  std::vector<std::byte> payload;
};

class ProcessGroup {
 public:
  struct Child {
    pid_t pid = -1;
    Fd pipe;                       // read end; closed at EOF
    std::vector<std::byte> buffer; // a partial frame
    bool exited = false;
    int status = 0;                // waitpid's, once exited
    bool killed = false;           // we sent SIGKILL
  };

  ProcessGroup() = default;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;
  // SIGKILLs and reaps children still running: a parent never leaves orphans.
  ~ProcessGroup();

  // Forks n children. Child i runs body(i, fd), fd the write end of its pipe,
  // and _exits with what body returns; it gets SIGTERM if the parent dies.
  bool spawn(unsigned n, const std::function<int(unsigned index, int fd)>& body, std::string& error);

  // Waits up to timeout_ms for input and appends the complete frames.
  // A frame over max_frame_bytes closes that child's pipe (counted as bad).
  void poll(int timeout_ms, std::vector<Frame>& out);
  // Children that exited since the last call (waitpid without blocking).
  std::vector<unsigned> reap();
  void signal_all(int sig) noexcept;
  // Reads frames and reaps until every child has exited or `timeout` passed;
  // then SIGKILLs the rest by PID and reaps them. True when none was killed.
  bool wait_all(std::chrono::milliseconds timeout, std::vector<Frame>& out);

  std::size_t size() const noexcept { return children_.size(); }
  const Child& child(unsigned i) const noexcept { return children_[i]; }
  bool all_exited() const noexcept;
  // "exited with status 3", "killed by signal 9 (Killed)".
  static std::string describe(int status);

 private:
  bool read_child(unsigned i, std::vector<Frame>& out);
  std::vector<Child> children_;
};

}  // namespace ringlink::tools
