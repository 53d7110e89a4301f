// A blocking WebSocket client for engine tests: it speaks the protocol by
// hand (so it can also send what a real client never would) and every read
// has a timeout. Not part of the library.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/loopback.hpp"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec_native.hpp"
#include "protocol/frame.hpp"

namespace ringlink::test {

struct RawFrame {
  std::uint8_t opcode = 0;
  bool fin = true;
  std::vector<std::byte> payload;
  std::string text() const { return {reinterpret_cast<const char*>(payload.data()), payload.size()}; }
  std::uint16_t close_code() const {
    if (payload.size() < 2) return close_code::no_status;
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(payload[0]) << 8) | std::to_integer<unsigned>(payload[1]));
  }
};

class RawClient {
 public:
  RawClient() = default;
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connect(std::uint16_t port) {
    fd_ = ringlink::test::connect_loopback(port);
    return fd_ >= 0;
  }

  // Connects and upgrades; returns the HTTP status (101 on success, 0 on error).
  int open(std::uint16_t port, std::string_view path = "/", std::string_view extra = {}) {
    if (!connect(port)) return 0;
    std::string req = "GET " + std::string(path) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                      std::string(extra) + "\r\n";
    if (!write_all(req)) return 0;
    return read_status();
  }

  // Sends the upgrade request only (for tests that run the reactor on the
  // same thread and must pump it before reading the answer).
  bool send_upgrade(std::uint16_t port, std::string_view path = "/") {
    if (!connect(port)) return false;
    std::string req = "GET " + std::string(path) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    return write_all(req);
  }
  // True when bytes (or EOF) are waiting.
  bool readable() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  // Reads an HTTP response head; returns its status or 0.
  int read_status(int timeout_ms = 5000) {
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
      char c;
      if (!read_exact(reinterpret_cast<std::byte*>(&c), 1, timeout_ms)) return 0;
      head.push_back(c);
    }
    last_head_ = head;
    if (head.size() < 12) return 0;
    return std::atoi(head.c_str() + 9);
  }
  const std::string& last_head() const { return last_head_; }

  bool write_all(std::string_view s) { return write_bytes(reinterpret_cast<const std::byte*>(s.data()), s.size()); }
  bool write_bytes(const std::byte* p, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  // A masked client frame (mask=false sends it unmasked: a protocol error).
  static std::vector<std::byte> frame(std::uint8_t opcode, std::span<const std::byte> payload, bool fin = true,
                                      bool mask = true, std::uint8_t rsv = 0) {
    FrameHeader h;
    h.fin = fin;
    h.rsv = rsv;
    h.opcode = opcode;
    h.masked = mask;
    h.mask = {0x12, 0x34, 0x56, 0x78};
    h.payload_length = payload.size();
    std::array<std::byte, max_frame_header> hdr;
    NativeEncoder enc;
    const std::size_t hl = enc.encode_header(std::span<std::byte, max_frame_header>(hdr), h);
    std::vector<std::byte> out(hdr.begin(), hdr.begin() + static_cast<std::ptrdiff_t>(hl));
    const std::size_t at = out.size();
    out.insert(out.end(), payload.begin(), payload.end());
    if (mask) apply_mask(std::span<std::byte>(out.data() + at, payload.size()), h.mask, 0);
    return out;
  }
  bool send(std::uint8_t opcode, std::span<const std::byte> payload, bool fin = true) {
    auto f = frame(opcode, payload, fin);
    return write_bytes(f.data(), f.size());
  }
  bool send_text(std::string_view s) {
    return send(static_cast<std::uint8_t>(Opcode::text), std::as_bytes(std::span<const char>(s.data(), s.size())));
  }
  bool send_binary(std::span<const std::byte> b) { return send(static_cast<std::uint8_t>(Opcode::binary), b); }
  bool send_close(std::uint16_t code) {
    std::byte b[2] = {std::byte(code >> 8), std::byte(code & 0xFF)};
    return send(static_cast<std::uint8_t>(Opcode::close), b);
  }

  // Reads one frame (server frames are unmasked). nullopt on timeout/EOF.
  std::optional<RawFrame> read_frame(int timeout_ms = 5000) {
    std::byte h[2];
    if (!read_exact(h, 2, timeout_ms)) return std::nullopt;
    RawFrame f;
    f.fin = (std::to_integer<unsigned>(h[0]) & 0x80) != 0;
    f.opcode = std::to_integer<std::uint8_t>(h[0]) & 0x0F;
    std::uint64_t len = std::to_integer<unsigned>(h[1]) & 0x7F;
    if (len == 126) {
      std::byte e[2];
      if (!read_exact(e, 2, timeout_ms)) return std::nullopt;
      len = (std::to_integer<std::uint64_t>(e[0]) << 8) | std::to_integer<std::uint64_t>(e[1]);
    } else if (len == 127) {
      std::byte e[8];
      if (!read_exact(e, 8, timeout_ms)) return std::nullopt;
      len = 0;
      for (auto b : e) len = (len << 8) | std::to_integer<std::uint64_t>(b);
    }
    f.payload.resize(len);
    if (len > 0 && !read_exact(f.payload.data(), len, timeout_ms)) return std::nullopt;
    return f;
  }

  // True when the server closed the TCP connection within the timeout.
  bool wait_eof(int timeout_ms = 5000) {
    std::byte b[4096];
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n <= 0) return true;
    }
  }

  bool read_exact(std::byte* p, std::size_t n, int timeout_ms) {
    while (n > 0) {
      pollfd pf{fd_, POLLIN, 0};
      if (::poll(&pf, 1, timeout_ms) <= 0) return false;
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }

  void set_recv_buffer(int bytes) { ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes); }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  std::string last_head_;
};

inline std::vector<std::byte> bytes_of(std::string_view s) {
  auto b = std::as_bytes(std::span<const char>(s.data(), s.size()));
  return {b.begin(), b.end()};
}

}  // namespace ringlink::test
