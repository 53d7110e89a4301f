// Topics over loopback with an in-process server: fan-out across reactors,
// subscribe on the reactor thread and from others, caps, leaving on close,
// and what a slow subscriber loses (counted, reported as gaps, never
// duplicated, never slowing the others). Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/link.hpp"
#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

namespace {

// "SUB t" / "UNSUB t" subscribe on the reactor thread and answer with the
// result; on_topic_gap sends "GAP <first> <count>" ahead of the next
// publication.
struct TopicHandler : Handler {
  Server* server = nullptr;
  std::mutex m;
  std::vector<LinkId> ids;
  std::map<std::string, int> results;
  std::atomic<int> opened{0}, closed{0}, gaps{0};
  std::vector<std::uint16_t> close_codes;
  void on_open(Link& l) override {
    std::lock_guard g(m);
    ids.push_back(l.id());
    opened++;
  }
  void on_message(Link& l, std::span<std::byte> p, Opcode) override {
    const std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
    std::string answer;
    if (s.starts_with("SUB ")) {
      answer = to_string(server->subscribe(l.id(), s.substr(4)));
    } else if (s.starts_with("UNSUB ")) {
      answer = server->unsubscribe(l.id(), s.substr(6)) ? "removed" : "absent";
    } else {
      return;
    }
    {
      std::lock_guard g(m);
      results[answer]++;
    }
    (void)l.send(std::as_bytes(std::span(answer.data(), answer.size())), Opcode::text);
  }
  void on_topic_gap(Link& l, std::string_view, std::uint64_t first, std::uint64_t count) override {
    gaps++;
    const std::string text = "GAP " + std::to_string(first) + " " + std::to_string(count);
    (void)l.send(std::as_bytes(std::span(text.data(), text.size())), Opcode::text);
  }
  void on_close(Link&, std::uint16_t code, std::string_view) override {
    std::lock_guard g(m);
    close_codes.push_back(code);
    closed++;
  }
  std::vector<LinkId> links() {
    std::lock_guard g(m);
    return ids;
  }
};

std::span<const std::byte> as_span(const wire::Bytes& b) { return std::as_bytes(std::span(b)); }

// Opens n clients and returns them with their link ids, in opening order.
std::vector<std::unique_ptr<WireConn>> open_clients(Server& s, TopicHandler& h, int n) {
  std::vector<std::unique_ptr<WireConn>> cs;
  for (int i = 0; i < n; ++i) {
    cs.push_back(std::make_unique<WireConn>());
    EXPECT_EQ(cs.back()->open(s.port()), 101);
    EXPECT_TRUE(eventually([&] { return h.opened.load() == i + 1; }));
  }
  return cs;
}

std::string read_text(WireConn& c) {
  auto f = c.read_frame();
  return f ? f->text() : std::string("<nothing>");
}

}  // namespace

// Publications from several threads reach every subscriber on both
// reactors, each publisher's in order and none twice; a link subscribed to
// one topic never sees another's.
TEST(ServerTopics, FanOutAcrossReactorsInPublisherOrder) {
  TopicHandler h;
  Server s(test_config(2), h);
  h.server = &s;
  ASSERT_EQ(s.start(), 0);
  auto clients = open_clients(s, h, 6);
  const auto ids = h.links();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(s.subscribe(ids[i], "all"), SubscribeResult::posted);
    if (i % 2 == 0) {
      ASSERT_EQ(s.subscribe(ids[i], "even"), SubscribeResult::posted);
    }
  }
  ASSERT_TRUE(eventually([&] { return s.topic_stats("all").subscribers == 6; }));
  constexpr int publishers = 3, per = 300;
  std::vector<std::thread> threads;
  for (int p = 0; p < publishers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < per; ++i) {
        const std::string msg = std::to_string(p) + ":" + std::to_string(i);
        PublishResult r = s.publish_text("all", msg);
        EXPECT_EQ(r.subscribers, 6u);
        EXPECT_EQ(r.dropped, 0u);
        if (i % 10 == 0) (void)s.publish_text("even", "e" + msg);
      }
    });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    std::vector<int> next(publishers, 0);
    int evens = 0;
    const int expected = publishers * per + (i % 2 == 0 ? publishers * per / 10 : 0);
    for (int got = 0; got < expected; ++got) {
      auto f = clients[i]->read_frame();
      ASSERT_TRUE(f) << "client " << i << " after " << got;
      std::string t = f->text();
      if (t[0] == 'e') {
        ++evens;
        continue;
      }
      const int p = std::stoi(t.substr(0, t.find(':')));
      const int n = std::stoi(t.substr(t.find(':') + 1));
      ASSERT_EQ(n, next[p]) << "client " << i << " publisher " << p;  // in order, no gap, no duplicate
      ++next[p];
    }
    EXPECT_EQ(evens, i % 2 == 0 ? publishers * per / 10 : 0);
    EXPECT_FALSE(clients[i]->readable());
  }
  const auto st = s.topic_stats("all");
  EXPECT_EQ(st.published, static_cast<std::uint64_t>(publishers * per));
  EXPECT_EQ(st.delivered, static_cast<std::uint64_t>(publishers * per * 6));
  EXPECT_EQ(st.dropped, 0u);
  s.stop(500ms);
}

