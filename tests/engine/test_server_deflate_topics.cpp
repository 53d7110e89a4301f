// permessage-deflate and topics: a publication is compressed once per
// reactor and window for the subscribers without context takeover (as a
// broadcast is), in its own context for each subscriber with context
// takeover, not at all below the threshold or without the extension; what
// a slow compressed subscriber loses is still counted per topic, and a
// slow subscriber with context takeover never has a lost message in its
// compressor's context.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "protocol/deflate_codec.hpp"
#include "tests/engine/server_fixture.hpp"

namespace ringlink {
namespace {

using namespace std::chrono_literals;
using test::EchoHandler;
using wire::WireConn;

constexpr std::string_view shared_offer =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n";
constexpr std::string_view own_offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

ServerConfig deflate_config(unsigned reactors) {
  ServerConfig cfg = test::test_config(reactors);
  cfg.deflate.enabled = true;
  cfg.deflate.threshold = 32;
  return cfg;
}

std::span<const std::byte> as_bytes(const wire::Bytes& b) { return std::as_bytes(std::span(b)); }

std::string text_of(const ByteBuffer& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

std::unique_ptr<WireConn> open_conn(std::uint16_t port, std::string_view extra) {
  auto c = std::make_unique<WireConn>();
  return c->open(port, "/", extra) == 101 ? std::move(c) : nullptr;
}

// 1,000 subscribers without context takeover on two reactors: one deflate
// per reactor that has any of them, the same compressed bytes for all;
// two with context takeover get it compressed in their own contexts, one
// without the extension gets it plain; below the threshold nothing is
// compressed.
TEST(ServerDeflateTopics, PublicationCompressedOncePerReactor) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  EchoHandler h;
  Server s(deflate_config(2), h);
  ASSERT_EQ(s.start(), 0);
  constexpr int shared_links = 1000;
  std::vector<std::unique_ptr<WireConn>> shared, own;
  for (int i = 0; i < shared_links; ++i) {
    shared.push_back(open_conn(s.port(), shared_offer));
    ASSERT_TRUE(shared.back()) << "link " << i;
  }
  ASSERT_TRUE(test::eventually([&] { return h.opened.load() == shared_links; }));
  std::set<std::uint32_t> shared_reactors;
  {
    std::lock_guard g(h.m);
    for (LinkId id : h.ids) shared_reactors.insert(id.reactor());
  }
  for (int i = 0; i < 2; ++i) {
    own.push_back(open_conn(s.port(), own_offer));
    ASSERT_TRUE(own.back());
  }
  auto plain = open_conn(s.port(), "");
  ASSERT_TRUE(plain);
  ASSERT_TRUE(test::eventually([&] { return h.opened.load() == shared_links + 3; }));
  std::vector<LinkId> ids;
  {
    std::lock_guard g(h.m);
    ids = h.ids;
  }
  for (LinkId id : ids) ASSERT_EQ(s.subscribe(id, "news"), SubscribeResult::posted);
  ASSERT_TRUE(test::eventually([&] { return s.topic_stats("news").subscribers == shared_links + 3; }));

  std::string json = "[";
  for (int i = 0; i < 40; ++i) json += R"({"id":)" + std::to_string(i) + R"(,"name":"ringlink","ok":true},)";
  json += "{}]";
  const std::uint64_t calls_before = s.snapshot().deflate_calls;
  EXPECT_EQ(s.publish_text("news", json).subscribers, static_cast<std::size_t>(shared_links + 3));

  std::optional<wire::Bytes> first;
  ByteBuffer out;
  for (auto& c : shared) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 1);
    ASSERT_EQ(f->rsv, 0x4);
    if (!first) first = f->payload;
    EXPECT_EQ(f->payload, *first);
    Inflater inf{15};
    ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), out, 1 << 20), InflateStatus::ok);
    ASSERT_EQ(text_of(out), json);
  }
  EXPECT_LT(first->size(), json.size());
  std::vector<Inflater> own_inf;
  for (auto& c : own) {
    own_inf.emplace_back(15);
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->rsv, 0x4);
    ASSERT_EQ(own_inf.back().inflate_message(as_bytes(f->payload), out, 1 << 20), InflateStatus::ok);
    EXPECT_EQ(text_of(out), json);
  }
  auto f = plain->read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->rsv, 0);
  EXPECT_EQ(f->text(), json);
  // Once per reactor for the thousand, once for each own context.
  ASSERT_TRUE(test::eventually([&] { return s.topic_stats("news").delivered == shared_links + 3u; }));
  EXPECT_EQ(s.snapshot().deflate_calls - calls_before, shared_reactors.size() + 2);

  // A second publication: the context-takeover links inflate it against
  // the first (their contexts kept), the shared ones from scratch.
  const std::string again = json + json;
  (void)s.publish_text("news", again);
  for (std::size_t i = 0; i < own.size(); ++i) {
    f = own[i]->read_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(own_inf[i].inflate_message(as_bytes(f->payload), out, 1 << 20), InflateStatus::ok);
    EXPECT_EQ(text_of(out), again);
  }
  f = plain->read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->text(), again);
  for (int i : {0, shared_links / 2, shared_links - 1}) {
    f = shared[i]->read_frame();
    ASSERT_TRUE(f);
    Inflater inf{15};
    ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), out, 1 << 20), InflateStatus::ok);
    EXPECT_EQ(text_of(out), again);
  }

  // Below the threshold: plain for everyone, no deflate.
  const std::uint64_t calls_mid = s.snapshot().deflate_calls;
  (void)s.publish_text("news", "tiny");
  for (WireConn* c : {shared[0].get(), own[0].get(), plain.get()}) {
    f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->rsv, 0);
    EXPECT_EQ(f->text(), "tiny");
  }
  EXPECT_EQ(s.snapshot().deflate_calls, calls_mid);
  s.stop(500ms);
}

