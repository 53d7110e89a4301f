// Fault injection, every wait bounded (by a deadline that only stops a hang:
// tests/wait_until.hpp): peers that reset or half-close in the
// middle of a frame, a peer that never reads, links that break the protocol
// next to a healthy one, a graceful stop while other threads send, and a
// flood of half-open upgrade requests past the link cap. Each test checks
// that the link ends with the right counter and that what it held (links
// open, receive chunks, queued bytes) is released.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/reactor.hpp"
#include "engine/server.hpp"
#include "engine/socket.hpp"
#include "tests/wait_until.hpp"
#include "tests/wire_client.hpp"

using namespace ringlink;
using namespace std::chrono_literals;
using ringlink::test::eventually;
using ringlink::test::hang_deadline;
using wire::Bytes;
using wire::WireConn;

namespace {

constexpr std::uint8_t TEXT = 0x1, BIN = 0x2, CLOSE = 0x8;
// WireConn's waits take milliseconds.
constexpr int hang_ms = static_cast<int>(std::chrono::milliseconds(hang_deadline).count());

struct Echo : Handler {
  std::mutex m;
  std::vector<LinkId> ids;
  std::map<std::uint64_t, std::uint16_t> close_codes;   // by raw id
  std::atomic<int> opened{0}, closed{0};
  void on_open(Link& l) override {
    std::lock_guard g(m);
    ids.push_back(l.id());
    ++opened;
  }
  void on_message(Link& l, std::span<std::byte> p, Opcode op) override { (void)l.send(p, op); }
  void on_close(Link& l, std::uint16_t code, std::string_view) override {
    std::lock_guard g(m);
    close_codes[l.id().raw()] = code;
    ++closed;
  }
};

// One reactor turned by the test thread: no other thread touches it, so its
// pool and metrics can be read directly.
class Driven {
 public:
  explicit Driven(ServerConfig cfg, Handler& h) : cfg_(std::move(cfg)) {
    SocketAddress a;
    EXPECT_EQ(resolve_address("127.0.0.1", 0, a), 0);
    const int fd = make_listener(a, false, 128);
    EXPECT_GE(fd, 0);
    port_ = local_port(fd);
    reactor_ = std::make_unique<Reactor>(0, cfg_, h, nullptr);
    EXPECT_EQ(reactor_->open(fd), 0);
  }
  std::uint16_t port() const { return port_; }
  Reactor& r() { return *reactor_; }
  // Turns the reactor until `p()` holds; false if it still does not at the
  // hang deadline.
  template <class P>
  bool pump_until(P p) {
    const auto until = std::chrono::steady_clock::now() + hang_deadline;
    while (std::chrono::steady_clock::now() < until) {
      if (p()) return true;
      reactor_->run_once(1);
    }
    return p();
  }
  // Exactly `n` turns, for what a turn does by itself (the end-of-turn free).
  void pump_turns(int n) {
    for (int i = 0; i < n; ++i) reactor_->run_once(1);
  }
  // Connects and upgrades, turning the reactor meanwhile.
  bool open(WireConn& c) {
    if (!c.connect(port_)) return false;
    if (!c.write(wire::bytes(WireConn::upgrade_request()))) return false;
    pump_until([&] { return reactor_->links_open() > opened_before_; });
    // One more turn: a completion backend hands the 101 to the kernel with
    // the next wait, not during the turn that wrote it.
    reactor_->run_once(0);
    opened_before_ = reactor_->links_open();
    const bool ok = c.read_head(hang_ms) == 101;
    if (ok) c.start_reader();
    return ok;
  }
  std::uint64_t closes(CloseReason why) const { return reactor_->metrics().closes[static_cast<std::size_t>(why)].get(); }
  void forget_one() { if (opened_before_ > 0) --opened_before_; }

 private:
  ServerConfig cfg_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Reactor> reactor_;
  std::size_t opened_before_ = 0;
};

void reset_now(WireConn& c) {
  linger lg{1, 0};
  ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  c.close();
}

}  // namespace