// On the link's own thread subscribe is done at once: duplicates, the
// per-link cap and the server cap answer there, and refusals are counted.
TEST(ServerTopics, SubscribeOnTheReactorThreadAndCaps) {
  TopicHandler h;
  ServerConfig cfg = test_config(1);
  cfg.max_topics_per_link = 3;
  cfg.max_topics = 4;
  Server s(cfg, h);
  h.server = &s;
  ASSERT_EQ(s.start(), 0);
  auto c = open_clients(s, h, 2);
  for (const char* t : {"a", "b", "c"}) {
    ASSERT_TRUE(c[0]->send_text(std::string("SUB ") + t));
    EXPECT_EQ(read_text(*c[0]), "subscribed");
  }
  ASSERT_TRUE(c[0]->send_text("SUB a"));
  EXPECT_EQ(read_text(*c[0]), "already");
  ASSERT_TRUE(c[0]->send_text("SUB d"));
  EXPECT_EQ(read_text(*c[0]), "refused_link_cap");
  ASSERT_TRUE(c[1]->send_text("SUB d"));
  EXPECT_EQ(read_text(*c[1]), "subscribed");
  ASSERT_TRUE(c[1]->send_text("SUB e"));
  EXPECT_EQ(read_text(*c[1]), "refused_server_cap");
  ASSERT_TRUE(c[1]->send_text(std::string("SUB ") + std::string(256, 'x')));
  EXPECT_EQ(read_text(*c[1]), "invalid_topic");
  ASSERT_TRUE(c[0]->send_text("UNSUB b"));
  EXPECT_EQ(read_text(*c[0]), "removed");
  ASSERT_TRUE(c[0]->send_text("UNSUB b"));
  EXPECT_EQ(read_text(*c[0]), "absent");
  ASSERT_TRUE(c[0]->send_text("SUB e"));   // room again on both caps
  EXPECT_EQ(read_text(*c[0]), "subscribed");
  EXPECT_EQ(s.snapshot().topic_link_cap, 1u);
  EXPECT_EQ(s.topic_registry()->refused_server_cap(), 1u);
  EXPECT_EQ(s.topic_registry()->topics(), 4u);
  // Only subscribers hear a publication.
  EXPECT_EQ(s.publish_text("d", "to d").subscribers, 1u);
  EXPECT_EQ(read_text(*c[1]), "to d");
  EXPECT_FALSE(c[0]->readable());
  s.stop(500ms);
}

// 10,000 subscribe commands from one link in one burst: each is answered,
// the cap holds, nothing is lost or stuck, and other links are served.
TEST(ServerTopics, TenThousandSubscribesFromOneLink) {
  TopicHandler h;
  ServerConfig cfg = test_config(1);
  cfg.max_topics_per_link = 5000;
  Server s(cfg, h);
  h.server = &s;
  ASSERT_EQ(s.start(), 0);
  auto c = open_clients(s, h, 2);
  std::thread writer([&] {
    for (int i = 0; i < 10000; ++i) ASSERT_TRUE(c[0]->send_text("SUB t" + std::to_string(i)));
  });
  int subscribed = 0, refused = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::string r = read_text(*c[0]);
    if (r == "subscribed") {
      ++subscribed;
    } else if (r == "refused_link_cap") {
      ++refused;
    } else {
      ADD_FAILURE() << r;
    }
  }
  writer.join();
  EXPECT_EQ(subscribed, 5000);
  EXPECT_EQ(refused, 5000);
  EXPECT_EQ(s.topic_registry()->topics(), 5000u);
  ASSERT_TRUE(c[1]->send_text("SUB t4999"));
  EXPECT_EQ(read_text(*c[1]), "subscribed");
  EXPECT_EQ(s.publish_text("t4999", "x").subscribers, 2u);
  EXPECT_EQ(read_text(*c[0]), "x");
  EXPECT_EQ(read_text(*c[1]), "x");
  s.stop(500ms);
}

