// Socket helpers for the engine. Every function returns a negative errno on
// failure (the liburing convention) and never throws or prints.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include "engine/fd.hpp"

namespace ringlink {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  std::uint16_t port() const noexcept;
};

// Parses "127.0.0.1", "::1", "localhost" (loopback only; no DNS in the
// engine) with a port. Returns 0 or -EINVAL.
int resolve_address(std::string_view host, std::uint16_t port, SocketAddress& out) noexcept;

// A non-blocking listening socket with SO_REUSEADDR, and SO_REUSEPORT when
// reuse_port. Returns the fd or -errno.
int make_listener(const SocketAddress& addr, bool reuse_port, int backlog) noexcept;

// The port a bound socket got (for port 0). Returns 0 on error.
std::uint16_t local_port(int fd) noexcept;

// Starts a non-blocking connect; returns the fd (connect may still be in
// progress: EINPROGRESS is not an error) or -errno. `source` may be null.
int start_connect(const SocketAddress& addr, const SocketAddress* source) noexcept;

int set_nodelay(int fd, bool on) noexcept;

// One gather write that never blocks and never raises SIGPIPE (a peer that
// went away is -EPIPE, not a dead process). Returns the bytes the kernel took
// or -errno (-EAGAIN: the socket buffer is full).
ssize_t send_msg(int fd, const msghdr& msg) noexcept;

}  // namespace ringlink