// Proves: a reset in the middle of a frame (small, held in one chunk; or large,
// being assembled) closes the link as io_error or peer_eof, reports 1006 to
// on_close, and returns every chunk and queued byte.
TEST(Fault, ResetMidFrameReleasesEverything) {
  for (std::size_t size : {5000u, 300000u}) {
    Echo h;
    ServerConfig cfg;
    Driven d(cfg, h);
    WireConn c;
    ASSERT_TRUE(d.open(c));
    ASSERT_EQ(d.r().links_open(), 1u);
    const Bytes f = wire::frame(BIN, Bytes(size, 0xAB));
    ASSERT_TRUE(c.write(Bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(f.size() / 2))));
    if (config::framing == config::Framing::native && size < config::chunk_size) {
      // The half frame is held for contiguity: a chunk is in use.
      ASSERT_TRUE(d.pump_until([&] { return d.r().chunks_held() > 0; })) << size;
    } else {
      // Streamed into the session's assembly buffer (wslay: its frame buffer).
      d.pump_turns(50);
    }
    reset_now(c);
    ASSERT_TRUE(d.pump_until([&] { return d.r().links_open() == 0; })) << size;
    d.pump_turns(3);   // the end-of-turn free
    EXPECT_EQ(d.r().chunks_held(), 0u) << size;
    EXPECT_EQ(d.r().metrics().queued_bytes.get(), 0u) << size;
    EXPECT_EQ(d.r().metrics().links_open.get(), 0u) << size;
    EXPECT_EQ(d.closes(CloseReason::io_error) + d.closes(CloseReason::peer_eof), 1u) << size;
    ASSERT_EQ(h.closed.load(), 1);
    // on_close must report 1006 (no close frame), not the errno of the reset.
    EXPECT_EQ(h.close_codes.begin()->second, close_code::abnormal) << size;
  }
}

// Proves: between messages an open link holds no receive chunk and no send
// queue, however large its last message was: what an idle attacker costs is
// sizeof(Link) plus the kernel's socket.
TEST(Fault, IdleLinkHoldsNothingButItsLink) {
  static_assert(sizeof(Link) <= 112, "SECURITY.md quotes 112 bytes per idle link");
  Echo h;
  Driven d(ServerConfig{}, h);
  std::vector<std::unique_ptr<WireConn>> conns;
  for (int i = 0; i < 4; ++i) {
    conns.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(d.open(*conns.back()));
    const Bytes big = wire::frame(BIN, Bytes(static_cast<std::size_t>(100000 * (i + 1)), 0x11));
    ASSERT_TRUE(conns.back()->write(big));
    ASSERT_TRUE(d.pump_until([&] { return conns.back()->frame_count() == 1; }));
  }
  // A zero-copy send (io_uring, payloads over zc_threshold) holds its
  // frame until the kernel's notification, a turn or two after the peer
  // has the bytes.
  d.pump_until([&] { return d.r().metrics().queued_bytes.get() == 0; });
  d.pump_turns(5);
  EXPECT_EQ(d.r().links_open(), 4u);
  EXPECT_EQ(d.r().chunks_held(), 0u);
  EXPECT_EQ(d.r().metrics().queued_bytes.get(), 0u);
}

// Proves: a half-close (SHUT_WR) in the middle of a frame ends the link as
// peer_eof and releases it; the server's end of TCP follows.
TEST(Fault, HalfCloseMidFrame) {
  Echo h;
  Driven d(ServerConfig{}, h);
  WireConn c;
  ASSERT_TRUE(d.open(c));
  // Binary: the native session holds a partial binary frame in its chunk
  // (text is streamed into the assembly buffer instead).
  const Bytes f = wire::frame(BIN, Bytes(1000, 'a'));
  ASSERT_TRUE(c.write(Bytes(f.begin(), f.begin() + 300)));
  if (config::framing == config::Framing::native) {
    ASSERT_TRUE(d.pump_until([&] { return d.r().chunks_held() > 0; }));   // held whole
  } else {
    d.pump_turns(50);
  }
  ::shutdown(c.fd(), SHUT_WR);
  ASSERT_TRUE(d.pump_until([&] { return d.r().links_open() == 0; }));
  d.pump_turns(3);
  EXPECT_EQ(d.closes(CloseReason::peer_eof), 1u);
  EXPECT_EQ(d.r().chunks_held(), 0u);
  EXPECT_EQ(d.r().metrics().queued_bytes.get(), 0u);
  EXPECT_TRUE(c.wait_eof(hang_ms));
  EXPECT_EQ(c.frame_count(), 0u);
}