// A closing link leaves every topic; a topic without subscribers is
// forgotten, and publishing to it does nothing.
TEST(ServerTopics, CloseLeavesEveryTopic) {
  TopicHandler h;
  Server s(test_config(2), h);
  h.server = &s;
  ASSERT_EQ(s.start(), 0);
  {
    auto c = open_clients(s, h, 2);
    for (auto& cl : c)
      for (const char* t : {"x", "y", "z"}) {
        ASSERT_TRUE(cl->send_text(std::string("SUB ") + t));
        EXPECT_EQ(read_text(*cl), "subscribed");
      }
    EXPECT_EQ(s.topic_registry()->topics(), 3u);
    EXPECT_EQ(s.topic_stats("x").subscribers, 2u);
    ASSERT_TRUE(c[0]->send_close(1000));
    ASSERT_TRUE(eventually([&] { return s.topic_stats("x").subscribers == 1; }));
  }
  ASSERT_TRUE(eventually([&] { return s.topic_registry()->topics() == 0; }));
  const PublishResult r = s.publish_text("x", "nobody");
  EXPECT_EQ(r.seq, 0u);
  EXPECT_EQ(r.subscribers, 0u);
  EXPECT_GE(s.topic_registry()->published_unheard(), 1u);
  EXPECT_TRUE(s.publish_text("", "x").invalid_topic);
  // A stale id subscribes nothing, once its reactor has freed the link: a
  // link leaves its topics when it starts closing, a little before that.
  EXPECT_TRUE(eventually([&] { return s.subscribe(h.links()[0], "x") == SubscribeResult::closed; }));
  s.stop(500ms);
}

// A subscriber that does not read loses publications to its outbound policy
// while a reading one gets every publication in order. When the slow one
// reads again it is told each gap before the next publication: what it
// received plus the gaps it was told cover every number once, in order.
class SlowSubscriber : public ::testing::TestWithParam<OutboundPolicy> {};

