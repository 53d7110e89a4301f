// Engine behaviour over loopback with in-process servers and a raw client:
// echo, backpressure policies, lossless inbound hand-off, fairness,
// cross-thread sends and broadcast, handler exceptions, stale ids, graceful
// stop. Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "engine/server.hpp"
#include "tests/wire_client.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using ringlink::wire::WireConn;

namespace {

constexpr auto kWait = 10s;

// Waits (bounded) for a predicate polled every millisecond.
template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = kWait) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return p();
}

wire::Bytes seq_payload(std::uint32_t seq, std::size_t size) {
  wire::Bytes b(std::max<std::size_t>(size, 4));
  std::memcpy(b.data(), &seq, 4);
  for (std::size_t i = 4; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(seq + i);
  return b;
}
std::uint32_t seq_of(const wire::Bytes& b) {
  std::uint32_t s = 0;
  std::memcpy(&s, b.data(), 4);
  return s;
}

struct EchoHandler : Handler {
  std::atomic<int> opened{0}, closed{0};
  std::mutex m;
  std::vector<LinkId> ids;
  std::vector<std::uint16_t> close_codes;
  void on_open(Link& l) override {
    std::lock_guard g(m);
    ids.push_back(l.id());
    opened++;
  }
  void on_message(Link& l, std::span<std::byte> p, Opcode op) override {
    std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
    if (op == Opcode::text && s == "boom") throw std::runtime_error("handler failure");
    (void)l.send(p, op);
  }
  void on_close(Link&, std::uint16_t code, std::string_view) override {
    std::lock_guard g(m);
    close_codes.push_back(code);
    closed++;
  }
};

ServerConfig test_config(unsigned reactors = 1) {
  ServerConfig cfg;
  cfg.port = 0;
  cfg.reactors = reactors;
  return cfg;
}

}  // namespace

// Echo of every length form through the engine, fragmented input reassembled.
TEST(Server, EchoesAllLengthFormsAndFragments) {
  EchoHandler h;
  Server s(test_config(2), h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port()), 101);
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 200000u}) {
    auto p = seq_payload(static_cast<std::uint32_t>(n), n);
    if (n == 0) p.clear();
    ASSERT_TRUE(c.send_binary(p));
    auto f = c.read_frame();
    ASSERT_TRUE(f) << n;
    EXPECT_EQ(f->opcode, 2);
    EXPECT_EQ(f->payload, p) << n;
  }
  // Three fragments with a ping in between.
  auto a = wire::bytes("frag-"), b = wire::bytes("men"), d = wire::bytes("ted");
  ASSERT_TRUE(c.send(1, a, false));
  ASSERT_TRUE(c.send(9, wire::bytes("p")));
  ASSERT_TRUE(c.send(0, b, false));
  ASSERT_TRUE(c.send(0, d, true));
  auto pong = c.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->text(), "p");
  auto msg = c.read_frame();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->text(), "frag-mented");
  ASSERT_TRUE(c.send_close(1000));
  auto cl = c.read_frame();
  ASSERT_TRUE(cl);
  EXPECT_EQ(cl->opcode, 8);
  EXPECT_EQ(cl->close_code(), 1000);
  EXPECT_TRUE(c.wait_eof());
  s.stop(500ms);
  EXPECT_EQ(s.snapshot().closed(CloseReason::peer_close), 1u);
}

// A throwing handler closes its own link with 1011; a neighbour is untouched.
TEST(Server, HandlerExceptionClosesOnlyThatLink) {
  EchoHandler h;
  Server s(test_config(1), h);
  ASSERT_EQ(s.start(), 0);
  WireConn bad, good;
  ASSERT_EQ(bad.open(s.port()), 101);
  ASSERT_EQ(good.open(s.port()), 101);
  ASSERT_TRUE(bad.send_text("boom"));
  auto f = bad.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), 1011);
  ASSERT_TRUE(good.send_text("still here"));
  auto g = good.read_frame();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->text(), "still here");
  EXPECT_EQ(s.snapshot().handler_exceptions, 1u);
  s.stop(500ms);
}