// Proves: a complete message followed by a half-close is still answered (the
// echo arrives before the server's FIN); then the link ends as peer_eof.
TEST(Fault, HalfCloseAfterCompleteMessage) {
  Echo h;
  Driven d(ServerConfig{}, h);
  WireConn c;
  ASSERT_TRUE(d.open(c));
  ASSERT_TRUE(c.write(wire::frame(TEXT, wire::bytes("last words"))));
  ::shutdown(c.fd(), SHUT_WR);
  ASSERT_TRUE(d.pump_until([&] { return d.r().links_open() == 0; }));
  d.pump_turns(3);
  EXPECT_TRUE(c.wait_eof(hang_ms));
  const auto frames = c.frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].text(), "last words");
  EXPECT_EQ(d.closes(CloseReason::peer_eof), 1u);
  EXPECT_EQ(d.r().chunks_held(), 0u);
}

// Proves: a connection accepted after the reactor slept longer than the
// handshake timeout is given the whole timeout. (The reactor must read its
// clock before it dispatches the wakeup's events: a link stamped with the
// time from before the sleep would be refused 408 in the turn that accepted it.)
TEST(Fault, FirstConnectionAfterAnIdleSpellIsServed) {
  Echo h;
  ServerConfig cfg;
  cfg.reactors = 1;
  cfg.handshake_timeout_ms = 200;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  // The idle spell under test, longer than the handshake timeout: the reactor
  // sleeps without a timer meanwhile. Nothing to wait for, so a sleep.
  std::this_thread::sleep_for(600ms);
  WireConn c;
  EXPECT_EQ(c.open(s.port()), 101) << c.head();
  c.start_reader();
  s.stop(1s);
}

// Proves: the idle timeout counts from the last message received, even when
// the reactor slept until it arrived: a link that speaks every 600 ms with
// idle_timeout 1000 ms is never closed.
TEST(Fault, IdleTimeoutCountsFromTheLastMessage) {
  Echo h;
  ServerConfig cfg;
  cfg.reactors = 1;
  cfg.idle_timeout_ms = 1000;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port()), 101);
  c.start_reader();
  auto last_write = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    // The silences under test: shorter than the idle timeout, together
    // longer. Nothing to wait for, so a sleep.
    std::this_thread::sleep_for(600ms);
    // A machine that held this thread back past the timeout makes a close
    // legitimate: the run then proves nothing, and says so.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_write > std::chrono::milliseconds(cfg.idle_timeout_ms - 200))
      GTEST_SKIP() << "this thread was held back " << std::chrono::duration_cast<std::chrono::milliseconds>(now - last_write).count()
                   << " ms between two messages, near the idle timeout";
    ASSERT_TRUE(c.write(wire::frame(TEXT, wire::bytes("still here"))));
    last_write = std::chrono::steady_clock::now();
    ASSERT_TRUE(c.wait_frames(static_cast<std::size_t>(i) + 1, hang_ms));
  }
  const auto frames = c.frames();
  for (const auto& f : frames) EXPECT_EQ(f.opcode, TEXT) << "closed " << f.close_code() << " while the peer was active";
  s.stop(1s);
}