// Incompressible 16 KiB publications, numbered in their first four bytes.
wire::Bytes numbered(std::uint32_t seq, std::mt19937& rng) {
  wire::Bytes b(16 * 1024);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  std::memcpy(b.data(), &seq, sizeof seq);
  return b;
}

// A subscriber without context takeover that does not read: the shared
// compressed frames it cannot take are lost and counted on the topic
// (drop_oldest recognises them in its queue by their tag), and every
// publication is either received or counted, never both.
class SlowCompressedSubscriber : public ::testing::TestWithParam<OutboundPolicy> {};

TEST_P(SlowCompressedSubscriber, LossesCounted) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  EchoHandler h;
  ServerConfig cfg = deflate_config(1);
  cfg.outbound_policy = GetParam();
  cfg.max_queued_bytes = 64 * 1024;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn slow;
  slow.set_recv_buffer(4096);
  ASSERT_EQ(slow.open(s.port(), "/", shared_offer), 101);
  ASSERT_TRUE(test::eventually([&] { return h.opened.load() == 1; }));
  LinkId id;
  {
    std::lock_guard g(h.m);
    id = h.ids.at(0);
  }
  ASSERT_EQ(s.subscribe(id, "feed"), SubscribeResult::posted);
  ASSERT_TRUE(test::eventually([&] { return s.topic_stats("feed").subscribers == 1; }));
  // Far more than the socket buffers hold, in batches the reactor's ring
  // takes whole.
  constexpr std::uint32_t n = 600, batch = 100;
  std::mt19937 rng(7);
  // Each publication is one command on the reactor.
  const std::uint64_t commands_before = s.snapshot().commands;
  auto handled = [&](std::uint32_t upto) { return s.snapshot().commands >= commands_before + upto; };
  for (std::uint32_t i = 1; i <= n; ++i) {
    const wire::Bytes p = numbered(i, rng);
    const PublishResult r = s.publish(std::string_view("feed"), as_bytes(p));
    ASSERT_EQ(r.seq, i);
    ASSERT_EQ(r.dropped, 0u);
    if (i % batch == 0) {
      ASSERT_TRUE(test::eventually([&] { return handled(i); }));
    }
  }
  std::vector<int> got(n + 1, 0);
  std::uint32_t received = 0;
  ByteBuffer out;
  while (true) {
    auto f = slow.read_frame(200);
    if (f) {
      ASSERT_EQ(f->rsv, 0x4);
      Inflater inf{15};
      ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), out, 1 << 20), InflateStatus::ok);
      ASSERT_EQ(out.size(), 16u * 1024);
      std::uint32_t seq = 0;
      std::memcpy(&seq, out.data(), sizeof seq);
      ASSERT_TRUE(seq >= 1 && seq <= n);
      got[seq]++;
      ++received;
      continue;
    }
    if (s.snapshot().queued_bytes == 0) break;
  }
  const Server::TopicStats st = s.topic_stats("feed");
  EXPECT_GT(st.dropped, 0u);
  EXPECT_EQ(received + st.dropped, n);
  for (std::uint32_t k = 1; k <= n; ++k) EXPECT_LE(got[k], 1) << k;
  EXPECT_EQ(s.snapshot().topic_dropped, st.dropped);
  s.stop(500ms);
}

