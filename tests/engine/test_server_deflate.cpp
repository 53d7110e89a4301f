// permessage-deflate through the engine, with a hand-made client: the
// upgrade's answer, compressed echoes (RSV1 on the reply, threshold, a server window
// of 8 declined), and hostile input with its close code and
// counter: a bomb (1009, no memory spent), corrupt data (1007), RSV1 where
// it does not belong (1002), the shared fallback past the memory budget.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/link_deflate.hpp"
#include "protocol/deflate_codec.hpp"
#include "tests/engine/server_fixture.hpp"

namespace ringlink {
namespace {

using namespace std::chrono_literals;
using test::EchoHandler;
using wire::WireConn;

constexpr std::string_view offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

ServerConfig deflate_config() {
  ServerConfig cfg = test::test_config(1);
  cfg.deflate.enabled = true;
  cfg.deflate.threshold = 32;
  return cfg;
}

wire::Bytes to_wire(std::span<const std::byte> b) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  return wire::Bytes(p, p + b.size());
}

std::span<const std::byte> as_bytes(const wire::Bytes& b) { return std::as_bytes(std::span(b)); }

std::string answer_of(const std::string& head) {
  const auto at = head.find("Sec-WebSocket-Extensions: ");
  if (at == std::string::npos) return "";
  const auto end = head.find("\r\n", at);
  return head.substr(at + 26, end - at - 26);
}

// A client with context takeover: messages compressed by it, replies
// inflated by it.
TEST(ServerDeflate, NegotiatesAndEchoesCompressed) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  EchoHandler h;
  Server s(deflate_config(), h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port(), "/", offer), 101);
  EXPECT_EQ(answer_of(c.head()), "permessage-deflate; client_max_window_bits=15");
  Deflater def{15, 8};
  Inflater inf{15};
  ByteBuffer wire_out, plain;
  const std::string json = R"({"user":"ringlink","items":[1,2,3,4,5,6,7,8,9],"note":"compress me please"})";
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(def.deflate_message(std::as_bytes(std::span(json.data(), json.size())), wire_out));
    ASSERT_TRUE(c.write(wire::frame(0x1, to_wire(wire_out.view()), true, true, 0x4)));
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 1);
    EXPECT_EQ(f->rsv, 0x4);  // above the threshold: compressed
    ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), plain, 1 << 20), InflateStatus::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(plain.data()), plain.size()), json);
  }
  // Below the threshold the reply goes plain; an uncompressed message is fine.
  ASSERT_TRUE(c.send_text("short"));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->rsv, 0);
  EXPECT_EQ(f->text(), "short");
  // A compressed message in fragments, a ping between them.
  ASSERT_TRUE(def.deflate_message(std::as_bytes(std::span(json.data(), json.size())), wire_out));
  const wire::Bytes all = to_wire(wire_out.view());
  const std::size_t half = all.size() / 2;
  ASSERT_TRUE(c.write(wire::frame(0x1, wire::Bytes(all.begin(), all.begin() + half), false, true, 0x4)));
  ASSERT_TRUE(c.send(9, wire::bytes("p")));
  ASSERT_TRUE(c.write(wire::frame(0x0, wire::Bytes(all.begin() + half, all.end()), true, true, 0)));
  auto pong = c.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->rsv, 0);  // control frames never compressed
  f = c.read_frame();
  ASSERT_TRUE(f);
  ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), plain, 1 << 20), InflateStatus::ok);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(plain.data()), plain.size()), json);
  ASSERT_TRUE(c.send_close(1000));
  EXPECT_TRUE(c.wait_eof());
  s.stop(500ms);
  const MetricsSnapshot m = s.snapshot();
  EXPECT_EQ(m.deflate_calls, 4u);
  EXPECT_GT(m.deflate_in_plain_bytes, m.deflate_in_wire_bytes);
  EXPECT_GT(m.deflate_out_plain_bytes, m.deflate_out_wire_bytes);
  EXPECT_EQ(m.deflate_links, 0u);
}