TEST_P(SlowSubscriber, LossesAreCountedAndReportedOthersUnaffected) {
  TopicHandler h;
  ServerConfig cfg = test_config(2);
  cfg.outbound_policy = GetParam();
  cfg.max_queued_bytes = 64 * 1024;
  Server s(cfg, h);
  h.server = &s;
  ASSERT_EQ(s.start(), 0);
  WireConn slow;
  slow.set_recv_buffer(4096);
  ASSERT_EQ(slow.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 1; }));
  WireConn fast;
  ASSERT_EQ(fast.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 2; }));
  for (WireConn* c : {&slow, &fast}) {
    ASSERT_TRUE(c->send_text("SUB feed"));
    EXPECT_EQ(read_text(*c), "subscribed");
  }
  constexpr std::uint32_t n = 400;
  std::atomic<std::uint32_t> fast_got{0};
  std::thread reader([&] {
    for (std::uint32_t i = 1; i <= n + 1; ++i) {
      auto f = fast.read_frame();
      if (!f) {
        ADD_FAILURE() << "fast reader stopped at " << i;
        return;
      }
      EXPECT_EQ(seq_of(f->payload), i);
      fast_got.store(i);
    }
  });
  for (std::uint32_t i = 1; i <= n; ++i) {
    // Paced by the fast reader only (never by time): it is never more than
    // 32 publications behind, so its own queue never fills.
    ASSERT_TRUE(eventually([&] { return fast_got.load() + 32 >= i; }));
    const PublishResult r = s.publish(std::string_view("feed"), as_span(seq_payload(i, 16 * 1024)));
    ASSERT_EQ(r.seq, i);
  }
  ASSERT_TRUE(eventually([&] { return fast_got.load() == n; }));
  // Read everything queued for the slow one, then one more publication
  // brings the report of what it lost since. Received numbers rise; they
  // and the reported gaps cover every number exactly once. Under reject a
  // gap is reported where it happened; under drop_oldest the frames after
  // it were queued before the loss was known, so its report may follow them.
  std::vector<int> covered(n + 2, 0);
  std::uint64_t reported_lost = 0;
  std::uint32_t last = 0;
  std::uint64_t expect = 1;   // reject: the next number in stream order
  auto take = [&](const wire::RxFrame& f) {
    if (f.opcode == 0x1 && f.text().starts_with("GAP ")) {
      unsigned long first = 0, count = 0;
      EXPECT_EQ(std::sscanf(f.text().c_str(), "GAP %lu %lu", &first, &count), 2);
      for (unsigned long k = first; k < first + count && k <= n + 1; ++k) covered[k]++;
      reported_lost += count;
      if (GetParam() == OutboundPolicy::reject) {
        EXPECT_EQ(first, expect);
        expect = first + count;
      }
      return;
    }
    const std::uint32_t seq = seq_of(f.payload);
    EXPECT_GT(seq, last) << "out of order or duplicate";
    last = seq;
    if (seq <= n + 1) covered[seq]++;
    if (GetParam() == OutboundPolicy::reject) {
      EXPECT_EQ(seq, expect) << "a gap went unreported";
      expect = seq + 1;
    }
  };
  auto all_covered = [&] {
    for (std::uint32_t k = 1; k <= n + 1; ++k)
      if (covered[k] == 0) return false;
    return true;
  };
  // Drained: nothing arrives and nothing waits in the server's queues.
  while (true) {
    auto f = slow.read_frame(200);
    if (f) {
      take(*f);
      continue;
    }
    if (s.snapshot().queued_bytes == 0) break;
  }
  ASSERT_EQ(s.publish(std::string_view("feed"), as_span(seq_payload(n + 1, 16))).seq, n + 1);
  reader.join();
  while (!all_covered()) {
    auto f = slow.read_frame();
    if (!f) {
      std::string missing;
      for (std::uint32_t k = 1; k <= n + 1; ++k)
        if (covered[k] == 0) missing += " " + std::to_string(k);
      FAIL() << "never told of the loss of" << missing;
    }
    take(*f);
  }
  for (std::uint32_t k = 1; k <= n + 1; ++k) EXPECT_EQ(covered[k], 1) << k;
  EXPECT_EQ(last, n + 1);
  // Every loss was counted once, on the topic and on the reactors.
  const auto dropped = s.topic_stats("feed").dropped;
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(reported_lost, dropped);
  EXPECT_GE(h.gaps.load(), 1);
  EXPECT_EQ(s.snapshot().topic_dropped, dropped);
  // Memory stayed bounded: no reactor ever held more than the two links' caps.
  EXPECT_LE(s.snapshot().queued_bytes_high_water, 2u * 2 * cfg.max_queued_bytes);
  s.stop(500ms);
}

INSTANTIATE_TEST_SUITE_P(Policies, SlowSubscriber,
                         ::testing::Values(OutboundPolicy::reject, OutboundPolicy::drop_oldest));

// close_slow: the slow subscriber is closed (1008) and leaves the topic;
// the reading one gets everything.
TEST(ServerTopics, CloseSlowEndsOnlyTheSlowSubscriber) {
  TopicHandler h;
  ServerConfig cfg = test_config(1);
  cfg.outbound_policy = OutboundPolicy::close_slow;
  cfg.max_queued_bytes = 64 * 1024;
  cfg.close_timeout_ms = 200;
  Server s(cfg, h);
  h.server = &s;
  ASSERT_EQ(s.start(), 0);
  WireConn slow;
  slow.set_recv_buffer(4096);
  ASSERT_EQ(slow.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 1; }));
  WireConn fast;
  ASSERT_EQ(fast.open(s.port()), 101);
  ASSERT_TRUE(eventually([&] { return h.opened.load() == 2; }));
  for (WireConn* c : {&slow, &fast}) {
    ASSERT_TRUE(c->send_text("SUB feed"));
    EXPECT_EQ(read_text(*c), "subscribed");
  }
  std::uint32_t i = 0;
  while (s.topic_stats("feed").subscribers > 1) {
    ASSERT_LT(i, 100000u) << "the slow subscriber was never closed";
    ++i;
    (void)s.publish(std::string_view("feed"), as_span(seq_payload(i, 16 * 1024)));
    auto f = fast.read_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(seq_of(f->payload), i);
  }
  ASSERT_TRUE(eventually([&] { return h.closed.load() == 1; }));
  EXPECT_EQ(h.close_codes, std::vector<std::uint16_t>{1008});
  EXPECT_EQ(s.publish_text("feed", "after").subscribers, 1u);
  EXPECT_EQ(read_text(fast), "after");
  s.stop(500ms);
}