// Proves: a link reset by its peer while lingering after a 408 (handshake
// timeout) is freed cleanly: the next connection on the reactor is upgraded.
TEST(Fault, ResetAfterHandshakeTimeoutLeavesTheReactorHealthy) {
  constexpr int admitted_n = 8, extra_n = 4;
  Echo h;
  ServerConfig cfg;
  cfg.handshake_timeout_ms = 100;
  cfg.max_links_per_reactor = static_cast<std::uint32_t>(admitted_n);
  Driven d(cfg, h);
  std::vector<std::unique_ptr<WireConn>> admitted, extra;
  for (int i = 0; i < admitted_n; ++i) {
    admitted.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(admitted.back()->connect(d.port()));
    ASSERT_TRUE(admitted.back()->write(wire::bytes("GET / HTTP/1.1\r\nHost: x\r\n")));
    ASSERT_TRUE(d.pump_until([&] { return d.r().metrics().links_accepted.get() == static_cast<std::uint64_t>(i + 1); }));
  }
  for (int i = 0; i < extra_n; ++i) {
    extra.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(extra.back()->connect(d.port()));
    ASSERT_TRUE(d.pump_until([&] { return d.r().metrics().links_refused.get() == static_cast<std::uint64_t>(i + 1); }));
  }
  EXPECT_EQ(d.r().metrics().links_refused.get(), static_cast<std::uint64_t>(extra_n));
  for (auto& a : admitted) {
    ASSERT_TRUE(d.pump_until([&] { return a->readable(); }));
    ASSERT_EQ(a->read_head(hang_ms), 408);
  }
  for (auto& a : admitted) reset_now(*a);
  EXPECT_TRUE(d.pump_until([&] {
    return d.closes(CloseReason::io_error) + d.closes(CloseReason::handshake_timeout) == static_cast<std::uint64_t>(admitted_n);
  }));
  d.pump_turns(3);   // the end-of-turn free
  EXPECT_EQ(d.r().metrics().links_accepted.get(), static_cast<std::uint64_t>(admitted_n));
  WireConn b;
  ASSERT_TRUE(b.connect(d.port()));
  ASSERT_TRUE(b.write(wire::bytes(WireConn::upgrade_request())));
  ASSERT_TRUE(d.pump_until([&] { return b.readable(); }));
  EXPECT_EQ(b.read_head(hang_ms), 101) << "a new connection after the resets was not upgraded";
}

// A peer that never reads while another thread sends with Server::send: the
// queue stays under its cap (plus the one message the cap admits), and the
// policy acts: reject answers backpressured, drop_oldest drops, close_slow
// closes 1008. A reset then releases everything.
class NeverReads : public ::testing::TestWithParam<OutboundPolicy> {};

TEST_P(NeverReads, QueueStaysBoundedAndThePolicyActs) {
  const OutboundPolicy policy = GetParam();
  Echo h;
  ServerConfig cfg;
  cfg.reactors = 1;
  cfg.max_queued_bytes = 128 * 1024;
  cfg.outbound_policy = policy;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_TRUE(c.connect(s.port()));
  const int small = 4096;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(c.write(wire::bytes(WireConn::upgrade_request())));
  ASSERT_EQ(c.read_head(hang_ms), 101);   // and never read again
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 1; }));
  const LinkId id = h.ids.at(0);

  constexpr std::size_t msg = 8 * 1024;
  const std::vector<std::byte> payload(msg, std::byte{0x5A});
  std::map<SendResult, int> results;
  std::thread sender([&] {
    for (int i = 0; i < 1500; ++i) {
      const SendResult r = s.send(id, payload);
      ++results[r];
      if (r == SendResult::closed) break;
      if (i % 16 == 15) std::this_thread::sleep_for(1ms);
    }
  });
  sender.join();
  ASSERT_TRUE(eventually([&] { return s.snapshot().commands >= static_cast<std::uint64_t>(results[SendResult::queued]); }));
  const MetricsSnapshot m = s.snapshot();
  // The cap admits one message beyond it; headers are at most 14 bytes.
  EXPECT_LE(m.queued_bytes_high_water, cfg.max_queued_bytes + msg + 14);
  EXPECT_LE(m.queued_bytes, cfg.max_queued_bytes + msg + 14);
  switch (policy) {
    case OutboundPolicy::reject:
      EXPECT_GT(m.send_backpressured, 0u);
      EXPECT_EQ(m.links_open, 1u);
      break;
    case OutboundPolicy::drop_oldest:
      EXPECT_GT(m.send_dropped, 0u);
      EXPECT_EQ(m.links_open, 1u);
      break;
    case OutboundPolicy::close_slow:
      // Acted on below: on_close reports the policy's code once the link ends.
      break;
  }
  reset_now(c);
  // links_open drops just before on_close runs on the reactor thread.
  EXPECT_TRUE(eventually([&] {
    return s.snapshot().links_open == 0 && s.snapshot().queued_bytes == 0 &&
           (policy != OutboundPolicy::close_slow || h.closed.load() == 1);
  }));
  if (policy == OutboundPolicy::close_slow) {
    ASSERT_EQ(h.closed.load(), 1);
    EXPECT_EQ(h.close_codes.begin()->second, close_code::policy_violation);
  }
  s.stop(1s);
  EXPECT_EQ(s.snapshot().queued_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, NeverReads,
                         ::testing::Values(OutboundPolicy::reject, OutboundPolicy::drop_oldest, OutboundPolicy::close_slow),
                         [](const auto& info) {
                           switch (info.param) {
                             case OutboundPolicy::reject: return std::string("reject");
                             case OutboundPolicy::drop_oldest: return std::string("drop_oldest");
                             default: return std::string("close_slow");
                           }
                         });