TEST(ServerDeflate, OffByDefaultAndWithoutOffer) {
  EchoHandler h;
  Server s(test::test_config(1), h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port(), "/", offer), 101);
  EXPECT_EQ(answer_of(c.head()), "");
  // RSV1 on a link without the extension: 1002.
  ASSERT_TRUE(c.write(wire::frame(0x1, wire::bytes("x"), true, true, 0x4)));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1002);
  s.stop(500ms);
  EXPECT_EQ(s.snapshot().deflate_rsv1_errors, 1u);
}

void expect_close(const ServerConfig& cfg, const wire::Bytes& frame, std::uint16_t code,
                  std::uint64_t MetricsSnapshot::*counter) {
  EchoHandler h;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port(), "/", offer), 101);
  ASSERT_FALSE(answer_of(c.head()).empty());
  ASSERT_TRUE(c.write(frame));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 8);
  EXPECT_EQ(f->close_code(), code);
  s.stop(500ms);
  EXPECT_EQ(s.snapshot().*counter, 1u);
}

TEST(ServerDeflate, HostileInputGetsItsCloseCode) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  // 64 MiB of zeros in about 64 KiB: past max_message_size once inflated.
  const std::string zeros(std::max<std::size_t>(config::max_message_size + 1, 1u << 20), '\0');
  Deflater def{15, 8};
  ByteBuffer bomb;
  ASSERT_TRUE(def.deflate_message(std::as_bytes(std::span(zeros.data(), zeros.size())), bomb));
  expect_close(deflate_config(), wire::frame(0x2, to_wire(bomb.view()), true, true, 0x4), 1009,
               &MetricsSnapshot::deflate_too_big);
  expect_close(deflate_config(), wire::frame(0x2, wire::Bytes{0xff, 0xff, 0xff}, true, true, 0x4), 1007,
               &MetricsSnapshot::deflate_corrupt);
  // A truncated stream: the tail does not end its block.
  ByteBuffer whole;
  std::string text;
  for (int i = 0; i < 3000; ++i) text += static_cast<char>('a' + (i * 7919) % 26);
  Deflater def2{15, 8};
  ASSERT_TRUE(def2.deflate_message(std::as_bytes(std::span(text.data(), text.size())), whole));
  const wire::Bytes cut = to_wire(whole.view().first(whole.size() / 2));
  expect_close(deflate_config(), wire::frame(0x2, cut, true, true, 0x4), 1007, &MetricsSnapshot::deflate_corrupt);
  // RSV1 on a control frame and on a continuation.
  expect_close(deflate_config(), wire::frame(0x9, wire::bytes("p"), true, true, 0x4), 1002,
               &MetricsSnapshot::deflate_rsv1_errors);
  expect_close(deflate_config(),
               wire::concat({wire::frame(0x2, wire::Bytes{0x00}, false, true, 0x4), wire::frame(0x0, wire::Bytes{0x00}, true, true, 0x4)}),
               1002, &MetricsSnapshot::deflate_rsv1_errors);
  // Text that is not UTF-8 once inflated: 1007.
  ByteBuffer bad;
  Deflater def3{15, 8};
  const std::string not_utf8 = "\xff\xfe";
  ASSERT_TRUE(def3.deflate_message(std::as_bytes(std::span(not_utf8.data(), not_utf8.size())), bad));
  EchoHandler h;
  Server s(deflate_config(), h);
  ASSERT_EQ(s.start(), 0);
  WireConn c;
  ASSERT_EQ(c.open(s.port(), "/", offer), 101);
  ASSERT_TRUE(c.write(wire::frame(0x1, to_wire(bad.view()), true, true, 0x4)));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1007);
}

TEST(ServerDeflate, ServerWindowEightIsDeclined) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  ServerConfig cfg = deflate_config();
  EchoHandler h;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  // A server window of 8 is declined; the next offer is taken.
  WireConn c;
  ASSERT_EQ(c.open(s.port(), "/",
                   "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, "
                   "permessage-deflate; server_max_window_bits=9\r\n"),
            101);
  EXPECT_EQ(answer_of(c.head()), "permessage-deflate; server_max_window_bits=9");
  const std::string msg(200, 'z');
  ASSERT_TRUE(c.send_text(msg));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  Inflater inf{9};
  ByteBuffer plain;
  ASSERT_EQ(f->rsv, 0x4);
  ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), plain, 1000), InflateStatus::ok);
  EXPECT_EQ(plain.size(), 200u);
}

