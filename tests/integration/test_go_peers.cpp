// The Go benchmark peers (bench/peers/go_*: the seed's Link designs), which
// `make bench` measures against ringlink: each must really be an echo server
// or its numbers mean nothing. bench/scripts/build_peers.sh builds them into
// this build's bench/peers/ (offline, from Debian's packages); each test
// starts one as a child process on 127.0.0.1, on a port found free by
// binding port 0, drives it with the hand-written wire client (which also
// checks the server's frames: unmasked, no RSV bits) and stops it by PID
// with SIGTERM. Skipped only when go was not found at configure time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/peer_process.hpp"
#include "tests/wire_client.hpp"

namespace {

using namespace std::chrono_literals;
using ringlink::wire::Bytes;
using ringlink::wire::RxFrame;
using ringlink::wire::WireConn;

std::string parent_dir(const std::string& path) { return path.substr(0, path.rfind('/')); }

// meson hands over RINGLINK_ECHO = BUILD/tools/ringlink-echo and
// RINGLINK_PEERS_DIR = SOURCE/tests/integration/peers.
std::string build_root() { return parent_dir(parent_dir(itest::env_or_empty("RINGLINK_ECHO"))); }
std::string source_root() { return parent_dir(parent_dir(parent_dir(itest::env_or_empty("RINGLINK_PEERS_DIR")))); }

// A port nobody listens on now: the kernel's pick for port 0, released for
// the peer to take (the Go peers take -port, not a listening fd).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// GET /stats: {"goroutines": N, "dropped": D}; nullopt when the peer does
// not answer (yet).
struct Stats {
  long goroutines = -1;
  long dropped = -1;
};
std::optional<Stats> get_stats(std::uint16_t port) {
  WireConn c;
  if (!c.connect(port) || !c.write("GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    return std::nullopt;
  std::string reply;
  std::uint8_t b[512];
  for (;;) {
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return std::nullopt;
    const ssize_t n = ::recv(c.fd(), b, sizeof b, 0);
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    reply.append(reinterpret_cast<const char*>(b), static_cast<std::size_t>(n));
  }
  const std::size_t body = reply.find("\r\n\r\n");
  Stats s;
  if (body == std::string::npos ||
      std::sscanf(reply.c_str() + body, " {\"goroutines\": %ld, \"dropped\": %ld}", &s.goroutines, &s.dropped) != 2)
    return std::nullopt;
  return s;
}

// One WebSocket message put back together from the server's frames (gorilla
// writes a large message as several frames, one per 4 KiB buffer).
struct Message {
  std::uint8_t opcode = 0;
  Bytes payload;
};
// The data messages in `frames`, in order; control frames are left out.
// `error` says what is wrong with the fragment sequence, if anything.
std::vector<Message> messages(const std::vector<RxFrame>& frames, std::string* error) {
  std::vector<Message> out;
  bool open = false;
  for (const RxFrame& f : frames) {
    if (f.opcode >= 0x8) continue;
    if ((f.opcode == 0x0) != open) {
      *error = "fragment out of sequence";
      return out;
    }
    if (!open) out.push_back({f.opcode, {}});
    out.back().payload.insert(out.back().payload.end(), f.payload.begin(), f.payload.end());
    open = !f.fin;
  }
  if (open) out.pop_back();  // its last fragment has not come yet
  return out;
}

Bytes text_of(std::size_t n) {
  const std::string unit = "a\u00e9\u20ac\U0001F600";  // 1 + 2 + 3 + 4 bytes: valid UTF-8 at any multiple of 10
  std::string s;
  while (s.size() + unit.size() <= n) s += unit;
  s.append(n - s.size(), 'x');
  return ringlink::wire::bytes(s);
}
Bytes binary_of(std::size_t n) {
  Bytes b(n);
  std::uint32_t x = 2463534242u + static_cast<std::uint32_t>(n);
  for (auto& c : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<std::uint8_t>(x);
  }
  return b;
}

struct Design {
  const char* name;  // bench/peers/NAME
  bool drops;        // drops (and counts) when the business side is slow, rather than blocking
};
void PrintTo(const Design& d, std::ostream* os) { *os << d.name; }

// Built once for the whole suite; empty when the build succeeded.
std::string build_error;
bool built = false;

class GoPeerBase : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (built || itest::env_or_empty("RINGLINK_GO_CLIENT").empty()) return;  // no go: every test skips
    build_error = itest::run_peer({"/bin/bash", source_root() + "/bench/scripts/build_peers.sh", build_root()}, 110s);
    built = true;
  }

  void SetUp() override {
    if (!built) GTEST_SKIP() << "go was not found at configure time";
    ASSERT_EQ(build_error, "") << "bench/scripts/build_peers.sh failed";
  }

  // Starts the peer and waits (bounded) until /stats answers.
  void start(const std::string& name, std::vector<std::string> flags = {}) {
    port = free_port();
    ASSERT_NE(port, 0);
    std::vector<std::string> argv{build_root() + "/bench/peers/" + name, "-port", std::to_string(port)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    std::string error;
    peer = itest::PeerProcess::start(argv, &error);
    ASSERT_TRUE(peer) << error;
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!get_stats(port)) {
      const std::optional<int> st = peer->wait(0ms);
      ASSERT_FALSE(st) << "the peer ended: " << itest::describe_wait_status(*st) << "\n" << peer->stderr_text();
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "no answer on port " << port;
      std::this_thread::sleep_for(20ms);
    }
  }

  // Closes with 1000 and expects the code back and the TCP end.
  void close_link(WireConn& c) {
    ASSERT_TRUE(c.send_close(1000));
    const int at = c.wait_close_frame(10'000);
    ASSERT_GE(at, 0) << "no close frame";
    EXPECT_EQ(c.frames()[static_cast<std::size_t>(at)].close_code(), 1000);
    EXPECT_TRUE(c.wait_eof(10'000));
  }

  // Stopped by PID: SIGTERM, and the peer must exit 0 promptly.
  void stop() {
    ASSERT_TRUE(peer->send_signal(SIGTERM));
    const std::optional<int> st = peer->wait(10s);
    ASSERT_TRUE(st) << "still running 10 s after SIGTERM";
    EXPECT_TRUE(itest::exited_ok(*st)) << itest::describe_wait_status(*st) << "\n" << peer->stderr_text();
  }

  std::uint16_t port = 0;
  std::unique_ptr<itest::PeerProcess> peer;
};

class GoPeer : public GoPeerBase, public ::testing::WithParamInterface<Design> {};
class GoV4 : public GoPeerBase {};

// Proves: go_v4's hand-made frames (unmasked headers of every length form,
// pongs and the close reply through its send queue, batches written with
// writev) are read by gorilla/websocket: every size to 16 MiB, text and
// binary; close codes 1000 and 4000 echoed; 50 links pipelining 100
// messages each, every echo in order.
TEST_F(GoV4, GorillaReadsItsFrames) {
  ASSERT_NO_FATAL_FAILURE(start("go_v4"));
  const std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  const std::string client = itest::env_or_empty("RINGLINK_GO_CLIENT");
  EXPECT_EQ(itest::run_peer({client, "-url", url, "-mode", "sizes"}, 30s), "");
  EXPECT_EQ(itest::run_peer({client, "-url", url, "-mode", "close"}, 30s), "");
  EXPECT_EQ(itest::run_peer({client, "-url", url, "-mode", "concurrent", "-n", "50", "-m", "100"}, 30s), "");
  const std::optional<Stats> s = get_stats(port);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dropped, 0);
  stop();
}

// Proves: text and binary messages of 0 B to 1 MiB, sent back to back, come
// back byte-exact, in order and with their type; a message sent in three
// fragments with a ping between them comes back whole; the ping's pong
// carries its payload; close 1000 is echoed and the server ends TCP.
TEST_P(GoPeer, EchoesTextAndBinary) {
  ASSERT_NO_FATAL_FAILURE(start(GetParam().name));
  WireConn c;
  ASSERT_EQ(c.open(port), 101) << c.head();
  c.start_reader();

  std::vector<Message> sent;
  constexpr std::size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 1 << 20};
  for (std::size_t n : sizes) {
    sent.push_back({0x1, text_of(n)});
    sent.push_back({0x2, binary_of(n)});
  }
  for (const Message& m : sent) ASSERT_TRUE(c.send(m.opcode, m.payload));
  const Bytes whole = text_of(300);
  const Bytes ping = ringlink::wire::bytes("go-peer-ping");
  ASSERT_TRUE(c.send(0x1, Bytes(whole.begin(), whole.begin() + 100), false));
  ASSERT_TRUE(c.send(0x9, ping));
  ASSERT_TRUE(c.send(0x0, Bytes(whole.begin() + 100, whole.begin() + 200), false));
  ASSERT_TRUE(c.send(0x0, Bytes(whole.begin() + 200, whole.end())));
  sent.push_back({0x1, whole});

  // Each design answers within seconds (go_v3 may first wait out its 1 s read).
  std::string error;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (messages(c.frames(), &error).size() < sent.size() && error.empty() && !c.eof() &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  const std::vector<RxFrame> frames = c.frames();
  const std::vector<Message> got = messages(frames, &error);
  EXPECT_EQ(error, "");
  EXPECT_EQ(c.server_error(), "");
  ASSERT_EQ(got.size(), sent.size()) << "echoes missing";
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(got[i].opcode, sent[i].opcode) << "message " << i;
    EXPECT_TRUE(got[i].payload == sent[i].payload) << "message " << i << ": " << got[i].payload.size() << " bytes, "
                                                   << sent[i].payload.size() << " sent";
  }
  int pongs = 0;
  for (const RxFrame& f : frames)
    if (f.opcode == 0xA) {
      ++pongs;
      EXPECT_EQ(f.payload, ping);
    }
  EXPECT_EQ(pongs, 1);

  ASSERT_NO_FATAL_FAILURE(close_link(c));
  const std::optional<Stats> s = get_stats(port);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dropped, 0);
  stop();
}

// Proves: with the business side slowed to 20 ms a message for its first
// 2 s, a burst of 400 messages on one link loses nothing it does not count:
// every message is echoed (in order, exact) or counted in /stats "dropped".
// The designs that drop (v2, v4, v5) do drop some; dual and v3 block instead
// and drop none.
TEST_P(GoPeer, SlowConsumerDropsAreCounted) {
  ASSERT_NO_FATAL_FAILURE(start(GetParam().name, {"-slow-us", "20000", "-slow-for", "2"}));
  WireConn c;
  ASSERT_EQ(c.open(port), 101) << c.head();
  c.start_reader();

  // Under about 512 in flight: go_v3's loop and business goroutine block each
  // other beyond that (its header says why), which is not what this test is about.
  constexpr int burst = 400;
  char text[16];
  std::vector<std::string> sent;
  for (int i = 0; i < burst; ++i) {
    std::snprintf(text, sizeof text, "m%04d", i);
    sent.emplace_back(text);
    ASSERT_TRUE(c.send_text(text));
  }

  std::optional<Stats> s;
  std::string error;
  std::size_t echoed = 0;
  const auto until = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    echoed = messages(c.frames(), &error).size();
    s = get_stats(port);
    if (s && echoed + static_cast<std::size_t>(s->dropped) >= burst) break;
    if (!error.empty() || c.eof() || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(error, "");
  ASSERT_TRUE(s) << "no /stats";
  EXPECT_EQ(echoed + static_cast<std::size_t>(s->dropped), std::size_t{burst})
      << "echoed " << echoed << ", dropped " << s->dropped;
  if (GetParam().drops)
    EXPECT_GT(s->dropped, 0) << "a burst of " << burst << " into a queue of 256 before a slow consumer";
  else
    EXPECT_EQ(s->dropped, 0);

  // What came back is a subsequence of what was sent: in order, nothing altered.
  std::size_t next = 0;
  for (const Message& m : messages(c.frames(), &error)) {
    const std::string t(m.payload.begin(), m.payload.end());
    while (next < sent.size() && sent[next] != t) ++next;
    ASSERT_LT(next, sent.size()) << "echo \"" << t << "\" out of order or never sent";
    ++next;
  }
  ASSERT_NO_FATAL_FAILURE(close_link(c));
  stop();
}

INSTANTIATE_TEST_SUITE_P(Designs, GoPeer,
                         ::testing::Values(Design{"go_dual", false}, Design{"go_v2", true}, Design{"go_v3", false},
                                           Design{"go_v4", true}, Design{"go_v5", true}),
                         [](const ::testing::TestParamInfo<Design>& info) { return std::string(info.param.name); });

}  // namespace