// Proves: the close-slow-consumer policy frees the slow link's queued data at
// once (README: "a slow consumer must not hold memory at all"), rather than
// keeping it, with the close frame queued behind it, until close_timeout.
// "At once" is an order, not a speed: the queue is released while the link
// still lingers for its close handshake, which with a peer that never reads
// lasts until close_timeout (longer than any wait here).
TEST(Fault, CloseSlowReleasesTheQueueAtOnce) {
  // Sends from the reactor thread on "flood" until send() stops answering
  // queued; records what it answered then.
  struct Flooder : Echo {
    std::atomic<int> last{-1};
    void on_message(Link& l, std::span<std::byte>, Opcode) override {
      const std::vector<std::byte> payload(8 * 1024, std::byte{0x33});
      for (int i = 0; i < 10000; ++i) {
        const SendResult r = l.send(payload);
        if (r != SendResult::queued) {
          last = static_cast<int>(r);
          return;
        }
      }
    }
  } h;
  ServerConfig cfg;
  cfg.reactors = 1;
  cfg.max_queued_bytes = 128 * 1024;
  cfg.outbound_policy = OutboundPolicy::close_slow;
  cfg.close_timeout_ms = 120'000;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_TRUE(c.connect(s.port()));
  const int small = 4096;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(c.write(wire::bytes(WireConn::upgrade_request())));
  ASSERT_EQ(c.read_head(hang_ms), 101);   // and never read again
  ASSERT_TRUE(c.write(wire::frame(TEXT, wire::bytes("flood"))));
  ASSERT_TRUE(eventually([&] { return h.last.load() >= 0; }));
  ASSERT_EQ(h.last.load(), static_cast<int>(SendResult::closed)) << "close_slow did not act";
  // What may stay queued: the close frame, and the part of a frame the
  // kernel is sending.
  EXPECT_TRUE(eventually([&] { return s.snapshot().queued_bytes < 16 * 1024; }))
      << "the slow link still held " << s.snapshot().queued_bytes << " queued bytes after close_slow acted";
  EXPECT_EQ(s.snapshot().links_open, 1u) << "the queue went only with the link";
  EXPECT_EQ(h.closed.load(), 0) << "the queue went only with the link";
  reset_now(c);
  s.stop(1s);
}

