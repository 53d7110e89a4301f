#include "engine/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>

namespace ringlink {

std::uint16_t SocketAddress::port() const noexcept {
  if (storage.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (storage.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

int resolve_address(std::string_view host, std::uint16_t port, SocketAddress& out) noexcept {
  out = {};
  std::string_view h = host.empty() || host == "localhost" ? std::string_view("127.0.0.1") : host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  // inet_pton wants a C string; a stack copy, as the function must not throw.
  char text[INET6_ADDRSTRLEN];
  if (h.size() >= sizeof text) return -EINVAL;  // longer than any address
  std::memcpy(text, h.data(), h.size());
  text[h.size()] = '\0';
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
    return 0;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    return 0;
  }
  return -EINVAL;
}

int make_listener(const SocketAddress& addr, bool reuse_port, int backlog) noexcept {
  Fd fd{::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (!fd) return -errno;
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return -errno;
  if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return -errno;
  if (::bind(fd.get(), addr.get(), addr.length) != 0) return -errno;
  if (::listen(fd.get(), backlog) != 0) return -errno;
  return fd.release();
}

std::uint16_t local_port(int fd) noexcept {
  SocketAddress a;
  a.length = sizeof a.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) return 0;
  return a.port();
}

int start_connect(const SocketAddress& addr, const SocketAddress* source) noexcept {
  Fd fd{::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (!fd) return -errno;
  if (source != nullptr) {
    int one = 1;
    // Lets many source addresses share ephemeral ports (past ~28K links).
    ::setsockopt(fd.get(), SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd.get(), source->get(), source->length) != 0) return -errno;
  }
  if (::connect(fd.get(), addr.get(), addr.length) != 0 && errno != EINPROGRESS) return -errno;
  return fd.release();
}

int set_nodelay(int fd, bool on) noexcept {
  int v = on ? 1 : 0;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0 ? 0 : -errno;
}

ssize_t send_msg(int fd, const msghdr& msg) noexcept {
  for (;;) {
    // MSG_DONTWAIT: the reactor's thread must not sleep in a write even if
    // a socket somehow lost O_NONBLOCK.
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace ringlink
