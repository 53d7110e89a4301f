// A WebSocket client for conformance and fault tests that writes any bytes
// (masked or not, any opcode, reserved bits, chopped into writes of any size)
// while a reader thread collects every frame the server sends, with the time
// it arrived, and the TCP end. The test thread never blocks on a read, so a
// server that echoes while the client is still writing cannot deadlock it.
//
//   WireConn c;
//   ASSERT_EQ(c.open(port), 101);
//   c.write(wire::frame(0x1, wire::bytes("hi")));
//   ASSERT_TRUE(c.wait_frames(1, 5000));
//   EXPECT_EQ(c.frame(0).text(), "hi");
//
// Not part of the library.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/loopback.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ringlink::wire {

using Bytes = std::vector<std::uint8_t>;

inline Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// One client frame: byte 0 is FIN | RSV(3 bits) | opcode. The length uses
// the shortest form. A masked frame uses a fixed key unless one is given.
inline Bytes frame(std::uint8_t opcode, const Bytes& payload, bool fin = true, bool mask = true, std::uint8_t rsv = 0,
                   std::uint32_t key = 0x37FA213D) {
  Bytes out;
  out.push_back(static_cast<std::uint8_t>((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0F)));
  const std::uint8_t m = mask ? 0x80 : 0;
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<std::uint8_t>(m | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<std::uint8_t>(m | 126));
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    out.push_back(static_cast<std::uint8_t>(m | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  }
  const std::uint8_t k[4] = {static_cast<std::uint8_t>(key >> 24), static_cast<std::uint8_t>(key >> 16),
                             static_cast<std::uint8_t>(key >> 8), static_cast<std::uint8_t>(key)};
  if (mask) out.insert(out.end(), k, k + 4);
  const std::size_t at = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  if (mask)
    for (std::size_t i = 0; i < n; ++i) out[at + i] ^= k[i & 3];
  return out;
}

inline Bytes close_payload(std::uint16_t code, std::string_view reason = {}) {
  Bytes p = {static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code)};
  p.insert(p.end(), reason.begin(), reason.end());
  return p;
}

// A frame the server sent.
struct RxFrame {
  std::uint8_t opcode = 0;
  std::uint8_t rsv = 0;
  bool fin = true;
  bool masked = false;
  Bytes payload;
  std::chrono::steady_clock::time_point at;
  std::string text() const { return {payload.begin(), payload.end()}; }
  // The close code, or 1005 when the close frame carried none.
  std::uint16_t close_code() const {
    return payload.size() < 2 ? 1005 : static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
  }
};

class WireConn {
 public:
  WireConn() = default;
  ~WireConn() { close(); }
  WireConn(const WireConn&) = delete;
  WireConn& operator=(const WireConn&) = delete;

  bool connect(std::uint16_t port) {
    fd_ = ringlink::test::connect_loopback(port);
    return fd_ >= 0;
  }

  static std::string upgrade_request(std::string_view extra = {}) {
    return "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string(extra) + "\r\n";
  }

  // Connects, upgrades and starts the reader. The HTTP status (101), or 0.
  int open(std::uint16_t port) {
    if (!connect(port)) return 0;
    if (!write(bytes(upgrade_request()))) return 0;
    const int status = read_head(5000);
    if (status == 101) start_reader();
    return status;
  }

  // Reads an HTTP response head byte by byte (no frame bytes are taken).
  int read_head(int timeout_ms) {
    head_.clear();
    while (head_.find("\r\n\r\n") == std::string::npos) {
      char c;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return 0;
      if (::recv(fd_, &c, 1, 0) != 1) return 0;
      head_.push_back(c);
    }
    return head_.size() >= 12 ? std::atoi(head_.c_str() + 9) : 0;
  }
  const std::string& head() const { return head_; }

  // Blocking write of everything; false once the server has gone (EPIPE,
  // reset): the conformance verdict then rests on what was received.
  bool write(const Bytes& b) { return write_raw(b.data(), b.size()); }
  bool write_raw(const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }
  // One send() per `piece` bytes (TCP_NODELAY is on, so each leaves at once).
  bool write_chopped(const Bytes& b, std::size_t piece) {
    for (std::size_t i = 0; i < b.size(); i += piece)
      if (!write_raw(b.data() + i, std::min(piece, b.size() - i))) return false;
    return true;
  }