// Proves: oversized messages, invalid UTF-8 and protocol errors on other
// links of the same reactor do not close or disturb a healthy link: every
// one of its round trips, made while hundreds of bad links come and go, is
// answered with its own message. (How fast is for bench/: the latencies
// are printed, not judged.)
TEST(Fault, BadNeighboursDoNotDisturbAHealthyLink) {
  Echo h;
  ServerConfig cfg;
  cfg.reactors = 1;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn good;
  ASSERT_EQ(good.open(s.port()), 101);
  good.start_reader();

  std::atomic<bool> stop{false}, bad_done{false};
  std::atomic<int> bad_links{0}, bad_ok{0};
  std::thread bad([&] {
    const Bytes too_big_header = {0x82, 0xFF, 0, 0, 0, 0, 0x02, 0, 0, 0, 1, 2, 3, 4, 9};   // 32 MiB announced
    const Bytes bad_utf8 = wire::frame(TEXT, {0xCE, 0xBA, 0xED, 0xA0, 0x80});
    const Bytes reserved = wire::frame(0x5, {});
    const Bytes unmasked = wire::frame(BIN, wire::bytes("x"), true, false);
    const Bytes* kinds[] = {&too_big_header, &bad_utf8, &reserved, &unmasked};
    const std::uint16_t codes[] = {1009, 1007, 1002, 1002};
    for (int i = 0; !stop && i < 200; ++i) {
      WireConn c;
      if (c.open(s.port()) != 101) continue;
      c.start_reader();
      ++bad_links;
      c.write(*kinds[i % 4]);
      const int at = c.wait_close_frame(hang_ms);
      if (at >= 0 && c.frames()[static_cast<std::size_t>(at)].close_code() == codes[i % 4]) ++bad_ok;
    }
    bad_done = true;
  });
  std::vector<double> rtt_ms;
  const Bytes ping = wire::frame(TEXT, Bytes(64, 'g'));
  // Round trips for as long as the bad links keep coming (the deadline only
  // stops a hang).
  const auto until = std::chrono::steady_clock::now() + hang_deadline;
  for (int i = 0; (i < 400 || !bad_done) && std::chrono::steady_clock::now() < until; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!good.write(ping) || !good.wait_frames(static_cast<std::size_t>(i) + 1, hang_ms)) {
      stop = true;
      bad.join();
      FAIL() << "round trip " << i << " failed";
    }
    rtt_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const bool bad_finished = bad_done.load();
  stop = true;
  bad.join();
  std::sort(rtt_ms.begin(), rtt_ms.end());
  const double p50 = rtt_ms[rtt_ms.size() / 2], p99 = rtt_ms[rtt_ms.size() * 99 / 100];
  std::printf("healthy link: p50 %.3f ms, p99 %.3f ms, max %.3f ms next to %d bad links (%d closed with the right code)\n",
              p50, p99, rtt_ms.back(), bad_links.load(), bad_ok.load());
  EXPECT_TRUE(bad_finished) << "the bad links were still coming at the hang deadline";
  EXPECT_EQ(bad_links.load(), 200);
  EXPECT_EQ(bad_ok.load(), bad_links.load());
  const auto echoes = good.frames();
  EXPECT_EQ(echoes.size(), rtt_ms.size());
  for (const auto& f : echoes) {
    EXPECT_EQ(f.opcode, TEXT);
    EXPECT_EQ(f.text(), std::string(64, 'g'));
  }
  EXPECT_FALSE(good.eof());
  // A link is counted closed when its TCP close completes, a moment after
  // the client read the close frame.
  auto closed_bad = [&] {
    const MetricsSnapshot m = s.snapshot();
    return m.closed(CloseReason::too_big) + m.closed(CloseReason::invalid_utf8) + m.closed(CloseReason::protocol_error);
  };
  EXPECT_TRUE(eventually([&] { return closed_bad() == static_cast<std::uint64_t>(bad_links.load()); })) << closed_bad();
  s.stop(1s);
}

