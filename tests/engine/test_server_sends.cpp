// Sends by LinkId from threads outside the reactors: sends and broadcast
// reach every link, a stale id reaches nothing, and a graceful stop delivers
// everything send() reported queued.
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

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
