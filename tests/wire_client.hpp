// A WebSocket client for the tests that speaks the protocol by hand, so that
// it can also write what a real client never would: frames unmasked, with
// reserved bits or any opcode, chopped into writes of any size. It builds
// its frames itself rather than with protocol/, so it does not share the
// mistakes of the code under test. Every wait is bounded.
//
// It reads in one of two ways:
//  - blocking, from the test thread (read_head, read_frame, readable,
//    wait_eof): a test that stops reading leaves the server's sends in the
//    socket buffers, and a reactor turned by the test thread can be pumped
//    until readable();
//  - from a reader thread, once start_reader() ran (wait_frames, frames,
//    wait_close_frame, wait_eof, eof): every frame the server sends is
//    collected with the time it arrived, so a server that echoes while the
//    test is still writing cannot deadlock it.
//
//   WireConn c;
//   ASSERT_EQ(c.open(port), 101);
//   ASSERT_TRUE(c.send_text("hi"));
//   auto f = c.read_frame();             // blocking
//   ...
//   c.start_reader();                    // from here on, the reader thread
//   ASSERT_TRUE(c.write(wire::frame(0x1, wire::bytes("hi"))));
//   ASSERT_TRUE(c.wait_frames(2, 5000));
//   EXPECT_EQ(c.frames()[1].text(), "hi");
//
// Not part of the library.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/loopback.hpp"

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

// The size of the header of the frame whose second byte is `b1`.
inline std::size_t header_size(std::uint8_t b1) {
  const std::uint8_t len = b1 & 0x7F;
  const std::size_t extended = len == 126 ? 2 : len == 127 ? 8 : 0;
  return 2 + extended + ((b1 & 0x80) != 0 ? 4 : 0);
}
// The payload length in a whole header.
inline std::uint64_t payload_size(const std::uint8_t* h) {
  const std::uint8_t len = h[1] & 0x7F;
  if (len < 126) return len;
  std::uint64_t n = 0;
  for (int i = 0; i < (len == 126 ? 2 : 8); ++i) n = (n << 8) | h[2 + i];
  return n;
}
// The frame at `h`, whose header and payload have all arrived. A masked
// payload is kept as it came: a server must not mask, and `masked` (and the
// reader's server_error()) let the test say so.
inline RxFrame parse_frame(const std::uint8_t* h) {
  const std::size_t hl = header_size(h[1]);
  RxFrame f;
  f.fin = (h[0] & 0x80) != 0;
  f.rsv = static_cast<std::uint8_t>((h[0] >> 4) & 7);
  f.opcode = h[0] & 0x0F;
  f.masked = (h[1] & 0x80) != 0;
  f.payload.assign(h + hl, h + hl + payload_size(h));
  f.at = std::chrono::steady_clock::now();
  return f;
}

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

  static std::string upgrade_request(std::string_view path = "/", std::string_view extra = {}) {
    return "GET " + std::string(path) +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string(extra) + "\r\n";
  }

  // Connects and upgrades; the HTTP status (101), or 0. Reading stays
  // blocking until start_reader().
  int open(std::uint16_t port, std::string_view path = "/", std::string_view extra = {}) {
    if (!send_upgrade(port, path, extra)) return 0;
    return read_head();
  }
  // The request alone, for a test that turns the server's reactor itself
  // before it can read the answer.
  bool send_upgrade(std::uint16_t port, std::string_view path = "/", std::string_view extra = {}) {
    return connect(port) && write(upgrade_request(path, extra));
  }

  // Reads an HTTP response head byte by byte (no frame bytes are taken);
  // its status, or 0.
  int read_head(int timeout_ms = 5000) {
    head_.clear();
    while (head_.find("\r\n\r\n") == std::string::npos) {
      std::uint8_t c;
      if (!read_exact(&c, 1, timeout_ms)) return 0;
      head_.push_back(static_cast<char>(c));
    }
    return head_.size() >= 12 ? std::atoi(head_.c_str() + 9) : 0;
  }
  const std::string& head() const { return head_; }

  // Blocking write of everything; false once the server has gone (EPIPE,
  // reset).
  bool write(std::span<const std::uint8_t> b) {
    const std::uint8_t* p = b.data();
    std::size_t n = b.size();
    while (n > 0) {
      const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }
  bool write(std::string_view s) { return write(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())); }
  // One send() per `piece` bytes (TCP_NODELAY is on, so each leaves at once).
  bool write_chopped(const Bytes& b, std::size_t piece) {
    for (std::size_t i = 0; i < b.size(); i += piece)
      if (!write(std::span(b).subspan(i, std::min(piece, b.size() - i)))) return false;
    return true;
  }

  // One masked frame each.
  bool send(std::uint8_t opcode, const Bytes& payload, bool fin = true) { return write(frame(opcode, payload, fin)); }
  bool send_text(std::string_view s) { return send(0x1, bytes(s)); }
  bool send_binary(const Bytes& b) { return send(0x2, b); }
  bool send_close(std::uint16_t code) { return send(0x8, close_payload(code)); }

  // --- blocking reads (before start_reader) ---------------------------------

  // True when bytes (or the TCP end) are waiting.
  bool readable() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  // Reads one frame; nullopt on timeout or the TCP end.
  std::optional<RxFrame> read_frame(int timeout_ms = 5000) {
    Bytes b(2);
    if (!read_exact(b.data(), 2, timeout_ms)) return std::nullopt;
    const std::size_t hl = header_size(b[1]);
    b.resize(hl);
    if (!read_exact(b.data() + 2, hl - 2, timeout_ms)) return std::nullopt;
    const std::uint64_t len = payload_size(b.data());
    b.resize(hl + len);
    if (!read_exact(b.data() + hl, len, timeout_ms)) return std::nullopt;
    return parse_frame(b.data());
  }
  // Exactly n bytes, each wait for more at most timeout_ms.
  bool read_exact(std::uint8_t* p, std::size_t n, int timeout_ms) {
    while (n > 0) {
      pollfd pf{fd_, POLLIN, 0};
      if (::poll(&pf, 1, timeout_ms) <= 0) return false;
      const ssize_t r = ::recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }

  // True when the server ended TCP (FIN or reset) within the timeout. Without
  // the reader, what arrives meanwhile is read and dropped.
  bool wait_eof(int timeout_ms = 5000) {
    if (reader_.joinable()) {
      std::unique_lock lk(mu_);
      return cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return eof_; });
    }
    std::uint8_t b[4096];
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      if (::recv(fd_, b, sizeof b, 0) <= 0) return true;
    }
  }

  // --- the reader thread ----------------------------------------------------

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

  // ---------------------------------------------------------------------------

  void set_recv_buffer(int bytes) { ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes); }
  int fd() const { return fd_; }
  void close() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void read_loop() {
    Bytes buf;
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
        const std::uint8_t* h = buf.data() + used;
        if (avail < 2 || avail < header_size(h[1])) break;
        const std::size_t size = header_size(h[1]) + payload_size(h);
        if (avail < size) break;
        RxFrame f = parse_frame(h);
        used += size;
        if (f.opcode == 0x8 && auto_close_reply_ && !replied_) {
          replied_ = true;
          write(frame(0x8, f.payload.size() >= 2 ? Bytes(f.payload.begin(), f.payload.begin() + 2) : Bytes{}));
        }
        std::lock_guard lk(mu_);
        if (f.masked) server_error_ = "server frame is masked";
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
