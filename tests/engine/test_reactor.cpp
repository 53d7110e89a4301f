// One reactor driven turn by turn from the test thread with a manual clock:
// timeouts without sleeping, and fairness counted in loop turns.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <cstring>
#include <memory>
#include <string>

#include "engine/clock.hpp"
#include "engine/reactor.hpp"
#include "tests/engine/reactor_harness.hpp"
#include "tests/wire_client.hpp"

using namespace ringlink;
using ringlink::wire::WireConn;
using ringlink::test::Harness;

namespace {

struct Echo : Handler {
  int timers = 0;
  void on_message(Link& l, std::span<std::byte> p, Opcode op) override {
    std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
    if (op == Opcode::text && s == "close-me") {
      l.close(4001, "bye");
      return;
    }
    if (op == Opcode::text && s == "timer") {
      l.set_timer(5000);
      return;
    }
    if (op == Opcode::binary) return;  // floods are counted, not echoed
    (void)l.send(p, op);
  }
  void on_timer(Link& l) override {
    ++timers;
    (void)l.send_text("tick");
  }
};

}  // namespace

// Protocol deadlines fire not a tick early and at most timer_slack_ms late.
constexpr std::uint64_t slack = Reactor::timer_slack_ms;

// No message for idle_timeout: the server closes with 1001; not a tick early.
TEST(ReactorTimers, IdleTimeoutCloses1001) {
  ServerConfig cfg;
  cfg.idle_timeout_ms = 1000;
  Echo h;
  Harness t(cfg, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  t.advance(990);
  t.pump();
  EXPECT_FALSE(c.readable());
  t.advance(20 + slack);
  auto f = t.next_frame(c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 1001);
  ASSERT_TRUE(c.send_close(1001));
  EXPECT_TRUE(t.eof(c));  // the server half-closed after the handshake
  c.close();
  t.pump();
  EXPECT_EQ(t.reactor().metrics().closes[static_cast<int>(CloseReason::idle_timeout)].get(), 1u);
}

// A quiet peer gets a ping; one that never answers gets close 1011 after
// pong_timeout and loses its socket after close_timeout; one that answers
// stays.
TEST(ReactorTimers, PingThenPongTimeout) {
  ServerConfig cfg;
  cfg.ping_interval_ms = 3000;  // no second ping for `alive` before the end
  cfg.pong_timeout_ms = 500;
  cfg.close_timeout_ms = 100;
  Echo h;
  Harness t(cfg, h);
  WireConn silent, alive;
  ASSERT_TRUE(t.open(silent));
  ASSERT_TRUE(t.open(alive));
  t.advance(2990);
  t.pump();
  EXPECT_FALSE(silent.readable());
  t.advance(10 + slack);
  auto p1 = t.next_frame(silent);
  auto p2 = t.next_frame(alive);
  ASSERT_TRUE(p1 && p2);
  EXPECT_EQ(p1->opcode, 9);
  EXPECT_EQ(p2->opcode, 9);
  ASSERT_TRUE(alive.send(10, p2->payload));
  t.pump();
  t.advance(490);
  t.pump();
  EXPECT_FALSE(silent.readable());
  t.advance(20 + slack);
  // No pong: the silent link is told why (1011), then given close_timeout.
  auto bye = t.next_frame(silent);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->opcode, 8);
  ASSERT_GE(bye->payload.size(), 2u);
  EXPECT_EQ((static_cast<unsigned>(bye->payload[0]) << 8) | static_cast<unsigned>(bye->payload[1]), 1011u);
  EXPECT_EQ(t.reactor().metrics().closes[static_cast<int>(CloseReason::ping_timeout)].get(), 0u);
  t.advance(101 + slack);
  EXPECT_TRUE(t.eof(silent));
  EXPECT_EQ(t.reactor().metrics().closes[static_cast<int>(CloseReason::ping_timeout)].get(), 1u);
  ASSERT_TRUE(alive.send_text("still"));
  auto f = t.next_frame(alive);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->text(), "still");
  EXPECT_EQ(t.reactor().links_open(), 1u);
}

