// libFuzzer target for a whole server link: the input is a byte stream a
// peer sends, through a socketpair, to a link of one Reactor driven with
// run_once() on the fuzzing thread (the handshake, frames, the close
// handshake, timers and the send queue all run for real).
//
// Input: byte 0 is flags (bit 0: prepend a valid upgrade request so that
// most inputs reach the frame path; bits 1-2: how the peer ends: close,
// half-close then close, or reset), byte 1 seeds the write sizes, the rest
// is the stream. After each write the reactor turns and whatever the server
// wrote is read and dropped. At the end the link must be freed within a
// bounded number of turns with no receive chunk, send queue or open count
// left behind; anything else aborts. One Reactor serves every input.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "engine/reactor.hpp"

namespace {

using namespace ringlink;

[[noreturn]] void bug() { std::abort(); }

// Echoes; a text message starting with "close" closes with 4000, one
// starting with "abort" drops the link, so the local close paths run too.
struct FuzzEcho : Handler {
  void on_message(Link& link, std::span<std::byte> p, Opcode op) override {
    const std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
    if (op == Opcode::text && s.rfind("close", 0) == 0) {
      link.close(4000, "fuzz");
      return;
    }
    if (op == Opcode::text && s.rfind("abort", 0) == 0) {
      link.abort();
      return;
    }
    (void)link.send(p, op);
  }
};

struct World {
  ServerConfig cfg;
  FuzzEcho handler;
  std::unique_ptr<Reactor> reactor;
  World() {
    cfg.reactors = 1;
    cfg.listen = false;
    cfg.max_queued_bytes = 64 * 1024;   // small: the backpressure path runs
    reactor = std::make_unique<Reactor>(0, cfg, handler, nullptr);
    if (reactor->open(-1) != 0) bug();
  }
};

World& world() {
  static World* w = new World;   // lives for the process: one Reactor for every input
  return *w;
}

constexpr std::string_view kUpgrade =
    "GET / HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

void drain(int fd) {
  char buf[65536];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

void pump(Reactor& r, int peer, int turns) {
  for (int i = 0; i < turns; ++i) {
    r.run_once(0);
    if (peer >= 0) drain(peer);
  }
}

// Writes everything it can; gives up (false) when the server stops reading.
bool write_piece(Reactor& r, int peer, const std::uint8_t* p, std::size_t n) {
  int stalls = 0;
  while (n > 0) {
    const ssize_t w = ::send(peer, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= static_cast<std::size_t>(w);
      stalls = 0;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;  // the server closed
    if (++stalls > 8) return false;  // paused or full: the rest would wait for ever
    pump(r, peer, 2);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  World& w = world();
  Reactor& r = *w.reactor;
  const std::uint8_t flags = data[0];
  std::uint32_t seed = data[1] | 1u;
  data += 2;
  size -= 2;

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) bug();
  // Small buffers so that a server writing much meets EAGAIN and queues.
  const int small = 16 * 1024;
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const LinkId id = r.adopt(sv[0]);
  if (!id.valid()) bug();
  const int peer = sv[1];

  bool writing = true;
  if (flags & 1)
    writing = write_piece(r, peer, reinterpret_cast<const std::uint8_t*>(kUpgrade.data()), kUpgrade.size());
  pump(r, peer, 1);
  std::size_t at = 0;
  while (writing && at < size) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t piece = std::min<std::size_t>(size - at, 1 + ((seed >> 16) % 512));
    writing = write_piece(r, peer, data + at, piece);
    at += piece;
    pump(r, peer, 1);
  }
  pump(r, peer, 2);

  switch ((flags >> 1) & 3) {
    case 1:  // half-close, let the server see EOF, then close
      ::shutdown(peer, SHUT_WR);
      pump(r, peer, 2);
      break;
    case 2: {  // reset
      linger lg{1, 0};
      ::setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      break;
    }
    default:
      break;
  }
  ::close(peer);
  for (int i = 0; i < 64 && r.alive(id); ++i) r.run_once(0);
  if (r.alive(id)) bug();              // a link whose peer is gone must be freed
  if (r.links_open() != 0) bug();
  if (r.metrics().links_open.get() != 0) bug();
  if (r.metrics().queued_bytes.get() != 0) bug();
  if (r.chunks_held() != 0) bug();   // every receive chunk went back
  return 0;
}
