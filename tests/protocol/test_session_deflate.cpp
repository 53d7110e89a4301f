// Session with permessage-deflate in use: where RSV1 may appear (RFC 7692
// section 6), and compressed messages delivered whole (fragmented or not)
// with `compressed` set and their text left for the caller to check.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/session.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

// A masked client frame: fin, rsv bits (RSV1 = 4), opcode, payload < 126.
Bytes frame(int opcode, std::string_view payload, bool fin = true, int rsv = 0) {
  Bytes out;
  out.push_back(static_cast<std::byte>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  out.push_back(static_cast<std::byte>(0x80 | static_cast<int>(payload.size())));
  const std::uint8_t key[4] = {1, 2, 3, 4};
  for (auto k : key) out.push_back(static_cast<std::byte>(k));
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<std::byte>(static_cast<std::uint8_t>(payload[i]) ^ key[i % 4]));
  }
  return out;
}

Bytes join(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string text(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// Feeds everything (whole, then byte by byte) and returns the first event
// that is not need_more.
SessionEvent first_event(Session& s, Bytes& in) {
  std::span<std::byte> rest(in);
  for (;;) {
    SessionEvent ev = s.feed(rest);
    rest = rest.subspan(ev.consumed);
    if (ev.kind != SessionEventKind::need_more || rest.empty()) return ev;
  }
}

Session deflate_session() {
  Session s{Role::server};
  s.set_compression(true);
  return s;
}

TEST(SessionDeflate, Rsv1WithoutTheExtensionIs1002) {
  Session s{Role::server};
  Bytes in = frame(0x1, "x", true, 4);
  const SessionEvent ev = first_event(s, in);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, close_code::protocol_error);
  EXPECT_TRUE(ev.rsv1_misuse);
}

TEST(SessionDeflate, Rsv1OnControlFrameIs1002) {
  for (int op : {0x8, 0x9, 0xA}) {
    Session s = deflate_session();
    Bytes in = frame(op, "", true, 4);
    const SessionEvent ev = first_event(s, in);
    EXPECT_EQ(ev.kind, SessionEventKind::fail) << op;
    EXPECT_EQ(ev.code, close_code::protocol_error);
    EXPECT_TRUE(ev.rsv1_misuse);
  }
}

TEST(SessionDeflate, Rsv1OnContinuationIs1002) {
  Session s = deflate_session();
  Bytes in = join({frame(0x2, "ab", false, 4), frame(0x0, "cd", true, 4)});
  const SessionEvent ev = first_event(s, in);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, close_code::protocol_error);
  EXPECT_TRUE(ev.rsv1_misuse);
}

TEST(SessionDeflate, Rsv2AndRsv3StayForbidden) {
  for (int rsv : {1, 2, 5}) {
    Session s = deflate_session();
    Bytes in = frame(0x2, "x", true, rsv);
    const SessionEvent ev = first_event(s, in);
    EXPECT_EQ(ev.kind, SessionEventKind::fail) << rsv;
    EXPECT_FALSE(ev.rsv1_misuse);
  }
}

TEST(SessionDeflate, CompressedMessageWholeAndFragmented) {
  // Text that is not UTF-8 as it stands: compressed bytes are not checked.
  const std::string bad = "\xf2\x48\xcd\xc9\xc9\x07\x00";
  {
    Session s = deflate_session();
    Bytes in = frame(0x1, bad, true, 4);
    const SessionEvent ev = first_event(s, in);
    ASSERT_EQ(ev.kind, SessionEventKind::message);
    EXPECT_TRUE(ev.compressed);
    EXPECT_EQ(text(ev.payload), bad);
  }
  {
    Session s = deflate_session();
    Bytes in = join({frame(0x1, bad.substr(0, 3), false, 4), frame(0x9, "p"), frame(0x0, bad.substr(3, 2), false),
                     frame(0x0, bad.substr(5), true)});
    SessionEvent ev = first_event(s, in);
    ASSERT_EQ(ev.kind, SessionEventKind::ping);  // control frames in between stay plain
  }
  {
    Session s = deflate_session();
    Bytes in = join({frame(0x1, bad.substr(0, 3), false, 4), frame(0x0, bad.substr(3, 2), false),
                     frame(0x0, bad.substr(5), true)});
    const SessionEvent ev = first_event(s, in);
    ASSERT_EQ(ev.kind, SessionEventKind::message);
    EXPECT_TRUE(ev.compressed);
    EXPECT_EQ(text(ev.payload), bad);
  }
}

TEST(SessionDeflate, UncompressedMessagesStillChecked) {
  Session s = deflate_session();
  Bytes in = join({frame(0x1, "ok"), frame(0x1, "\xff")});
  std::span<std::byte> rest(in);
  SessionEvent ev = s.feed(rest);
  ASSERT_EQ(ev.kind, SessionEventKind::message);
  EXPECT_FALSE(ev.compressed);
  rest = rest.subspan(ev.consumed);
  ev = s.feed(rest);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, close_code::invalid_payload);
}

TEST(SessionDeflate, FailMessageClosesTheSession) {
  Session s = deflate_session();
  const SessionEvent ev = s.fail_message(close_code::invalid_payload, "bad deflate data");
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, close_code::invalid_payload);
  EXPECT_EQ(s.state(), SessionState::closed);
}

}  // namespace
}  // namespace ringlink

namespace ringlink {
namespace {

// A compressed message may be a little larger on the wire than the cap its
// inflated form must fit (incompressible data); a plain one may not.
TEST(SessionDeflate, CompressedMessagesGetSlackOnTheWire) {
  Session s{Role::server, 100};
  s.set_compression(true);
  Bytes in = frame(0x2, std::string(110, 'c'), true, 4);
  SessionEvent ev = first_event(s, in);
  ASSERT_EQ(ev.kind, SessionEventKind::message);
  EXPECT_EQ(ev.payload.size(), 110u);
  Session plain{Role::server, 100};
  plain.set_compression(true);
  Bytes big = frame(0x2, std::string(101, 'c'));
  ev = first_event(plain, big);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, close_code::message_too_big);
}

}  // namespace
}  // namespace ringlink