// The defaults alone find a peer whose machine vanished (no FIN, no RST):
// ping after 35 s of quiet, close 1011 after 15 s more, socket gone 5 s
// later (each up to timer_slack_ms late): under 56 s, within the minute.
// A peer that answers stays.
TEST(ReactorTimers, DefaultKeepaliveEndsVanishedPeerWithinAMinute) {
  ServerConfig cfg;
  ASSERT_GT(cfg.ping_interval_ms, 0u);
  ASSERT_LE(cfg.ping_interval_ms + cfg.pong_timeout_ms + cfg.close_timeout_ms + 3 * slack, 60'000u);
  Echo h;
  Harness t(cfg, h);
  WireConn vanished, alive;
  ASSERT_TRUE(t.open(vanished));
  ASSERT_TRUE(t.open(alive));
  t.advance(cfg.ping_interval_ms - 1);
  t.pump();
  EXPECT_FALSE(vanished.readable());
  t.advance(1 + slack);
  auto ping = t.next_frame(vanished);
  auto ping2 = t.next_frame(alive);
  ASSERT_TRUE(ping && ping2);
  EXPECT_EQ(ping->opcode, 9);
  ASSERT_TRUE(alive.send(10, ping2->payload));
  t.pump();
  t.advance(cfg.pong_timeout_ms + slack);
  auto bye = t.next_frame(vanished);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->opcode, 8);
  t.advance(cfg.close_timeout_ms + slack);
  EXPECT_TRUE(t.eof(vanished));
  EXPECT_EQ(t.reactor().metrics().closes[static_cast<int>(CloseReason::ping_timeout)].get(), 1u);
  EXPECT_EQ(t.reactor().links_open(), 1u);
}

// Links opened together are due for a ping together; a turn sends at most
// max_pings_per_turn of them (each holds a send queue until the kernel has
// it) and the next turns send the rest: every link gets its ping.
TEST(ReactorTimers, PingRoundIsSpreadOverTurns) {
  ServerConfig cfg;
  cfg.ping_interval_ms = 3000;
  Echo h;
  Harness t(cfg, h);
  constexpr std::size_t links = 600;
  static_assert(links > 2 * Reactor::max_pings_per_turn);
  std::vector<WireConn> conns(links);
  for (WireConn& c : conns) ASSERT_TRUE(t.open(c));
  auto pinged = [&] {
    return static_cast<std::size_t>(std::count_if(conns.begin(), conns.end(), [](WireConn& c) { return c.readable(); }));
  };
  ASSERT_EQ(pinged(), 0u);
  t.advance(cfg.ping_interval_ms + slack);
  t.pump(1);
  EXPECT_LE(pinged(), Reactor::max_pings_per_turn);
  t.pump(1);
  const std::size_t after_two = pinged();
  EXPECT_GT(after_two, 0u);
  EXPECT_LE(after_two, 2 * Reactor::max_pings_per_turn);
  ASSERT_GE(t.pump_until([&] { return pinged() == links; }), 0);
  for (WireConn& c : conns) {
    auto ping = t.next_frame(c);
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->opcode, 9);
  }
}

// Slowloris: one byte of the request per 100 ms. The handshake timeout ends
// it with 408 while another link is served as usual.
TEST(ReactorTimers, SlowlorisGets408) {
  ServerConfig cfg;
  cfg.handshake_timeout_ms = 10'000;
  Echo h;
  Harness t(cfg, h);
  WireConn other;
  ASSERT_TRUE(t.open(other));
  WireConn slow;
  ASSERT_TRUE(slow.connect(t.port()));
  // A request that never ends: one more byte of a header line each time.
  const std::string req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(200, 'a');
  int status = 0;
  for (std::size_t i = 0; i < req.size() && status == 0; ++i) {
    slow.write(std::string_view(req).substr(i, 1));
    t.advance(100);
    t.pump(1);
    if (slow.readable()) status = slow.read_head(100);
    if (i % 20 == 0) {
      ASSERT_TRUE(other.send_text("x"));
      auto f = t.next_frame(other);
      ASSERT_TRUE(f);
      EXPECT_EQ(f->text(), "x");
    }
  }
  EXPECT_EQ(status, 408);
  EXPECT_EQ(t.reactor().metrics().handshakes_failed.get(), 1u);
}

