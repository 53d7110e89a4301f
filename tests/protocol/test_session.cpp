// Session: every protocol rule with its exact close code (fed whole, one
// byte at a time, with and without holding), valid conversations that must
// give the same events however the bytes are split, zero-copy delivery,
// the close handshake, and the session's memory behaviour.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "protocol/codec.hpp"
#include "protocol/session.hpp"

#include "tests/alloc_counter.hpp"

using ringlink::test::live_allocations;
using ringlink::test::total_allocations;

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes(std::string_view s) {
  Bytes out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Frame bytes, built here by hand so that the tests can also write what no
// encoder would: reserved bits, unknown opcodes, long or fragmented control
// frames, non-minimal lengths.
struct F {
  int opcode = 0x2;
  std::string payload;
  bool fin = true;
  bool masked = true;
  int rsv = 0;
  int length_form = 0;  // 0 minimal, 126 or 127 to force that encoding
  std::uint64_t claimed = UINT64_MAX;  // payload length to write (default: real)
};

Bytes frame(const F& f) {
  Bytes out;
  out.push_back(static_cast<std::byte>((f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode));
  const std::uint64_t len = f.claimed != UINT64_MAX ? f.claimed : f.payload.size();
  const int mask_bit = f.masked ? 0x80 : 0;
  int form = f.length_form;
  if (form == 0) form = len < 126 ? 0 : (len <= 0xFFFF ? 126 : 127);
  if (form == 0) {
    out.push_back(static_cast<std::byte>(mask_bit | static_cast<int>(len)));
  } else if (form == 126) {
    out.push_back(static_cast<std::byte>(mask_bit | 126));
    out.push_back(static_cast<std::byte>(len >> 8));
    out.push_back(static_cast<std::byte>(len));
  } else {
    out.push_back(static_cast<std::byte>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::byte>(len >> (8 * i)));
  }
  const std::uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};
  if (f.masked) {
    for (auto k : key) out.push_back(static_cast<std::byte>(k));
  }
  for (std::size_t i = 0; i < f.payload.size(); ++i) {
    auto b = static_cast<std::uint8_t>(f.payload[i]);
    if (f.masked) b ^= key[i % 4];
    out.push_back(static_cast<std::byte>(b));
  }
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string close_body(int code, std::string_view reason = {}) {
  std::string s;
  s.push_back(static_cast<char>(code >> 8));
  s.push_back(static_cast<char>(code & 0xFF));
  s += reason;
  return s;
}

// Server-side (masked) shorthands; client-side ones pass masked=false.
Bytes txt(std::string p, bool fin = true, bool m = true) { return frame({0x1, std::move(p), fin, m}); }
Bytes bin(std::string p, bool fin = true, bool m = true) { return frame({0x2, std::move(p), fin, m}); }
Bytes cont(std::string p, bool fin = true, bool m = true) { return frame({0x0, std::move(p), fin, m}); }
Bytes ping(std::string p, bool m = true) { return frame({0x9, std::move(p), true, m}); }
Bytes pong(std::string p, bool m = true) { return frame({0xA, std::move(p), true, m}); }
Bytes close_frame(std::string body, bool m = true) { return frame({0x8, std::move(body), true, m}); }

// One event, as the tests compare it (zero_copy and consumed differ by split).
struct Ev {
  SessionEventKind kind;
  int opcode = 0;
  std::string payload;
  int code = 0;
  std::string reason;
  bool reply = false;
  bool operator==(const Ev&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  return os << "{kind=" << static_cast<int>(e.kind) << " op=" << e.opcode << " len="
            << e.payload.size() << " code=" << e.code << " reason='" << e.reason
            << "' reply=" << e.reply << "}";
}

Ev msg(Opcode op, std::string p) { return {SessionEventKind::message, static_cast<int>(op), std::move(p), 0, {}, false}; }
Ev ev_ping(std::string p) { return {SessionEventKind::ping, 0, std::move(p), 0, {}, false}; }
Ev ev_pong(std::string p) { return {SessionEventKind::pong, 0, std::move(p), 0, {}, false}; }
Ev ev_close(int code, std::string reason, bool reply) {
  return {SessionEventKind::close, 0, {}, code, std::move(reason), reply};
}
Ev ev_fail(int code) { return {SessionEventKind::fail, 0, {}, code, {}, false}; }

struct Options {
  Role role = Role::server;
  std::size_t max_message_size = 1 << 20;
  std::size_t hold_limit = 0;
  bool start_close = false;
};

// Plays the caller of session.hpp: appends each read to what it kept, feeds
// until need_more, keeps the unconsumed tail. Fail reasons are checked to be
// non-empty and then dropped (they are constants, not part of the rule).
std::vector<Ev> drive(const Bytes& wire, const std::vector<std::size_t>& cuts, const Options& o) {
  Session s{o.role, o.max_message_size};
  if (o.start_close) {
    EXPECT_TRUE(s.start_close());
  }
  std::vector<Ev> out;
  Bytes buf;
  std::size_t start = 0;
  for (std::size_t k = 0; k <= cuts.size(); ++k) {
    const std::size_t end = k < cuts.size() ? cuts[k] : wire.size();
    buf.insert(buf.end(), wire.begin() + static_cast<std::ptrdiff_t>(start),
               wire.begin() + static_cast<std::ptrdiff_t>(end));
    start = end;
    std::size_t off = 0;
    for (;;) {
      std::span<std::byte> in(buf.data() + off, buf.size() - off);
      SessionEvent ev = s.feed(in, o.hold_limit);
      EXPECT_LE(ev.consumed, in.size());
      if (ev.zero_copy) {
        EXPECT_TRUE(ev.payload.empty() ||
                    (ev.payload.data() >= in.data() &&
                     ev.payload.data() + ev.payload.size() <= in.data() + in.size()));
      }
      off += ev.consumed;
      if (ev.kind == SessionEventKind::need_more) break;
      Ev e{ev.kind, 0, {}, 0, {}, false};
      if (ev.kind == SessionEventKind::message) e.opcode = static_cast<int>(ev.opcode);
      e.payload = text(ev.payload);
      e.code = ev.code;
      e.reply = ev.reply;
      if (ev.kind == SessionEventKind::fail) {
        EXPECT_FALSE(ev.reason.empty());
        EXPECT_EQ(ev.consumed, in.size());
      } else {
        e.reason = std::string(ev.reason);
      }
      out.push_back(e);
      if (ev.kind == SessionEventKind::close || ev.kind == SessionEventKind::fail) {
        EXPECT_EQ(s.state(), SessionState::closed);
      }
    }
    // With hold_limit 0 nothing but a partial header is ever kept.
    if (o.hold_limit == 0 && s.state() != SessionState::closed) {
      EXPECT_LE(buf.size() - off, max_frame_header);
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(off));
  }
  if (s.state() == SessionState::closed) {
    EXPECT_EQ(s.buffered_bytes(), 0u);
  }
  return out;
}

std::vector<std::size_t> every_byte(std::size_t n) {
  std::vector<std::size_t> c;
  for (std::size_t i = 1; i < n; ++i) c.push_back(i);
  return c;
}

std::vector<std::size_t> random_cuts(std::size_t n, std::mt19937& rng) {
  std::vector<std::size_t> c;
  if (n < 2) return c;
  const std::size_t count = rng() % std::min<std::size_t>(n, 40);
  for (std::size_t i = 0; i < count; ++i) c.push_back(1 + rng() % (n - 1));
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

// Runs `wire` whole, byte by byte and at random splits, with hold_limit 0
// and 4096; every run must give `expected`.
void expect_events(const Bytes& wire, Options o, const std::vector<Ev>& expected) {
  std::mt19937 rng(static_cast<unsigned>(wire.size()) * 7919u + 1);
  for (std::size_t hold : {std::size_t{0}, std::size_t{4096}}) {
    o.hold_limit = hold;
    SCOPED_TRACE("hold_limit " + std::to_string(hold));
    EXPECT_EQ(drive(wire, {}, o), expected) << "whole";
    EXPECT_EQ(drive(wire, every_byte(wire.size()), o), expected) << "byte by byte";
    for (int i = 0; i < 20; ++i) {
      const auto cuts = random_cuts(wire.size(), rng);
      EXPECT_EQ(drive(wire, cuts, o), expected) << "random split " << i;
    }
  }
}

// ---------------------------------------------------------------- rules --

struct Rule {
  std::string name;
  Role role;
  Bytes wire;
  std::uint16_t code;  // the fail event's code
  std::size_t max_message_size = 1000;
  std::vector<Ev> before = {};  // events expected before the failure
};

std::vector<Rule> rules() {
  std::vector<Rule> r;
  const auto S = Role::server;
  const auto C = Role::client;
  r.push_back({"server_rejects_unmasked_data", S, bin("x", true, false), 1002});
  r.push_back({"server_rejects_unmasked_ping", S, ping("x", false), 1002});
  r.push_back({"client_rejects_masked_data", C, bin("x", true, true), 1002});
  r.push_back({"client_rejects_masked_close", C, close_frame(close_body(1000), true), 1002});
  r.push_back({"continuation_without_start", S, cont("x"), 1002});
  r.push_back({"continuation_after_finished_message", S, cat({bin("a"), cont("b")}), 1002,
               1000, {msg(Opcode::binary, "a")}});
  r.push_back({"text_inside_fragmented", S, cat({txt("a", false), txt("b")}), 1002});
  r.push_back({"binary_inside_fragmented", S, cat({bin("a", false), bin("b")}), 1002});
  r.push_back({"binary_inside_fragmented_text", S, cat({txt("a", false), ping("p"), bin("b")}),
               1002, 1000, {ev_ping("p")}});
  r.push_back({"ping_126_bytes", S, ping(std::string(126, 'p')), 1002});
  r.push_back({"close_126_bytes", S, close_frame(close_body(1000, std::string(124, 'r'))), 1002});
  r.push_back({"pong_extended_length_short", S, frame({0xA, "abc", true, true, 0, 126, 3}), 1002});
  r.push_back({"ping_fragmented", S, frame({0x9, "p", false}), 1002});
  r.push_back({"close_fragmented", S, frame({0x8, close_body(1000), false}), 1002});
  r.push_back({"rsv1_data", S, frame({0x2, "x", true, true, 4}), 1002});
  r.push_back({"rsv2_data", S, frame({0x1, "x", true, true, 2}), 1002});
  r.push_back({"rsv3_data", S, frame({0x2, "x", true, true, 1}), 1002});
  r.push_back({"rsv1_ping", S, frame({0x9, "x", true, true, 4}), 1002});
  r.push_back({"rsv_on_continuation", S, cat({bin("a", false), frame({0x0, "b", true, true, 4})}), 1002});
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    r.push_back({"unknown_opcode_" + std::to_string(op), S, frame({op, "", true, true}), 1002});
  }
  r.push_back({"non_minimal_16bit_length", S, frame({0x2, "abc", true, true, 0, 126}), 1002});
  r.push_back({"non_minimal_64bit_length", S, frame({0x2, "abc", true, true, 0, 127}), 1002});
  r.push_back({"length_msb_set", S, frame({0x2, "", true, true, 0, 127, 1ull << 63}), 1002});
  r.push_back({"text_invalid_utf8", S, txt("ab\xC0\x80"), 1007});
  r.push_back({"text_surrogate", S, txt("\xED\xA0\x80"), 1007});
  r.push_back({"text_above_10ffff", S, txt("\xF4\x90\x80\x80"), 1007});
  r.push_back({"text_truncated_at_end", S, txt("ab\xE2\x82"), 1007});
  r.push_back({"fragmented_text_invalid_in_second", S, cat({txt("ok", false), cont("\xFF", true)}), 1007});
  r.push_back({"fragmented_text_truncated_at_end", S, cat({txt("ok", false), cont("\xC3", true)}), 1007});
  r.push_back({"text_invalid_then_more", S, cat({txt("\xC3\x28"), bin("never")}), 1007});
  r.push_back({"too_big_single_frame", S, bin(std::string(1001, 'b')), 1009});
  r.push_back({"too_big_fragmented", S, cat({bin(std::string(600, 'b'), false), cont(std::string(401, 'c'))}), 1009});
  r.push_back({"too_big_text_with_bad_utf8", S, txt(std::string(1001, '\xFF')), 1009});
  r.push_back({"close_one_byte", S, close_frame("\x03"), 1002});
  r.push_back({"close_reason_invalid_utf8", S, close_frame(close_body(1000, "bye\xC0")), 1007});
  r.push_back({"close_reason_truncated_utf8", S, close_frame(close_body(1000, "\xE2\x82")), 1007});
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    r.push_back({"close_code_" + std::to_string(code), S, close_frame(close_body(code)), 1002});
  }
  r.push_back({"client_continuation_without_start", C, cont("x", true, false), 1002});
  r.push_back({"client_rsv", C, frame({0x2, "x", true, false, 4}), 1002});
  r.push_back({"client_bad_utf8", C, txt("\xED\xBF\xBF", true, false), 1007});
  r.push_back({"client_too_big", C, bin(std::string(1001, 'x'), true, false), 1009});
  return r;
}

void PrintTo(const Rule& r, std::ostream* os) { *os << r.name; }

class SessionRule : public ::testing::TestWithParam<Rule> {};

TEST_P(SessionRule, FailsWithExactCodeHoweverSplit) {
  const Rule& rule = GetParam();
  std::vector<Ev> expected = rule.before;
  expected.push_back(ev_fail(rule.code));
  Options o;
  o.role = rule.role;
  o.max_message_size = rule.max_message_size;
  // Bytes after the failure are ignored.
  expect_events(cat({rule.wire, bin("after", true, rule.role == Role::server)}), o, expected);
}

INSTANTIATE_TEST_SUITE_P(Rules, SessionRule, ::testing::ValuesIn(rules()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------- valid conversations --

struct Conversation {
  const char* name;
  Role role;
  Bytes wire;
  std::vector<Ev> events;
  std::size_t max_message_size = 1 << 20;
  bool start_close = false;
};

std::vector<Conversation> conversations() {
  std::vector<Conversation> c;
  const auto S = Role::server;
  const std::string big(70000, 'B');  // past the 64 KiB keep threshold
  std::string max_text;
  for (int i = 0; i < 1000; ++i) max_text += "\xC3\xA9";  // 2000 bytes
  // "wörld": ö is C3 B6, split between fragments.
  c.push_back({"fragmented_text_with_interleaved_control", S,
               cat({txt("Hel", false), ping("p1"), cont("lo, w\xC3", false), pong(""),
                    ping(std::string(125, 'x')), cont("\xB6rld"), close_frame(close_body(1000, "bye"))}),
               {ev_ping("p1"), ev_pong(""), ev_ping(std::string(125, 'x')),
                msg(Opcode::text, "Hello, w\xC3\xB6rld"), ev_close(1000, "bye", true)}});
  c.push_back({"empty_messages_and_zero_length_frames", S,
               cat({txt(""), bin(""), txt("", false), cont("", false), cont(""), bin("ab", false),
                    cont("", false), cont("cd"), ping(""), close_frame("")}),
               {msg(Opcode::text, ""), msg(Opcode::binary, ""), msg(Opcode::text, ""),
                msg(Opcode::binary, "abcd"), ev_ping(""), ev_close(1005, "", true)}});
  c.push_back({"max_size_messages", S,
               cat({txt(max_text), bin(std::string(1000, 'a'), false), cont(std::string(1000, 'b')),
                    close_frame(close_body(1001))}),
               {msg(Opcode::text, max_text), msg(Opcode::binary, std::string(1000, 'a') + std::string(1000, 'b')),
                ev_close(1001, "", true)},
               2000});
  c.push_back({"large_messages_past_keep_threshold", S,
               cat({bin(big), txt(big.substr(0, 30000), false), cont(big.substr(0, 40000)), bin("small")}),
               {msg(Opcode::binary, big), msg(Opcode::text, big.substr(0, 30000) + big.substr(0, 40000)),
                msg(Opcode::binary, "small")}});
  c.push_back({"registered_close_codes_1012_to_1014", S, close_frame(close_body(1014, "x")),
               {ev_close(1014, "x", true)}});
  c.push_back({"close_code_4999_with_utf8_reason", S,
               close_frame(close_body(4999, "\xF0\x9F\x91\x8B " + std::string(100, 'r'))),
               {ev_close(4999, "\xF0\x9F\x91\x8B " + std::string(100, 'r'), true)}});
  c.push_back({"close_after_start_close_needs_no_reply", S,
               cat({bin("late data"), close_frame(close_body(1000)), bin("ignored")}),
               {msg(Opcode::binary, "late data"), ev_close(1000, "", false)}, 1 << 20, true});
  c.push_back({"client_role_unmasked_frames", Role::client,
               cat({txt("hi", false, false), ping("x", false), cont(" there", true, false),
                    bin(std::string(300, 'z'), true, false), close_frame(close_body(3000, "done"), false)}),
               {ev_ping("x"), msg(Opcode::text, "hi there"), msg(Opcode::binary, std::string(300, 'z')),
                ev_close(3000, "done", true)}});
  c.push_back({"bytes_after_close_ignored", S,
               cat({close_frame(close_body(1000)), bytes("\xFF\xFF garbage")}),
               {ev_close(1000, "", true)}});
  return c;
}

void PrintTo(const Conversation& c, std::ostream* os) { *os << c.name; }

class SessionConversation : public ::testing::TestWithParam<Conversation> {};

TEST_P(SessionConversation, SameEventsHoweverSplit) {
  const Conversation& c = GetParam();
  Options o;
  o.role = c.role;
  o.max_message_size = c.max_message_size;
  o.start_close = c.start_close;
  expect_events(c.wire, o, c.events);
}

INSTANTIATE_TEST_SUITE_P(Valid, SessionConversation, ::testing::ValuesIn(conversations()),
                         [](const auto& info) { return std::string(info.param.name); });

// ------------------------------------------------------------- details --

// The native decoder hands out spans of the caller's buffer and honours
// hold_limit; the wslay one copies, so these tests are for native framing.
constexpr bool native_framing = config::framing == config::Framing::native;

TEST(Session, WholeFrameIsZeroCopyAndPartialIsHeldWithinHoldLimit) {
  if (!native_framing) GTEST_SKIP() << "zero-copy needs framing=native";
  Session s{Role::server};
  Bytes wire = cat({bin("hello"), txt("world")});
  const std::size_t first_len = bin("hello").size();
  // Only part of the first frame: held (nothing consumed) under hold_limit.
  SessionEvent ev = s.feed(std::span<std::byte>(wire).first(4), 4096);
  EXPECT_EQ(ev.kind, SessionEventKind::need_more);
  EXPECT_EQ(ev.consumed, 0u);
  ev = s.feed(wire, 4096);
  ASSERT_EQ(ev.kind, SessionEventKind::message);
  EXPECT_TRUE(ev.zero_copy);
  EXPECT_EQ(ev.payload.data(), wire.data() + first_len - 5);
  EXPECT_EQ(text(ev.payload), "hello");
  EXPECT_EQ(ev.consumed, first_len);
  ev = s.feed(std::span<std::byte>(wire).subspan(first_len), 4096);
  ASSERT_EQ(ev.kind, SessionEventKind::message);
  EXPECT_EQ(ev.opcode, Opcode::text);
  EXPECT_TRUE(ev.zero_copy);
  EXPECT_EQ(text(ev.payload), "world");
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST(Session, FrameOverHoldLimitStreamsIntoAssembly) {
  if (!native_framing) GTEST_SKIP() << "wslay consumes what it is given";
  Session s{Role::server};
  Bytes wire = bin(std::string(200, 'q'));
  SessionEvent ev = s.feed(std::span<std::byte>(wire).first(100), 64);
  EXPECT_EQ(ev.kind, SessionEventKind::need_more);
  EXPECT_EQ(ev.consumed, 100u);
  EXPECT_EQ(s.buffered_bytes(), 100u - 8u);  // 8 header bytes
  ev = s.feed(std::span<std::byte>(wire).subspan(100), 64);
  ASSERT_EQ(ev.kind, SessionEventKind::message);
  EXPECT_FALSE(ev.zero_copy);
  EXPECT_EQ(text(ev.payload), std::string(200, 'q'));
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST(Session, PartialHeaderIsKeptNotConsumed) {
  if (!native_framing) GTEST_SKIP() << "wslay consumes what it is given";
  Session s{Role::server};
  Bytes wire = bin(std::string(300, 'q'));  // 2 + 2 + 4 header bytes
  SessionEvent ev = s.feed(std::span<std::byte>(wire).first(5), 0);
  EXPECT_EQ(ev.kind, SessionEventKind::need_more);
  EXPECT_EQ(ev.consumed, 0u);
}

TEST(Session, ControlFrameSplitAcrossReadsIsDeliveredWhole) {
  if (!native_framing) GTEST_SKIP() << "wslay assembles frames itself";
  Session s{Role::server};
  Bytes wire = ping("ping payload");
  SessionEvent ev = s.feed(std::span<std::byte>(wire).first(9), 0);
  EXPECT_EQ(ev.kind, SessionEventKind::need_more);
  EXPECT_EQ(ev.consumed, 9u);
  ev = s.feed(std::span<std::byte>(wire).subspan(9), 0);
  ASSERT_EQ(ev.kind, SessionEventKind::ping);
  EXPECT_FALSE(ev.zero_copy);
  EXPECT_EQ(text(ev.payload), "ping payload");
  EXPECT_EQ(ev.consumed, wire.size() - 9);
}

TEST(Session, InvalidUtf8FailsBeforeTheRestOfTheMessageArrives) {
  for (bool fragmented : {false, true}) {
    Session s{Role::server};
    std::string payload(100000, 'a');
    payload[10] = '\xC0';
    Bytes wire = fragmented ? txt(payload, false) : txt(payload);
    SessionEvent ev = s.feed(std::span<std::byte>(wire).first(40), 0);
    EXPECT_EQ(ev.kind, SessionEventKind::fail) << fragmented;
    EXPECT_EQ(ev.code, 1007);
  }
  // Also when the bad byte is in a later fragment's first piece.
  Session s{Role::server};
  Bytes wire = cat({txt("good", false), cont(std::string(1000, '\x80'))});
  SessionEvent ev = s.feed(std::span<std::byte>(wire).first(wire.size() - 990), 0);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, 1007);
}

TEST(Session, TooBigIsDecidedAtTheHeader) {
  // The native decoder hands out a frame's first chunk with its first
  // payload byte; the verdict comes then, before the rest is taken in.
  Session s{Role::server, 1000};
  Bytes wire = bin(std::string(5000, 'x'));
  SessionEvent ev = s.feed(std::span<std::byte>(wire).first(9), 0);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, 1009);
  // Even with a hold limit larger than the frame: the session caps it.
  Session h{Role::server, 1000};
  ev = h.feed(std::span<std::byte>(wire).first(9), 1 << 20);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, 1009);
  // And for a frame declaring 2^62 bytes.
  Session g{Role::server};
  Bytes huge = cat({frame({0x2, "", true, true, 0, 127, 1ull << 62}), bytes("x")});
  ev = g.feed(huge, 0);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.code, 1009);
}

TEST(Session, EverythingAfterCloseOrFailIsIgnored) {
  Session s{Role::server};
  Bytes wire = cat({close_frame(close_body(1000, "bye")), bin("x")});
  SessionEvent ev = s.feed(wire, 0);
  ASSERT_EQ(ev.kind, SessionEventKind::close);
  EXPECT_EQ(ev.code, 1000);
  EXPECT_EQ(ev.reason, "bye");
  EXPECT_TRUE(ev.reply);
  EXPECT_EQ(s.state(), SessionState::closed);
  EXPECT_FALSE(s.start_close());
  ev = s.feed(std::span<std::byte>(wire).subspan(ev.consumed), 0);
  EXPECT_EQ(ev.kind, SessionEventKind::need_more);
  EXPECT_EQ(ev.consumed, bin("x").size());

  Session f{Role::server};
  Bytes bad = cat({bin("x", true, false), bin("y")});
  ev = f.feed(bad, 0);
  EXPECT_EQ(ev.kind, SessionEventKind::fail);
  EXPECT_EQ(ev.consumed, bad.size());
  Bytes more = bin("z");
  ev = f.feed(more, 0);
  EXPECT_EQ(ev.kind, SessionEventKind::need_more);
  EXPECT_EQ(ev.consumed, more.size());
}

TEST(Session, StartClose) {
  Session s{Role::client};
  EXPECT_EQ(s.state(), SessionState::open);
  EXPECT_TRUE(s.start_close());
  EXPECT_EQ(s.state(), SessionState::closing);
  EXPECT_FALSE(s.start_close());
  Bytes wire = close_frame(close_body(1000), false);
  SessionEvent ev = s.feed(wire, 0);
  EXPECT_EQ(ev.kind, SessionEventKind::close);
  EXPECT_FALSE(ev.reply);
  EXPECT_EQ(s.state(), SessionState::closed);
}

TEST(Session, FastPathDoesNotAllocate) {
  if (!ringlink::test::kAllocationsCounted) GTEST_SKIP() << "under a sanitizer the runtime owns operator new; counted in the normal builds";
  Session s{Role::server};
  Bytes wire;
  for (int i = 0; i < 200; ++i) {
    const Bytes f = (i % 3 == 0) ? txt("hello \xE2\x82\xAC") : (i % 3 == 1) ? bin(std::string(300, 'b')) : ping("p");
    wire.insert(wire.end(), f.begin(), f.end());
  }
  // A decoder may set itself up on first use (wslay does): not per frame.
  Bytes warm_up = bin("w");
  ASSERT_EQ(s.feed(warm_up, 4096).kind, SessionEventKind::message);
  const long before = total_allocations.load();
  std::span<std::byte> in(wire);
  int events = 0;
  for (;;) {
    SessionEvent ev = s.feed(in, 4096);
    in = in.subspan(ev.consumed);
    if (ev.kind == SessionEventKind::need_more) break;
    ++events;
  }
  const long after = total_allocations.load();
  EXPECT_EQ(events, 200);
  EXPECT_EQ(after - before, 0);
}

TEST(Session, AssemblyBufferIsBoundedAndReleased) {
  if (!ringlink::test::kAllocationsCounted) GTEST_SKIP() << "under a sanitizer the runtime owns operator new; counted in the normal builds";
  // Every input is built first, so that only the session allocates below.
  const std::string big(100000, 'L');
  Bytes small = cat({bin("abc", false), cont("def")});
  Bytes large = cat({bin(big.substr(0, 50000), false), cont(big.substr(50000))});
  Bytes part = bin("xyz", false);
  Bytes rest = cont("!");
  Bytes frag = bin("abc", false);
  Bytes bad = bin("x");
  Bytes warm_up = bin("w");
  const long base_before = live_allocations.load();
  {
    Session s{Role::server, 1 << 20};
    // A decoder may set itself up on first use (wslay does): not counted.
    ASSERT_EQ(s.feed(warm_up, 0).kind, SessionEventKind::message);
    const long base = live_allocations.load();
    // A small message assembled from fragments: the buffer is kept.
    SessionEvent ev = s.feed(small, 0);
    ASSERT_EQ(ev.kind, SessionEventKind::message);
    EXPECT_TRUE(std::equal(ev.payload.begin(), ev.payload.end(), bytes("abcdef").begin()));
    EXPECT_EQ(s.buffered_bytes(), 0u);
    EXPECT_EQ(live_allocations.load() - base, 2);  // Assembly + its data
    s.release_buffers();
    EXPECT_EQ(live_allocations.load() - base, 0);

    // A large one: its buffer goes at the next feed() by itself.
    ev = s.feed(large, 0);
    ASSERT_EQ(ev.kind, SessionEventKind::message);
    EXPECT_EQ(ev.payload.size(), big.size());
    EXPECT_EQ(live_allocations.load() - base, 2);
    ev = s.feed({}, 0);
    EXPECT_EQ(ev.kind, SessionEventKind::need_more);
    EXPECT_EQ(live_allocations.load() - base, 1);  // only the small Assembly struct

    // release_buffers keeps what a message in progress needs.
    ev = s.feed(part, 0);
    EXPECT_EQ(ev.kind, SessionEventKind::need_more);
    EXPECT_EQ(s.buffered_bytes(), 3u);
    s.release_buffers();
    EXPECT_EQ(s.buffered_bytes(), 3u);
    ev = s.feed(rest, 0);
    ASSERT_EQ(ev.kind, SessionEventKind::message);
    EXPECT_EQ(ev.payload.size(), 4u);
    s.release_buffers();
    EXPECT_EQ(live_allocations.load() - base, 0);

    // A failure frees everything at once.
    s.feed(frag, 0);
    EXPECT_EQ(live_allocations.load() - base, 2);
    ev = s.feed(bad, 0);
    EXPECT_EQ(ev.kind, SessionEventKind::fail);
    EXPECT_EQ(live_allocations.load() - base, 0);
  }
  EXPECT_EQ(live_allocations.load() - base_before, 0);
}

TEST(Session, MoveKeepsState) {
  Session a{Role::server};
  Bytes first = txt("ab", false);
  EXPECT_EQ(a.feed(first, 0).kind, SessionEventKind::need_more);
  Session b = std::move(a);
  Bytes second = cont("cd");
  SessionEvent ev = b.feed(second, 0);
  ASSERT_EQ(ev.kind, SessionEventKind::message);
  EXPECT_EQ(text(ev.payload), "abcd");
}

TEST(Session, SizeIsSmall) {
  std::printf("sizeof(Session) = %zu, sizeof(FrameDecoder) = %zu\n", sizeof(Session),
              sizeof(FrameDecoder));
  // The session's own state beyond its decoder.
  EXPECT_LE(sizeof(Session) - sizeof(FrameDecoder), 24u);
}

// ------------------------------------------------------- close payloads --

TEST(CloseCodes, Sendable) {
  struct Case { std::uint16_t code; bool sendable; };
  const Case cases[] = {{0, false},    {999, false},  {1000, true},  {1001, true},  {1002, true},
                        {1003, true},  {1004, false}, {1005, false}, {1006, false}, {1007, true},
                        {1011, true},  {1012, true},  {1013, true},  {1014, true},  {1015, false},
                        {1016, false}, {2999, false}, {3000, true},  {4999, true},  {5000, false},
                        {65535, false}};
  for (const auto& c : cases) EXPECT_EQ(close_code_sendable(c.code), c.sendable) << c.code;
}

TEST(CloseCodes, WriteClosePayload) {
  std::array<std::byte, max_control_payload> out{};
  EXPECT_EQ(write_close_payload(out, close_code::no_status, "ignored"), 0u);
  EXPECT_EQ(write_close_payload(out, close_code::abnormal, ""), 0u);
  ASSERT_EQ(write_close_payload(out, 1000, "bye"), 5u);
  EXPECT_EQ(text(std::span<const std::byte>(out).first(5)), std::string("\x03\xE8" "bye", 5));
  ASSERT_EQ(write_close_payload(out, 4001, ""), 2u);
  EXPECT_EQ(text(std::span<const std::byte>(out).first(2)), "\x0F\xA1");
  // Exactly 123 bytes of reason fit.
  EXPECT_EQ(write_close_payload(out, 1000, std::string(123, 'r')), 125u);
  EXPECT_EQ(write_close_payload(out, 1000, std::string(200, 'r')), 125u);
  // A cut never splits a code point: 2-byte "é" x 100 -> 122 bytes.
  std::string e;
  for (int i = 0; i < 100; ++i) e += "\xC3\xA9";
  const std::size_t n = write_close_payload(out, 1000, e);
  EXPECT_EQ(n, 2u + 122u);
  EXPECT_TRUE(utf8_valid(std::span<const std::byte>(out).subspan(2, n - 2)));
  // 4-byte sequences: 30 x 4 = 120 bytes fit, the 31st would straddle.
  std::string g;
  for (int i = 0; i < 40; ++i) g += "\xF0\x9F\x98\x80";
  EXPECT_EQ(write_close_payload(out, 1000, "abc" + g), 2u + 3u + 120u);
}

TEST(CloseCodes, PayloadRoundTripsThroughSession) {
  std::array<std::byte, max_control_payload> body{};
  const std::size_t n = write_close_payload(body, 1013, "try later");
  Session s{Role::client};
  Bytes wire = close_frame(std::string(reinterpret_cast<const char*>(body.data()), n), false);
  SessionEvent ev = s.feed(wire, 0);
  ASSERT_EQ(ev.kind, SessionEventKind::close);
  EXPECT_EQ(ev.code, 1013);
  EXPECT_EQ(ev.reason, "try later");
}

}  // namespace
}  // namespace ringlink