TEST(ServerDeflate, PastTheBudgetLinksShareContexts) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  ServerConfig cfg = deflate_config();
  // Room for one link's dedicated contexts, not two.
  DeflateParams p;
  cfg.deflate.memory_budget = DeflateBudget::in_use() + LinkDeflate::dedicated_bytes(p, false, 8) + 100;
  EchoHandler h;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn a, b;
  ASSERT_EQ(a.open(s.port(), "/", offer), 101);
  EXPECT_EQ(answer_of(a.head()), "permessage-deflate; client_max_window_bits=15");
  ASSERT_EQ(b.open(s.port(), "/", offer), 101);
  EXPECT_EQ(answer_of(b.head()),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15");
  // The shared link's messages each stand alone.
  const std::string msg(300, 'k');
  Inflater inf{15};
  ByteBuffer plain;
  std::size_t first = 0;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.send_text(msg));
    auto f = b.read_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->rsv, 0x4);
    if (i == 0) first = f->payload.size();
    EXPECT_EQ(f->payload.size(), first);  // no context: same bytes each time
    ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), plain, 1000), InflateStatus::ok);
    inf.reset();
    EXPECT_EQ(plain.size(), 300u);
  }
  EXPECT_EQ(s.snapshot().deflate_shared_fallbacks, 1u);
  s.stop(500ms);
}

// A broadcast is compressed once for every link without context takeover
// (one reactor, one window): they all get the same bytes with RSV1. Links
// with context takeover compress it each in their own context, a link
// without the extension gets it plain.
TEST(ServerDeflate, BroadcastCompressesOnceForSharedLinks) {
  if (!config::deflate) GTEST_SKIP() << "built without zlib";
  EchoHandler h;
  Server s(deflate_config(), h);
  ASSERT_EQ(s.start(), 0);
  constexpr int shared_links = 20;
  std::vector<std::unique_ptr<WireConn>> shared, own;
  for (int i = 0; i < shared_links; ++i) {
    shared.push_back(std::make_unique<WireConn>());
    ASSERT_EQ(shared.back()->open(s.port(), "/",
                                  "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"),
              101);
  }
  for (int i = 0; i < 2; ++i) {
    own.push_back(std::make_unique<WireConn>());
    ASSERT_EQ(own.back()->open(s.port(), "/", offer), 101);
  }
  WireConn plain;
  ASSERT_EQ(plain.open(s.port()), 101);
  ASSERT_TRUE(test::eventually([&] { return h.opened.load() == shared_links + 3; }));
  std::string json = "[";
  for (int i = 0; i < 40; ++i) json += R"({"id":)" + std::to_string(i) + R"(,"name":"ringlink","ok":true},)";
  json += "{}]";
  ASSERT_EQ(s.broadcast_all(std::as_bytes(std::span(json.data(), json.size())), Opcode::text), 1u);
  std::optional<wire::Bytes> first;
  for (auto& c : shared) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->rsv, 0x4);
    if (!first) first = f->payload;
    EXPECT_EQ(f->payload, *first);  // the same frame, by reference
    Inflater inf{15};
    ByteBuffer out;
    ASSERT_EQ(inf.inflate_message(as_bytes(f->payload), out, 1 << 20), InflateStatus::ok);
    EXPECT_EQ(out.size(), json.size());
  }
  for (auto& c : own) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->rsv, 0x4);
  }
  auto f = plain.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->rsv, 0);
  EXPECT_EQ(f->text(), json);
  // One deflate for the twenty, one for each link with its own context.
  EXPECT_EQ(s.snapshot().deflate_calls, 3u);
  s.stop(500ms);
}

}  // namespace
}  // namespace ringlink