// Proves: during a graceful stop under load, every message send() reported
// queued either reached its peer, in order and without a gap, or its link was
// reported closed: everything queued before stop() was called is delivered,
// and the undelivered ones are only a tail queued while the links were
// closing. Every link gets close 1001 and on_close; nothing is left.
TEST(Fault, GracefulStopUnderLoadLosesNothingSilently) {
  Echo h;
  ServerConfig cfg;
  cfg.reactors = 2;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  constexpr int kLinks = 6;
  std::vector<std::unique_ptr<WireConn>> conns;
  for (int i = 0; i < kLinks; ++i) {
    conns.push_back(std::make_unique<WireConn>());
    conns.back()->set_auto_close_reply(true);
    ASSERT_EQ(conns.back()->open(s.port()), 101);
    conns.back()->start_reader();
  }
  ASSERT_TRUE(eventually([&] { return h.opened.load() == kLinks; }));
  std::vector<LinkId> ids;
  {
    std::lock_guard g(h.m);
    ids = h.ids;
  }
  std::vector<std::vector<std::uint32_t>> queued(kLinks);
  std::vector<std::size_t> before_stop(kLinks, 0);
  // The senders pause for an instant while stop() is called, each noting how
  // many of its messages were queued before: those must all be delivered.
  std::atomic<bool> hold{false}, release{false};
  std::atomic<int> holding{0};
  std::array<std::atomic<std::size_t>, kLinks> queued_n{};  // queued[k].size(), for the test thread
  std::vector<std::thread> senders;
  for (int k = 0; k < kLinks; ++k)
    senders.emplace_back([&, k] {
      const auto kk = static_cast<std::size_t>(k);
      std::vector<std::byte> p(32);
      bool held = false;
      for (std::uint32_t seq = 0; seq < 200000; ++seq) {
        if (hold && !held) {
          held = true;
          before_stop[kk] = queued[kk].size();
          ++holding;
          while (!release) std::this_thread::yield();
        }
        std::memcpy(p.data(), &seq, 4);
        const SendResult r = s.send(ids[kk], p);
        if (r == SendResult::queued) {
          queued[kk].push_back(seq);
          ++queued_n[kk];
        }
        if (r == SendResult::closed) break;
        // Paced, so that the reactor, not a full queue, decides what is
        // delivered: the accounting below assumes no refused message.
        if (seq % 32 == 31) std::this_thread::sleep_for(1ms);
        if (held && seq % 64 == 0 && !s.running()) break;
      }
      if (!held) {
        before_stop[kk] = queued[kk].size();
        ++holding;
      }
    });
  // Under load before the stop: every sender has had messages queued.
  ASSERT_TRUE(eventually([&] {
    return std::all_of(queued_n.begin(), queued_n.end(), [](const auto& n) { return n.load() >= 64; });
  }));
  hold = true;
  ASSERT_TRUE(eventually([&] { return holding.load() == kLinks; }));
  release = true;
  // The peers answer the close at once, so the stop ends with the last close
  // handshake; its deadline only stops a hang (a stop that reached it shows
  // below as links closed for another reason than shutdown).
  s.stop(hang_deadline);
  for (auto& t : senders) t.join();

  const MetricsSnapshot m = s.snapshot();
  std::size_t total_queued = 0, total_received = 0, total_before = 0;
  for (int k = 0; k < kLinks; ++k) {
    WireConn& c = *conns[static_cast<std::size_t>(k)];
    EXPECT_TRUE(c.wait_eof(hang_ms)) << k;
    const auto frames = c.frames();
    std::vector<std::uint32_t> got;
    bool saw_close = false;
    for (const auto& f : frames) {
      if (f.opcode == CLOSE) {
        saw_close = true;
        EXPECT_EQ(f.close_code(), close_code::going_away) << k;
        continue;
      }
      EXPECT_FALSE(saw_close) << "data after the close frame on link " << k;
      std::uint32_t seq = 0;
      std::memcpy(&seq, f.payload.data(), 4);
      got.push_back(seq);
    }
    EXPECT_TRUE(saw_close) << k;
    const auto& q = queued[static_cast<std::size_t>(k)];
    ASSERT_LE(got.size(), q.size()) << k;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), q.begin())) << "link " << k << ": received is not a prefix of queued";
    EXPECT_GE(got.size(), before_stop[static_cast<std::size_t>(k)])
        << "link " << k << ": a message queued before stop() was lost";
    total_before += before_stop[static_cast<std::size_t>(k)];
    total_queued += q.size();
    total_received += got.size();
  }
  std::printf("graceful stop: %zu messages queued by send() (%zu before stop()), %zu received, %zu undelivered"
              " (queued while the links were closing)\n",
              total_queued, total_before, total_received, total_queued - total_received);
  EXPECT_EQ(m.send_backpressured, 0u) << "the accounting assumes no message was refused by the reactor";
  EXPECT_EQ(m.closed(CloseReason::shutdown), static_cast<std::uint64_t>(kLinks)) << "the stop hit its deadline";
  EXPECT_EQ(h.closed.load(), kLinks);
  for (auto& [id, code] : h.close_codes) EXPECT_EQ(code, close_code::going_away);
  EXPECT_EQ(m.links_open, 0u);
  EXPECT_EQ(m.queued_bytes, 0u);
  EXPECT_EQ(m.handler_exceptions, 0u);
}