// Protocol violations get their close code and counter; other links go on.
TEST(Server, ProtocolErrorsCloseWithTheRightCode) {
  EchoHandler h;
  Server s(test_config(1), h);
  ASSERT_EQ(s.start(), 0);
  struct Case { wire::Bytes bytes; std::uint16_t code; CloseReason reason; };
  const wire::Bytes bad_utf8 = {0xC0, 0xAF};
  std::vector<Case> cases = {
      {wire::frame(1, bad_utf8), 1007, CloseReason::invalid_utf8},
      {wire::frame(2, wire::bytes("x"), true, /*mask=*/false), 1002, CloseReason::protocol_error},
      {wire::frame(3, {}), 1002, CloseReason::protocol_error},
      {wire::frame(0, wire::bytes("x")), 1002, CloseReason::protocol_error},
  };
  WireConn bystander;
  ASSERT_EQ(bystander.open(s.port()), 101);
  for (auto& tc : cases) {
    WireConn c;
    ASSERT_EQ(c.open(s.port()), 101);
    ASSERT_TRUE(c.write(tc.bytes));
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->close_code(), tc.code);
    EXPECT_TRUE(c.wait_eof());
  }
  // Oversized: a header announcing more than max_message_size.
  {
    WireConn c;
    ASSERT_EQ(c.open(s.port()), 101);
    // The header and one payload byte: the decoder reports a frame once
    // payload arrives, and the session refuses it before reading the rest.
    std::uint8_t hdr[15] = {0x82, 0xFF};
    const std::uint64_t len = config::max_message_size + 1;
    for (int i = 0; i < 8; ++i) hdr[2 + i] = static_cast<std::uint8_t>(len >> (56 - 8 * i));
    ASSERT_TRUE(c.write(hdr));
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->close_code(), 1009);
  }
  ASSERT_TRUE(bystander.send_text("fine"));
  auto g = bystander.read_frame();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->text(), "fine");
  ASSERT_TRUE(eventually([&] { return s.snapshot().closed(CloseReason::protocol_error) == 3; }));
  auto m = s.snapshot();
  EXPECT_EQ(m.closed(CloseReason::invalid_utf8), 1u);
  EXPECT_EQ(m.closed(CloseReason::too_big), 1u);
  s.stop(500ms);
}