INSTANTIATE_TEST_SUITE_P(Policies, SlowCompressedSubscriber,
                         ::testing::Values(OutboundPolicy::reject, OutboundPolicy::drop_oldest));

// A subscriber with context takeover that reads slowly: a publication its
// queue cannot take must not have gone through its compressor, or the
// next one it receives refers to bytes it never got. Every message it
// receives inflates, in its one context, to the publication it was; what
// it lost is counted. Under drop_oldest its queued compressed frames are
// not dropped either (the same reason): it loses the new ones, as under reject.
class SlowTakeoverSubscriber : public ::testing::TestWithParam<OutboundPolicy> {};

TEST_P(SlowTakeoverSubscriber, ContextStaysInStep) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  EchoHandler h;
  ServerConfig cfg = deflate_config(1);
  cfg.outbound_policy = GetParam();
  cfg.max_queued_bytes = 16 * 1024;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn slow;
  slow.set_recv_buffer(4096);
  ASSERT_EQ(slow.open(s.port(), "/", own_offer), 101);
  ASSERT_TRUE(test::eventually([&] { return h.opened.load() == 1; }));
  LinkId id;
  {
    std::lock_guard g(h.m);
    id = h.ids.at(0);
  }
  ASSERT_EQ(s.subscribe(id, "feed"), SubscribeResult::posted);
  ASSERT_TRUE(test::eventually([&] { return s.topic_stats("feed").subscribers == 1; }));
  // Similar texts (each refers back to the one before), partly random so
  // that the socket buffers fill: 1,000 x ~10 KiB compressed.
  constexpr std::uint32_t n = 1000, batch = 100;
  std::mt19937 rng(11);
  std::vector<std::string> sent(n + 2);
  auto text = [&](std::uint32_t i) {
    std::string t = "{\"seq\":" + std::to_string(i) + ",\"noise\":\"";
    for (int k = 0; k < 16 * 1024; ++k) t += static_cast<char>('a' + rng() % 26);
    t += "\",\"tail\":\"the same words in every message, the same words in every message\"}";
    return sent[i] = t;
  };
  const std::uint64_t commands_before = s.snapshot().commands;
  for (std::uint32_t i = 1; i <= n; ++i) {
    const std::string t = text(i);
    const PublishResult r = s.publish_text("feed", t);
    ASSERT_EQ(r.dropped, 0u);
    if (i % batch == 0) {
      ASSERT_TRUE(test::eventually([&] { return s.snapshot().commands >= commands_before + i; }));
    }
  }
  Inflater inf{15};
  ByteBuffer out;
  std::uint32_t received = 0, last = 0;
  auto take = [&](const wire::RxFrame& f) {
    ASSERT_EQ(f.rsv, 0x4);
    ASSERT_EQ(inf.inflate_message(as_bytes(f.payload), out, 1 << 20), InflateStatus::ok) << "after " << last;
    const std::string got = text_of(out);
    const std::uint32_t seq = static_cast<std::uint32_t>(std::strtoul(got.c_str() + 7, nullptr, 10));
    ASSERT_TRUE(seq > last && seq <= n + 1) << seq;
    ASSERT_EQ(got, sent[seq]) << "after " << last;
    last = seq;
    ++received;
  };
  while (true) {
    auto f = slow.read_frame(200);
    if (f) {
      take(*f);
      if (HasFatalFailure()) return;
      continue;
    }
    if (s.snapshot().queued_bytes == 0) break;
  }
  // One more, once the queue is empty: it follows the lost ones.
  ASSERT_EQ(s.publish_text("feed", text(n + 1)).seq, n + 1);
  auto f = slow.read_frame();
  ASSERT_TRUE(f);
  take(*f);
  EXPECT_EQ(last, n + 1);
  const Server::TopicStats st = s.topic_stats("feed");
  EXPECT_GT(st.dropped, 0u);
  EXPECT_EQ(received + st.dropped, n + 1);
  s.stop(500ms);
}

INSTANTIATE_TEST_SUITE_P(Policies, SlowTakeoverSubscriber,
                         ::testing::Values(OutboundPolicy::reject, OutboundPolicy::drop_oldest));

}  // namespace
}  // namespace ringlink