// Proves: half-open upgrade requests past max_links_per_reactor are refused
// at once (the socket closed), the ones admitted time out with 408, and
// afterwards a real client is served.
TEST(Fault, HalfOpenHandshakeFloodPastTheLinkCap) {
  Echo h;
  ServerConfig cfg;
  cfg.reactors = 1;
  cfg.max_links_per_reactor = 8;
  cfg.handshake_timeout_ms = 400;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  const Bytes partial = wire::bytes("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
  std::vector<std::unique_ptr<WireConn>> admitted;
  for (int i = 0; i < 8; ++i) {
    admitted.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(admitted.back()->connect(s.port()));
    ASSERT_TRUE(admitted.back()->write(partial));
  }
  // Each admitted one holds its slot from here (links_accepted counts a link
  // once it has one).
  ASSERT_TRUE(eventually([&] { return s.snapshot().links_accepted >= 8; }));
  std::vector<std::unique_ptr<WireConn>> refused;
  constexpr int extra = 12;
  for (int i = 0; i < extra; ++i) {
    refused.push_back(std::make_unique<WireConn>());
    ASSERT_TRUE(refused.back()->connect(s.port()));
    refused.back()->write(partial);
  }
  // Refused at once: closed without an answer (read_head sees the end of TCP
  // and no head), where an admitted one would get 408 after the handshake
  // timeout.
  int closed_at_once = 0;
  for (auto& c : refused) closed_at_once += c->read_head(hang_ms) == 0 && c->head().empty() ? 1 : 0;
  EXPECT_EQ(closed_at_once, extra);
  // Counted just after the socket is closed: the client may see the end first.
  EXPECT_TRUE(eventually([&] { return s.snapshot().links_refused >= 12u; })) << s.snapshot().links_refused;
  // The admitted ones get 408 once the handshake timeout passes.
  int timed_out = 0;
  for (auto& c : admitted) {
    timed_out += c->read_head(hang_ms) == 408 ? 1 : 0;
    // The server half-closed after the 408 and waits for our FIN: read the
    // body to its end first, so that our close is a FIN and not a reset.
    c->start_reader();
    c->wait_eof(hang_ms);
    c->close();
  }
  EXPECT_EQ(timed_out, 8);
  const bool counted = eventually([&] { return s.snapshot().closed(CloseReason::handshake_timeout) == 8; });
  {
    const MetricsSnapshot m = s.snapshot();
    std::string closes;
    for (std::size_t i = 0; i < close_reason_count; ++i)
      if (m.closes[i] != 0) closes += std::string(to_string(static_cast<CloseReason>(i))) + "=" + std::to_string(m.closes[i]) + " ";
    EXPECT_TRUE(counted) << "closes: " << closes << " refused " << m.links_refused << " failed " << m.handshakes_failed;
  }
  // Slots are free again: a real client is served.
  WireConn good;
  ASSERT_EQ(good.open(s.port()), 101);
  good.start_reader();
  ASSERT_TRUE(good.write(wire::frame(TEXT, wire::bytes("served"))));
  ASSERT_TRUE(good.wait_frames(1, hang_ms));
  EXPECT_EQ(good.frames()[0].text(), "served");
  s.stop(1s);
}