// Upgrade refusals carry the exact status.
TEST(Server, RefusesBadUpgradesWithTheirStatus) {
  struct Refuser : EchoHandler {
    UpgradeDecision on_upgrade(const UpgradeRequestParser& req) override {
      if (req.path() == "/private") return UpgradeDecision::refuse(401, "no\n");
      return UpgradeDecision::accept();
    }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.allowed_origins = {"https://good.example"};
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  {
    WireConn c;
    EXPECT_EQ(c.open(s.port(), "/private", "Origin: https://good.example\r\n"), 401);
  }
  {
    WireConn c;
    EXPECT_EQ(c.open(s.port(), "/", "Origin: https://evil.example\r\n"), 403);
  }
  {
    WireConn c;
    EXPECT_EQ(c.open(s.port(), "/", "Origin: https://good.example\r\n"), 101);
  }
  {
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    ASSERT_TRUE(c.write("POST / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(c.read_head(), 405);
  }
  {
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    ASSERT_TRUE(c.write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"));
    EXPECT_EQ(c.read_head(), 426);
    EXPECT_NE(c.head().find("Sec-WebSocket-Version: 13"), std::string::npos);
  }
  {
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(config::max_header_bytes, 'a') + "\r\n\r\n";
    ASSERT_TRUE(c.write(big.substr(0, config::max_header_bytes + 100)));
    EXPECT_EQ(c.read_head(), 431);
  }
  auto m = s.snapshot();
  EXPECT_EQ(m.links_refused, 2u);
  s.stop(500ms);
}

// Outbound, policy reject: a peer that stops reading turns sends into
// backpressured, queues stay under their caps, on_drain fires once it reads.
TEST(Server, BackpressureRejectThenDrain) {
  struct Pusher : Handler {
    std::atomic<int> backpressured{0}, drained{0};
    std::atomic<std::size_t> max_queued{0};
    std::atomic<std::uint32_t> sent{0};
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
    std::atomic<bool> reading{false};
    void on_open(Link& l) override { push(l, 1 << 20); }  // nobody reads yet: must push back
    // Until the peer reads, refill on every drain: a completion backend sends
    // the queue at the end of the turn, into socket buffers that may still
    // take it, so the first backpressure need not be the last.
    void on_drain(Link& l) override {
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
  // Settled: the last send was refused and no drain followed it.
  ASSERT_TRUE(eventually([&] {
    const int b = h.backpressured, d = h.drained;
    std::this_thread::sleep_for(100ms);
    return b >= 1 && b == d + 1 && h.backpressured == b && h.drained == d;
  }));
  EXPECT_LE(h.max_queued.load(), cfg.max_queued_bytes + 4096 + 16);
  EXPECT_LE(s.snapshot().queued_bytes_high_water, cfg.max_queued_bytes + 4096 + 16);
  // The reader resumes: every message arrives in order, on_drain fires once.
  h.reading = true;
  const int drained_before = h.drained;
  std::uint32_t expect = 0;
  const std::uint32_t sent = h.sent.load();
  while (expect < sent) {
    auto f = c.read_frame();
    ASSERT_TRUE(f) << "after " << expect;
    ASSERT_EQ(seq_of(f->payload), expect);
    ++expect;
  }
  EXPECT_TRUE(eventually([&] { return h.drained.load() == drained_before + 1; }));
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
        if (r == SendResult::dropped) dropped++;
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
  std::uint32_t last = 0, got = 0;
  bool first = true;
  while (auto f = c.read_frame(500)) {
    const std::uint32_t q = seq_of(f->payload);
    if (!first) {
      EXPECT_GT(q, last);
    }
    first = false;
    last = q;
    ++got;
  }
  EXPECT_EQ(last, 1999u);  // the newest always survives
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
  while (auto f = c.read_frame(2000)) {
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

// Inbound, lossless and fair: with a slow business side, a link that floods
// may have only handoff_quota messages waiting for the worker; a quiet link's
// message is handled after at most about that many of the flood's, not behind
// all of them.
TEST(Server, HandoffQuotaKeepsAFloodFromQueueingOthersBehindIt) {
  struct Business : Handler {
    std::atomic<int> flood_seen{0}, flood_seen_before_quiet{-1};
    void on_worker_message(LinkId, std::span<std::byte> p, Opcode, unsigned) override {
      if (p.size() == 5) {  // "quiet"
        flood_seen_before_quiet = flood_seen.load();
        return;
      }
      flood_seen++;
      std::this_thread::sleep_for(2ms);
    }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.inbound_mode = InboundMode::workers;
  cfg.workers = 1;
  cfg.handoff_quota = 8;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn flood, quiet;
  ASSERT_EQ(flood.open(s.port()), 101);
  ASSERT_EQ(quiet.open(s.port()), 101);
  constexpr int n = 300;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(flood.send_binary(seq_payload(static_cast<std::uint32_t>(i), 64)));
  ASSERT_TRUE(eventually([&] { return h.flood_seen.load() >= 1; }));
  ASSERT_TRUE(quiet.send_text("quiet"));
  ASSERT_TRUE(eventually([&] { return h.flood_seen_before_quiet.load() >= 0; }, 30s));
  // Without the quota all 300 would be in the ring ahead of it (capacity 1024).
  EXPECT_LE(h.flood_seen_before_quiet.load(), 2 * 8 + 1);
  ASSERT_TRUE(eventually([&] { return h.flood_seen.load() == n; }, 30s)) << "lossless: " << h.flood_seen.load();
  EXPECT_EQ(s.snapshot().inbound_dropped, 0u);
  s.stop(500ms);
}

// Inbound, lossless: a slow worker and a fast sender. Every message arrives
// in order, reading pauses, and the server's receive buffers stay bounded.
TEST(Server, LosslessInboundHandoffPausesReading) {
  struct Slow : Handler {
    std::atomic<std::uint32_t> received{0};
    std::atomic<bool> in_order{true};
    void on_worker_message(LinkId, std::span<std::byte> p, Opcode, unsigned) override {
      std::uint32_t q;
      std::memcpy(&q, p.data(), 4);
      if (q != received.load()) in_order = false;
      received++;
      if (q % 64 == 0) std::this_thread::sleep_for(1ms);
    }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.inbound_mode = InboundMode::workers;
  cfg.workers = 1;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port()), 101);
  constexpr std::uint32_t n = 20000;
  std::thread writer([&] {
    for (std::uint32_t i = 0; i < n; ++i) {
      auto p = seq_payload(i, 64);
      if (!c.send_binary(p)) return;
    }
  });
  ASSERT_TRUE(eventually([&] { return h.received.load() == n; }, 30s)) << h.received.load();
  writer.join();
  EXPECT_TRUE(h.in_order.load());
  auto m = s.snapshot();
  EXPECT_GT(m.read_pauses, 0u);
  EXPECT_EQ(m.inbound_dropped, 0u);
  EXPECT_EQ(m.messages_in, n);
  // One link: a chunk or two at a time. io_uring adds the chunks of its
  // provided buffer ring, and what the kernel filled for the link between
  // the pause and its cancellation (at most one ring's worth).
  // Read once the reactor thread has been joined: the pool is its alone.
  const std::size_t ring = std::string_view(s.reactor(0).backend_name()) == "io_uring" ? config::uring_buffers : 0;
  s.stop(500ms);
  EXPECT_LE(s.reactor(0).pool().high_water(), 4u + 2 * ring);
}

// Cross-thread sends and broadcast from several threads reach every link.
TEST(Server, CrossThreadSendsAndBroadcast) {
  EchoHandler h;
  Server s(test_config(2), h);
  ASSERT_EQ(s.start(), 0);
  constexpr int links = 4, threads = 4, per_thread = 200;
  std::vector<std::unique_ptr<WireConn>> clients;
  for (int i = 0; i < links; ++i) {
    clients.push_back(std::make_unique<WireConn>());
    ASSERT_EQ(clients.back()->open(s.port()), 101);
  }
  ASSERT_TRUE(eventually([&] { return h.opened.load() == links; }));
  std::vector<LinkId> ids;
  {
    std::lock_guard g(h.m);
    ids = h.ids;
  }
  const std::string_view all = "all", some = "some";
  std::vector<std::thread> senders;
  std::atomic<int> rejected{0};
  for (int t = 0; t < threads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        for (LinkId id : ids) {
          auto r = s.send_text(id, "t" + std::to_string(t));
          if (r != SendResult::queued) rejected++;
        }
        if (i % 50 == 0) s.broadcast_all(std::as_bytes(std::span(all)), Opcode::text);
        if (i % 50 == 25) s.broadcast(ids, std::as_bytes(std::span(some)), Opcode::text);
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(rejected.load(), 0);
  const int expected = threads * per_thread + threads * (per_thread / 50) * 2;
  for (auto& c : clients) {
    int got = 0;
    while (got < expected) {
      auto f = c->read_frame();
      ASSERT_TRUE(f) << got;
      ++got;
    }
  }
  s.stop(500ms);
}

// A stale id (link gone, slot reused) reaches nothing.
TEST(Server, StaleLinkIdIsDetected) {
  EchoHandler h;
  Server s(test_config(1), h);
  ASSERT_EQ(s.start(), 0);
  LinkId old;
  {
    WireConn c;
    ASSERT_EQ(c.open(s.port()), 101);
    ASSERT_TRUE(eventually([&] { return h.opened.load() == 1; }));
    std::lock_guard g(h.m);
    old = h.ids[0];
  }
  ASSERT_TRUE(eventually([&] { return h.closed.load() == 1; }));
  WireConn c2;
  ASSERT_EQ(c2.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 2; }));
  LinkId fresh;
  {
    std::lock_guard g(h.m);
    fresh = h.ids[1];
  }
  EXPECT_EQ(fresh.slot(), old.slot());
  EXPECT_NE(fresh.generation(), old.generation());
  EXPECT_EQ(s.send_text(old, "ghost"), SendResult::closed);
  EXPECT_FALSE(s.close(old));
  EXPECT_EQ(s.send_text(fresh, "real"), SendResult::queued);
  auto f = c2.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->text(), "real");
  s.stop(500ms);
}

// Graceful stop with messages in flight: every message send() reported
// queued reaches the peer before the 1001 close.
TEST(Server, GracefulStopDeliversQueuedMessages) {
  EchoHandler h;
  Server s(test_config(1), h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  c.set_recv_buffer(4096);
  ASSERT_EQ(c.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 1; }));
  LinkId id;
  {
    std::lock_guard g(h.m);
    id = h.ids[0];
  }
  std::uint32_t queued = 0;
  for (std::uint32_t i = 0; i < 300; ++i) {
    auto p = seq_payload(i, 1000);
    if (s.send(id, std::as_bytes(std::span(p))) == SendResult::queued) ++queued;
  }
  std::thread stopper([&] { s.stop(5s); });
  std::uint32_t got = 0;
  std::uint16_t close_code = 0;
  while (auto f = c.read_frame(3000)) {
    if (f->opcode == 8) {
      close_code = f->close_code();
      c.send_close(close_code);
      c.close();
      break;
    }
    EXPECT_EQ(seq_of(f->payload), got);
    ++got;
  }
  stopper.join();
  EXPECT_EQ(got, queued);
  EXPECT_EQ(close_code, 1001);
}

// Our own client against our own server: open, echo, close both ways.
TEST(Client, TalksToOurServer) {
  EchoHandler server_handler;
  Server srv(test_config(1), server_handler);
  ASSERT_EQ(srv.start(), 0);

  struct ClientHandler : Handler {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> got;
    bool opened = false, closed = false;
    std::uint16_t code = 0;
    void on_open(Link& l) override {
      (void)l.send_text("hello");
      std::vector<std::byte> big(100000, std::byte{7});
      (void)l.send(big);
      std::lock_guard g(m);
      opened = true;
      cv.notify_all();
    }
    void on_message(Link& l, std::span<std::byte> p, Opcode) override {
      std::lock_guard g(m);
      got.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
      if (got.size() == 2) l.close(4002, "done");
      cv.notify_all();
    }
    void on_close(Link&, std::uint16_t c, std::string_view) override {
      std::lock_guard g(m);
      closed = true;
      code = c;
      cv.notify_all();
    }
  } ch;
  ServerConfig ccfg = test_config(1);
  ccfg.listen = false;
  Server cli(ccfg, ch);
  ASSERT_EQ(cli.start(), 0);
  ConnectRequest req;
  ASSERT_EQ(resolve_address("127.0.0.1", srv.port(), req.address), 0);
  req.host_header = "127.0.0.1:" + std::to_string(srv.port());
  req.path = "/chat";
  ASSERT_TRUE(cli.connect(req));
  std::unique_lock lk(ch.m);
  ASSERT_TRUE(ch.cv.wait_for(lk, kWait, [&] { return ch.closed; }));
  ASSERT_EQ(ch.got.size(), 2u);
  EXPECT_EQ(ch.got[0], "hello");
  EXPECT_EQ(ch.got[1].size(), 100000u);
  EXPECT_EQ(ch.code, 4002);
  lk.unlock();
  cli.stop();
  srv.stop();
}

// GET /metrics answers in the Prometheus text format: every sample line
// parses, every series has HELP and TYPE, and the values are the server's.
TEST(Server, MetricsEndpointSpeaksPrometheus) {
  EchoHandler h;
  ServerConfig cfg = test_config(2);
  cfg.metrics_endpoint = true;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn ws;
  ASSERT_EQ(ws.open(s.port()), 101);
  ASSERT_TRUE(ws.send_text("count me"));
  ASSERT_TRUE(ws.read_frame());

  WireConn http;
  ASSERT_TRUE(http.connect(s.port()));
  ASSERT_TRUE(http.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(http.read_head(), 200);
  EXPECT_NE(http.head().find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  std::string body;
  std::uint8_t buf[4096];
  while (http.read_exact(buf, 1, 2000)) body.push_back(static_cast<char>(buf[0]));

  std::map<std::string, std::string> type_of;
  std::map<std::string, double> total;  // summed over reactors
  std::istringstream in(body);
  std::string line;
  int samples = 0;
  // name{reactor="N"[,label="value"]} number
  auto parse_sample = [](const std::string& l, std::string& name, unsigned& reactor, bool& extra, double& value) {
    const std::size_t brace = l.find("{reactor=\"");
    const std::size_t close = l.find("} ");
    if (brace == std::string::npos || close == std::string::npos || close < brace) return false;
    name = l.substr(0, brace);
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) return false;
    char* end = nullptr;
    reactor = static_cast<unsigned>(std::strtoul(l.c_str() + brace + 10, &end, 10));
    if (end == nullptr || *end != '"') return false;
    extra = end[1] == ',';
    const char* v = l.c_str() + close + 2;
    value = std::strtod(v, &end);
    return end != v && *end == '\0';
  };
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      type_of[name] = type;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    std::string name;
    unsigned reactor = 0;
    bool labelled = false;
    double value = 0;
    ASSERT_TRUE(parse_sample(line, name, reactor, labelled, value)) << "unparsable line: " << line;
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (family.size() > std::strlen(suffix) && family.ends_with(suffix) && !type_of.count(family))
        family.resize(family.size() - std::strlen(suffix));
    ASSERT_TRUE(type_of.count(family)) << "no TYPE for " << name;
    EXPECT_LT(reactor, 2u);
    if (!labelled) total[name] += value;
    ++samples;
  }
  EXPECT_GT(samples, 50);
  EXPECT_EQ(type_of["ringlink_links_open"], "gauge");
  EXPECT_EQ(type_of["ringlink_loop_turn_seconds"], "histogram");
  EXPECT_EQ(total["ringlink_links_open"], 1.0);          // the WebSocket link; this request is not open
  EXPECT_EQ(total["ringlink_links_accepted_total"], 2.0);
  EXPECT_EQ(total["ringlink_messages_in_total"], 1.0);
  EXPECT_GE(total["ringlink_loop_wakeups_total"], 1.0);
  EXPECT_EQ(total["ringlink_loop_turn_seconds_count"] > 0, true);
  s.stop(500ms);
}

// Inbound hand-off with the other policies: drop_newest counts what it
// drops and keeps the link; close ends the link with 1008.
TEST(Server, InboundDropNewestAndClosePolicies) {
  for (InboundPolicy policy : {InboundPolicy::drop_newest, InboundPolicy::close}) {
    struct Blocked : Handler {
      std::mutex m;
      std::condition_variable cv;
      bool release = false;
      std::atomic<int> seen{0};
      void on_worker_message(LinkId, std::span<std::byte>, Opcode, unsigned) override {
        std::unique_lock lk(m);
        cv.wait_for(lk, 10s, [&] { return release; });
        seen++;
      }
    } h;
    ServerConfig cfg = test_config(1);
    cfg.inbound_mode = InboundMode::workers;
    cfg.inbound_policy = policy;
    cfg.workers = 1;
    Server s(cfg, h);
    ASSERT_EQ(s.start(), 0);
    WireConn c;
    ASSERT_EQ(c.open(s.port()), 101);
    const int n = static_cast<int>(config::recv_ring_slots) + 200;  // more than the ring holds
    for (int i = 0; i < n; ++i) ASSERT_TRUE(c.send_binary(seq_payload(static_cast<std::uint32_t>(i), 16)));
    if (policy == InboundPolicy::drop_newest) {
      ASSERT_TRUE(eventually([&] { return s.snapshot().messages_in == static_cast<std::uint64_t>(n); }));
      EXPECT_GT(s.snapshot().inbound_dropped, 0u);
      EXPECT_EQ(s.snapshot().links_open, 1u);
    } else {
      auto f = c.read_frame();
      ASSERT_TRUE(f);
      EXPECT_EQ(f->opcode, 8);
      EXPECT_EQ(f->close_code(), 1008);
      EXPECT_EQ(s.snapshot().inbound_dropped, 0u);
    }
    {
      std::lock_guard g(h.m);
      h.release = true;
    }
    h.cv.notify_all();
    s.stop(500ms);
  }
}

// max_links_per_ip: the connection past the limit is answered 429 and
// closed; the links already open are untouched; closing one frees a place.
TEST(Server, PerIpConnectionLimit) {
  EchoHandler h;
  ServerConfig cfg = test_config(2);  // the limit holds across reactors
  cfg.max_links_per_ip = 3;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  std::vector<std::unique_ptr<WireConn>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<WireConn>());
    ASSERT_EQ(open.back()->open(s.port()), 101);
  }
  {
    WireConn extra;
    EXPECT_EQ(extra.open(s.port()), 429);
    EXPECT_TRUE(extra.wait_eof());
  }
  for (auto& c : open) {
    ASSERT_TRUE(c->send_text("still served"));
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->text(), "still served");
  }
  ASSERT_TRUE(open.back()->send_close(1000));
  ASSERT_TRUE(open.back()->read_frame());
  open.pop_back();
  ASSERT_TRUE(eventually([&] { return s.snapshot().links_open == 2; }));
  WireConn again;
  EXPECT_EQ(again.open(s.port()), 101);
  EXPECT_EQ(s.snapshot().links_refused, 1u);
  s.stop(500ms);
}