// We close; the peer never answers: the link is dropped after close_timeout.
TEST(ReactorTimers, CloseTimeout) {
  ServerConfig cfg;
  cfg.close_timeout_ms = 2000;
  Echo h;
  Harness t(cfg, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  ASSERT_TRUE(c.send_text("close-me"));
  auto f = t.next_frame(c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 4001);
  EXPECT_EQ(f->text().substr(2), "bye");
  t.advance(1990);
  t.pump();
  EXPECT_FALSE(c.readable());
  t.advance(20 + slack);
  EXPECT_TRUE(t.eof(c));
  EXPECT_EQ(t.reactor().metrics().closes[static_cast<int>(CloseReason::close_timeout)].get(), 1u);
}

// Link::set_timer fires on_timer once, at its time.
TEST(ReactorTimers, ApplicationTimer) {
  ServerConfig cfg;
  Echo h;
  Harness t(cfg, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  ASSERT_TRUE(c.send_text("timer"));
  t.pump();
  t.advance(4990);
  t.pump();
  EXPECT_EQ(h.timers, 0);
  t.advance(20);
  auto f = t.next_frame(c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->text(), "tick");
  EXPECT_EQ(h.timers, 1);
}

// Fairness: with megabytes waiting on a flooding link, a quiet link's
// message is answered within two loop turns, long before the flood is read.
TEST(ReactorFairness, QuietLinkServedWithinTwoTurns) {
  ServerConfig cfg;
  struct Counting : Echo {
    std::size_t flood_messages = 0;
    void on_message(Link& l, std::span<std::byte> p, Opcode op) override {
      if (op == Opcode::binary) {
        ++flood_messages;
        return;
      }
      Echo::on_message(l, p, op);
    }
  } h;
  Harness t(cfg, h);
  WireConn flood, quiet;
  ASSERT_TRUE(t.open(flood));
  ASSERT_TRUE(t.open(quiet));
  // Fill the flood link's socket buffers without letting the reactor run.
  const wire::Bytes payload(1000, 1);
  const auto frame = wire::frame(2, payload);
  int flags = fcntl(flood.fd(), F_GETFL);
  fcntl(flood.fd(), F_SETFL, flags | O_NONBLOCK);
  std::size_t frames_written = 0;
  for (;;) {
    ssize_t w = ::send(flood.fd(), frame.data(), frame.size(), MSG_NOSIGNAL);
    if (w != static_cast<ssize_t>(frame.size())) break;  // buffers full (a partial frame is fine)
    ++frames_written;
  }
  ASSERT_GT(frames_written, 3 * config::read_budget / frame.size());
  ASSERT_TRUE(quiet.send_text("quiet"));
  const int turns = t.pump_until([&] { return quiet.readable(); }, 1000);
  ASSERT_GE(turns, 0);
  EXPECT_LE(turns, 2);
  EXPECT_LT(h.flood_messages, frames_written) << "the flood must still be unread";
  auto f = quiet.read_frame(100);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->text(), "quiet");
}

// Inbound rate limit: a burst passes, then reading pauses until tokens come
// back; nothing is dropped and order is kept.
TEST(ReactorRateLimit, PausesInsteadOfDropping) {
  ServerConfig cfg;
  cfg.rate_messages_per_s = 10;   // one token per 100 ms
  cfg.rate_burst_messages = 5;
  Echo h;
  Harness t(cfg, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.send_text("m" + std::to_string(i)));
  t.pump(20);
  int got = 0;
  auto drain = [&] {
    while (c.readable()) {
      auto f = c.read_frame(100);
      ASSERT_TRUE(f);
      EXPECT_EQ(f->text(), "m" + std::to_string(got));
      ++got;
    }
  };
  drain();
  EXPECT_EQ(got, 5) << "the burst";
  EXPECT_GT(t.reactor().metrics().rate_limited.get(), 0u);
  t.advance(100);
  t.pump(5);
  drain();
  EXPECT_EQ(got, 6) << "one token per 100 ms";
  for (int i = 0; i < 20 && got < 20; ++i) {
    t.advance(100);
    t.pump(5);
    drain();
  }
  EXPECT_EQ(got, 20);
  EXPECT_EQ(t.reactor().metrics().inbound_dropped.get(), 0u);
}