  // The reader answers the server's close frame with a close of the same
  // code and ends TCP when the server does (a well-behaved peer), for tests
  // that are not about the close. The reply is written from the reader
  // thread: use it only when the test thread writes nothing after the open.
  void set_auto_close_reply(bool on) { auto_close_reply_ = on; }

  void start_reader() {
    reader_ = std::thread([this] { read_loop(); });
  }

  // Waits until at least n frames arrived (or the TCP end). True when n did.
  bool wait_frames(std::size_t n, int timeout_ms) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return frames_.size() >= n || eof_; });
    return frames_.size() >= n;
  }
  // Waits for a close frame from the server; its index, or -1.
  int wait_close_frame(int timeout_ms) {
    std::unique_lock lk(mu_);
    int at = -1;
    cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] {
      for (std::size_t i = 0; i < frames_.size(); ++i)
        if (frames_[i].opcode == 0x8) {
          at = static_cast<int>(i);
          return true;
        }
      return eof_;
    });
    return at;
  }
  // True when the server ended TCP (FIN or reset) within the timeout.
  bool wait_eof(int timeout_ms) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return eof_; });
  }
  bool eof() {
    std::lock_guard lk(mu_);
    return eof_;
  }
  bool reset() {
    std::lock_guard lk(mu_);
    return reset_;
  }
  // Frames received so far (a copy), and a bad frame from the server.
  std::vector<RxFrame> frames() {
    std::lock_guard lk(mu_);
    return frames_;
  }
  std::size_t frame_count() {
    std::lock_guard lk(mu_);
    return frames_.size();
  }
  std::string server_error() {
    std::lock_guard lk(mu_);
    return server_error_;
  }

  int fd() const { return fd_; }
  void close() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void read_loop() {
    std::vector<std::uint8_t> buf;
    std::size_t used = 0;
    std::uint8_t tmp[65536];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, 20);
      if (r <= 0) continue;
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        if (auto_close_reply_) ::shutdown(fd_, SHUT_WR);   // our FIN ends the server's linger
        std::lock_guard lk(mu_);
        eof_ = true;
        reset_ = n < 0;
        cv_.notify_all();
        return;
      }
      buf.insert(buf.end(), tmp, tmp + n);
      for (;;) {
        const std::size_t avail = buf.size() - used;
        if (avail < 2) break;
        const std::uint8_t* h = buf.data() + used;
        std::size_t hl = 2;
        std::uint64_t len = h[1] & 0x7F;
        if (len == 126) hl = 4;
        if (len == 127) hl = 10;
        const bool masked = (h[1] & 0x80) != 0;
        if (masked) hl += 4;
        if (avail < hl) break;
        if (len == 126) {
          len = (std::uint64_t{h[2]} << 8) | h[3];
        } else if (len == 127) {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
        }
        if (avail < hl + len) break;
        RxFrame f;
        f.fin = (h[0] & 0x80) != 0;
        f.rsv = static_cast<std::uint8_t>((h[0] >> 4) & 7);
        f.opcode = h[0] & 0x0F;
        f.masked = masked;
        f.payload.assign(h + hl, h + hl + len);
        f.at = std::chrono::steady_clock::now();
        used += hl + len;
        if (f.opcode == 0x8 && auto_close_reply_ && !replied_) {
          replied_ = true;
          const Bytes reply = frame(0x8, f.payload.size() >= 2 ? Bytes(f.payload.begin(), f.payload.begin() + 2) : Bytes{});
          write(reply);
        }
        std::lock_guard lk(mu_);
        if (masked) server_error_ = "server frame is masked";
        if (f.rsv != 0) server_error_ = "server frame has reserved bits";
        frames_.push_back(std::move(f));
        cv_.notify_all();
      }
      if (used == buf.size()) {
        buf.clear();
        used = 0;
      } else if (used > (1u << 20)) {
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
        used = 0;
      }
    }
  }

  int fd_ = -1;
  std::string head_;
  std::thread reader_;
  std::atomic<bool> stop_{false};
  bool auto_close_reply_ = false;
  bool replied_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RxFrame> frames_;
  bool eof_ = false;
  bool reset_ = false;
  std::string server_error_;
};

}  // namespace ringlink::wire
