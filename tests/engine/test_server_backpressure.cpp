// Outbound backpressure: a peer that stops reading, under each
// OutboundPolicy (reject with on_drain, drop_oldest, close_slow).
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

// Outbound, policy reject: a peer that stops reading turns sends into
// backpressured, queues stay under their caps, on_drain fires once it reads.
TEST(Server, BackpressureRejectThenDrain) {
  struct Pusher : Handler {
    std::atomic<int> backpressured{0}, drained{0};
    std::atomic<std::size_t> max_queued{0};
    std::atomic<std::uint32_t> sent{0};
    // Held while pushing, so that the test can stop the pushes and know
    // none is under way.
    std::mutex m;
    // Sends until backpressured, at most `limit` messages (a reader that
    // keeps up would never push back).
    void push(Link& l, int limit) {
      for (int i = 0; i < limit; ++i) {
        auto p = seq_payload(sent.load(), 4096);
        SendResult r = l.send(std::as_bytes(std::span(p)));
        max_queued = std::max(max_queued.load(), l.queued_bytes());
        if (r == SendResult::backpressured) {
          backpressured++;
          return;
        }
        ASSERT_EQ(r, SendResult::queued);
        sent++;
      }
    }
    bool reading = false;  // under m
    void on_open(Link& l) override {  // nobody reads yet: must push back
      std::lock_guard g(m);
      push(l, 1 << 20);
    }
    // Until the peer reads, refill on every drain: a completion backend sends
    // the queue at the end of the turn, into socket buffers that may still
    // take it, so the first backpressure need not be the last.
    void on_drain(Link& l) override {
      std::lock_guard g(m);
      drained++;
      if (!reading) push(l, 1 << 20);
    }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.max_queued_bytes = 256 * 1024;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  c.set_recv_buffer(4096);
  ASSERT_EQ(c.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.backpressured.load() >= 1; }));
  // The reader resumes. From here no push is under way or to come: every
  // push ended refused (it sends until refused), and the next drain (one
  // fires when the queue empties) does not refill.
  int drained_before = 0;
  std::uint32_t sent = 0;
  {
    std::lock_guard g(h.m);
    h.reading = true;
    drained_before = h.drained;
    sent = h.sent.load();
    ASSERT_EQ(h.backpressured.load(), drained_before + 1) << "each push, from on_open or a drain, ends refused";
  }
  EXPECT_LE(h.max_queued.load(), cfg.max_queued_bytes + 4096 + 16);
  EXPECT_LE(s.snapshot().queued_bytes_high_water, cfg.max_queued_bytes + 4096 + 16);
  // Every message arrives in order, on_drain fires once.
  std::uint32_t expect = 0;
  while (expect < sent) {
    auto f = c.read_frame();
    ASSERT_TRUE(f) << "after " << expect;
    ASSERT_EQ(seq_of(f->payload), expect);
    ++expect;
  }
  EXPECT_TRUE(eventually([&] { return h.drained.load() == drained_before + 1; }));
  // Nothing beyond what send() reported queued: the server sent no more, and
  // a short look finds nothing more (an absence: there is nothing to wait for).
  EXPECT_EQ(s.snapshot().messages_out, sent);
  EXPECT_FALSE(c.read_frame(100)) << "nothing beyond what send() reported queued";
  EXPECT_GT(s.snapshot().send_backpressured, 0u);
  s.stop(500ms);
}

// Outbound, drop_oldest: sends keep succeeding, older frames are dropped
// (counted), what arrives is in order.
TEST(Server, BackpressureDropOldest) {
  struct Pusher : Handler {
    std::atomic<int> dropped{0};
    std::atomic<std::uint32_t> sent{0};
    void on_open(Link& l) override {
      for (std::uint32_t i = 0; i < 2000; ++i) {
        auto p = seq_payload(i, 4096);
        SendResult r = l.send(std::as_bytes(std::span(p)));
        if (r == SendResult::queued_dropping_older) dropped++;
        if (r != SendResult::backpressured) sent++;
      }
    }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.max_queued_bytes = 64 * 1024;
  cfg.outbound_policy = OutboundPolicy::drop_oldest;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  c.set_recv_buffer(4096);
  ASSERT_EQ(c.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.sent.load() == 2000; }));
  EXPECT_GT(h.dropped.load(), 0);
  // Read up to the newest, which always survives: in order, with gaps.
  std::uint32_t last = 0, got = 0;
  bool first = true;
  while (first || last != 1999u) {
    auto f = c.read_frame();
    ASSERT_TRUE(f) << "the newest message never came; last " << last;
    const std::uint32_t q = seq_of(f->payload);
    if (!first) {
      ASSERT_GT(q, last);
    }
    first = false;
    last = q;
    ++got;
  }
  EXPECT_LT(got, 2000u);
  EXPECT_GT(s.snapshot().send_dropped, 0u);
  s.stop(500ms);
}

// Outbound, close_slow: the slow consumer is closed with the configured code.
TEST(Server, BackpressureCloseSlowConsumer) {
  struct Pusher : Handler {
    std::atomic<int> closed_result{0};
    std::atomic<std::uint16_t> code{0};
    void on_open(Link& l) override {
      for (int i = 0; i < 4000; ++i) {
        auto p = seq_payload(static_cast<std::uint32_t>(i), 4096);
        if (l.send(std::as_bytes(std::span(p))) == SendResult::closed) {
          closed_result++;
          return;
        }
      }
    }
    void on_close(Link&, std::uint16_t c, std::string_view) override { code = c; }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.max_queued_bytes = 64 * 1024;
  cfg.outbound_policy = OutboundPolicy::close_slow;
  cfg.close_slow_code = close_code::try_again_later;
  cfg.close_timeout_ms = 300;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  c.set_recv_buffer(4096);
  ASSERT_EQ(c.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.closed_result.load() == 1; }));
  // Reading now, the peer finds the close frame after the queued data.
  std::uint16_t seen = 0;
  while (auto f = c.read_frame()) {
    if (f->opcode == 8) {
      seen = f->close_code();
      break;
    }
  }
  EXPECT_EQ(seen, 1013);
  ASSERT_TRUE(eventually([&] { return h.code.load() != 0; }));
  EXPECT_EQ(s.snapshot().closed(CloseReason::slow_consumer), 1u);
  s.stop(500ms);
}
