// Sections 1-5 and 7: framing, ping/pong, reserved bits, opcodes,
// fragmentation, close. Modelled on the Autobahn|Testsuite case descriptions;
// the expectations follow RFC 6455.
#include <cstdio>
#include <string>

#include "tests/conformance/cases.hpp"

namespace ringlink::conformance {

using wire::bytes;
using wire::close_payload;
using wire::concat;
using wire::frame;
using wire::WireConn;

namespace {

constexpr std::uint8_t CONT = 0x0, TEXT = 0x1, BIN = 0x2, CLOSE = 0x8, PING = 0x9, PONG = 0xA;

// How the client writes a sequence of frames.
enum class Chop : std::uint8_t { whole, per_frame, per_byte };

void send_frames(WireConn& c, const std::vector<Bytes>& frames, Chop chop) {
  if (chop == Chop::whole) {
    Bytes all;
    for (const auto& f : frames) all.insert(all.end(), f.begin(), f.end());
    c.write(all);
    return;
  }
  for (const auto& f : frames) {
    if (chop == Chop::per_frame) {
      if (!c.write(f)) return;
    } else if (!c.write_chopped(f, 1)) {
      return;
    }
  }
}

Case simple(std::string id, std::string title, std::vector<Bytes> frames, Chop chop, Expect e) {
  return {std::move(id), std::move(title), [frames = std::move(frames), chop, e = std::move(e)](std::uint16_t port) {
            return run_simple(port, [&](WireConn& c) { send_frames(c, frames, chop); }, e);
          }};
}

Expect echo(std::vector<Want> events) { return Expect{std::move(events), End::clean, {}, {}, false, hang_ms}; }
Expect fails(std::uint16_t code, std::vector<Want> before = {}, bool optional = true) {
  return Expect{std::move(before), End::fail, {code}, {}, optional, hang_ms};
}
Expect replies(std::vector<std::uint16_t> codes, std::vector<Want> before = {}, std::vector<std::uint16_t> loose = {}) {
  return Expect{std::move(before), End::close_reply, std::move(codes), std::move(loose), false, hang_ms};
}

const char* chop_name(Chop c) { return c == Chop::whole ? "" : c == Chop::per_frame ? ", frame-wise writes" : ", octet-wise writes"; }

}  // namespace

std::vector<Case> framing_cases() {
  std::vector<Case> out;
  const std::size_t lengths[] = {0, 125, 126, 127, 128, 65535, 65536};
  for (int kind = 1; kind <= 2; ++kind) {
    const std::uint8_t op = kind == 1 ? TEXT : BIN;
    const char* name = kind == 1 ? "text" : "binary";
    int j = 1;
    for (std::size_t n : lengths) {
      const Bytes p = kind == 1 ? text_payload(n) : binary_payload(n, static_cast<std::uint32_t>(n));
      out.push_back(simple("1." + std::to_string(kind) + "." + std::to_string(j++),
                           std::string(name) + " message of " + std::to_string(n) + " bytes", {frame(op, p)}, Chop::whole,
                           echo({{op, p}})));
    }
    const Bytes big = kind == 1 ? text_payload(65536) : binary_payload(65536, 7);
    const Bytes f = frame(op, big);
    out.push_back({"1." + std::to_string(kind) + ".8", std::string(name) + " 65536 bytes in 997-byte writes",
                   [f, op, big](std::uint16_t port) {
                     return run_simple(port, [&](WireConn& c) { c.write_chopped(f, 997); }, echo({{op, big}}));
                   }});
    const Bytes small = kind == 1 ? text_payload(128) : binary_payload(128, 8);
    out.push_back(simple("1." + std::to_string(kind) + ".9", std::string(name) + " 128 bytes in 1-byte writes",
                         {frame(op, small)}, Chop::per_byte, echo({{op, small}})));
  }
  return out;
}

std::vector<Case> ping_cases() {
  std::vector<Case> out;
  const Bytes hello = bytes("Hello, world!");
  const Bytes binary = hex("00fffefdfcfb00ff");
  const Bytes p125(125, 0xFE), p126(126, 0xFE);
  out.push_back(simple("2.1", "ping without payload", {frame(PING, {})}, Chop::whole, echo({{PONG, {}}})));
  out.push_back(simple("2.2", "ping with a small text payload", {frame(PING, hello)}, Chop::whole, echo({{PONG, hello}})));
  out.push_back(simple("2.3", "ping with a small binary payload", {frame(PING, binary)}, Chop::whole, echo({{PONG, binary}})));
  out.push_back(simple("2.4", "ping with a 125-byte payload", {frame(PING, p125)}, Chop::whole, echo({{PONG, p125}})));
  out.push_back(simple("2.5", "ping with a 126-byte payload", {frame(PING, p126)}, Chop::whole, fails(1002)));
  out.push_back(simple("2.6", "ping with a 125-byte payload, octet-wise writes", {frame(PING, p125)}, Chop::per_byte,
                       echo({{PONG, p125}})));
  out.push_back(simple("2.7", "unsolicited pong without payload", {frame(PONG, {})}, Chop::whole, echo({})));
  out.push_back(simple("2.8", "unsolicited pong with payload", {frame(PONG, bytes("unsolicited pong payload"))},
                       Chop::whole, echo({})));
  out.push_back(simple("2.9", "unsolicited pong, then ping",
                       {frame(PONG, bytes("unsolicited pong payload")), frame(PING, bytes("ping payload"))}, Chop::whole,
                       echo({{PONG, bytes("ping payload")}})));
  for (int variant = 0; variant < 2; ++variant) {
    std::vector<Bytes> pings;
    std::vector<Want> pongs;
    for (int i = 0; i < 10; ++i) {
      const Bytes p = bytes("payload-" + std::to_string(i));
      pings.push_back(frame(PING, p));
      pongs.push_back({PONG, p});
    }
    out.push_back(simple(variant == 0 ? "2.10" : "2.11",
                         variant == 0 ? "10 pings in a row" : "10 pings in a row, octet-wise writes", pings,
                         variant == 0 ? Chop::whole : Chop::per_byte, echo(pongs)));
  }
  out.push_back(simple("2.12", "ping chopped into 1-byte writes between two messages",
                       {frame(TEXT, bytes("a")), frame(PING, hello), frame(TEXT, bytes("b"))}, Chop::per_byte,
                       echo({{TEXT, bytes("a")}, {PONG, hello}, {TEXT, bytes("b")}})));
  return out;
}

std::vector<Case> reserved_bits_cases() {
  std::vector<Case> out;
  const Bytes hello = bytes("Hello, world!");
  out.push_back(simple("3.1", "text with RSV3 set", {frame(TEXT, hello, true, true, 1)}, Chop::whole, fails(1002)));
  const Chop chops[] = {Chop::whole, Chop::per_frame, Chop::per_byte};
  for (int i = 0; i < 3; ++i) {
    const std::uint8_t rsv = static_cast<std::uint8_t>(2 + i);
    out.push_back(simple("3." + std::to_string(2 + i),
                         "text, then text with RSV=" + std::to_string(rsv) + ", then ping" + chop_name(chops[i]),
                         {frame(TEXT, hello), frame(TEXT, hello, true, true, rsv), frame(PING, {})}, chops[i],
                         fails(1002, {{TEXT, hello}})));
  }
  out.push_back(simple("3.5", "binary with RSV=5", {frame(BIN, hex("00ff"), true, true, 5)}, Chop::whole, fails(1002)));
  out.push_back(simple("3.6", "ping with RSV=6", {frame(PING, hello, true, true, 6)}, Chop::whole, fails(1002)));
  out.push_back(simple("3.7", "close with RSV=7", {frame(CLOSE, close_payload(1000), true, true, 7)}, Chop::whole,
                       fails(1002)));
  // RSV1 alone (no extension negotiated), RSV2 and RSV3 on text, ping and close.
  int j = 8;
  for (std::uint8_t rsv : {4, 2, 1}) {
    for (std::uint8_t op : {TEXT, PING, CLOSE}) {
      const Bytes p = op == CLOSE ? close_payload(1000) : hello;
      out.push_back(simple("3." + std::to_string(j++),
                           std::string(op == TEXT ? "text" : op == PING ? "ping" : "close") + " with RSV bits " +
                               std::to_string(rsv) + " after a valid message",
                           {frame(TEXT, bytes("ok")), frame(op, p, true, true, rsv), frame(PING, bytes("late"))},
                           Chop::whole, fails(1002, {{TEXT, bytes("ok")}})));
    }
  }
  return out;
}

std::vector<Case> opcode_cases() {
  std::vector<Case> out;
  for (int group = 1; group <= 2; ++group) {
    const std::uint8_t first = group == 1 ? 3 : 0xB;
    for (int i = 0; i < 5; ++i) {
      const std::uint8_t op = static_cast<std::uint8_t>(first + i);
      const Bytes p = i == 0 ? Bytes{} : bytes("reserved opcode payload");
      char name[8];
      std::snprintf(name, sizeof name, "0x%X", op);
      out.push_back(simple("4." + std::to_string(group) + "." + std::to_string(i + 1),
                           std::string("frame with reserved opcode ") + name, {frame(op, p)}, Chop::whole, fails(1002)));
    }
    for (int i = 0; i < 5; ++i) {
      const std::uint8_t op = static_cast<std::uint8_t>(first + i);
      char name[8];
      std::snprintf(name, sizeof name, "0x%X", op);
      out.push_back(simple("4." + std::to_string(group) + "." + std::to_string(i + 6),
                           std::string("text, reserved opcode ") + name + ", then ping",
                           {frame(TEXT, bytes("Hello, world!")), frame(op, bytes("payload")), frame(PING, {})},
                           i % 2 == 0 ? Chop::whole : Chop::per_frame, fails(1002, {{TEXT, bytes("Hello, world!")}})));
    }
  }
  return out;
}

std::vector<Case> fragmentation_cases() {
  std::vector<Case> out;
  const Bytes f1 = bytes("fragment1"), f2 = bytes("fragment2"), f3 = bytes("fragment3"), f4 = bytes("fragment4");
  const Bytes f12 = concat({f1, f2});
  const Bytes pingp = bytes("ping payload");
  out.push_back(simple("5.1", "ping in 2 fragments", {frame(PING, f1, false), frame(CONT, f2)}, Chop::whole, fails(1002)));
  out.push_back(simple("5.2", "pong in 2 fragments", {frame(PONG, f1, false), frame(CONT, f2)}, Chop::whole, fails(1002)));
  const Chop chops[] = {Chop::whole, Chop::per_frame, Chop::per_byte};
  for (int i = 0; i < 3; ++i)
    out.push_back(simple("5." + std::to_string(3 + i), std::string("text in 2 fragments") + chop_name(chops[i]),
                         {frame(TEXT, f1, false), frame(CONT, f2)}, chops[i], echo({{TEXT, f12}})));
  for (int i = 0; i < 3; ++i)
    out.push_back(simple("5." + std::to_string(6 + i), std::string("text in 2 fragments, ping between") + chop_name(chops[i]),
                         {frame(TEXT, f1, false), frame(PING, pingp), frame(CONT, f2)}, chops[i],
                         echo({{PONG, pingp}, {TEXT, f12}})));
  for (int i = 0; i < 3; ++i)
    out.push_back(simple("5." + std::to_string(9 + i),
                         std::string("continuation (FIN) without a start, then text") + chop_name(chops[i]),
                         {frame(CONT, bytes("non-continuation payload")), frame(TEXT, bytes("Hello, world!"))}, chops[i],
                         fails(1002)));
  for (int i = 0; i < 3; ++i)
    out.push_back(simple("5." + std::to_string(12 + i),
                         std::string("continuation (no FIN) without a start, then text") + chop_name(chops[i]),
                         {frame(CONT, bytes("non-continuation payload"), false), frame(TEXT, bytes("Hello, world!"))},
                         chops[i], fails(1002)));
  out.push_back(simple("5.15", "text in 2 fragments, then a continuation without a start, then text",
                       {frame(TEXT, f1, false), frame(CONT, f2), frame(CONT, f3, false), frame(TEXT, f4)}, Chop::whole,
                       fails(1002, {{TEXT, f12}})));
  out.push_back(simple("5.16", "continuation (no FIN), text (no FIN), continuation (FIN), twice",
                       {frame(CONT, f1, false), frame(TEXT, f2, false), frame(CONT, f3), frame(CONT, f1, false),
                        frame(TEXT, f2, false), frame(CONT, f3)},
                       Chop::whole, fails(1002)));
  out.push_back(simple("5.17", "continuation (FIN), text (no FIN), continuation (FIN), twice",
                       {frame(CONT, f1), frame(TEXT, f2, false), frame(CONT, f3), frame(CONT, f1), frame(TEXT, f2, false),
                        frame(CONT, f3)},
                       Chop::whole, fails(1002)));
  out.push_back(simple("5.18", "text (no FIN) followed by a new text frame", {frame(TEXT, f1, false), frame(TEXT, f2)},
                       Chop::whole, fails(1002)));
  for (int i = 0; i < 2; ++i) {
    const std::vector<Bytes> frames = {frame(TEXT, bytes("fragment1"), false), frame(CONT, bytes("fragment2"), false),
                                       frame(PING, bytes("pongme 1!")),          frame(CONT, bytes("fragment3"), false),
                                       frame(CONT, bytes("fragment4"), false),   frame(PING, bytes("pongme 2!")),
                                       frame(CONT, bytes("fragment5"))};
    out.push_back(simple(i == 0 ? "5.19" : "5.20",
                         std::string("text in 5 fragments, 2 pings between") + (i == 0 ? ", frame-wise writes" : ", octet-wise writes"),
                         frames, i == 0 ? Chop::per_frame : Chop::per_byte,
                         echo({{PONG, bytes("pongme 1!")},
                               {PONG, bytes("pongme 2!")},
                               {TEXT, bytes("fragment1fragment2fragment3fragment4fragment5")}})));
  }
  out.push_back(simple("5.21", "close in 2 fragments", {frame(CLOSE, close_payload(1000), false), frame(CONT, bytes("x"))},
                       Chop::whole, fails(1002)));
  {
    const Bytes msg = text_payload(64);
    std::vector<Bytes> frames;
    for (std::size_t i = 0; i < msg.size(); ++i)
      frames.push_back(frame(i == 0 ? TEXT : CONT, Bytes{msg[i]}, i + 1 == msg.size()));
    out.push_back(simple("5.22", "text of 64 bytes in 1-byte fragments (code points split)", frames, Chop::whole,
                         echo({{TEXT, msg}})));
    out.push_back(simple("5.23", "text of 64 bytes in 1-byte fragments, octet-wise writes", frames, Chop::per_byte,
                         echo({{TEXT, msg}})));
  }
  {
    const Bytes msg = binary_payload(100, 5);
    std::vector<Bytes> frames;
    for (std::size_t i = 0; i < msg.size(); ++i)
      frames.push_back(frame(i == 0 ? BIN : CONT, Bytes{msg[i]}, i + 1 == msg.size()));
    out.push_back(simple("5.24", "binary of 100 bytes in 1-byte fragments", frames, Chop::per_frame, echo({{BIN, msg}})));
  }
  out.push_back(simple("5.25", "binary fragments with ping and unsolicited pong between",
                       {frame(BIN, f1, false), frame(PING, pingp), frame(PONG, bytes("x")), frame(CONT, f2)}, Chop::whole,
                       echo({{PONG, pingp}, {BIN, f12}})));
  out.push_back(simple("5.26", "empty first and middle fragments",
                       {frame(TEXT, {}, false), frame(CONT, {}, false), frame(CONT, bytes("x"))}, Chop::whole,
                       echo({{TEXT, bytes("x")}})));
  out.push_back(simple("5.27", "binary (no FIN) followed by a text frame", {frame(BIN, f1, false), frame(TEXT, f2)},
                       Chop::per_frame, fails(1002)));
  return out;
}

std::vector<Case> close_cases() {
  std::vector<Case> out;
  const Bytes hello = bytes("Hello World!");
  const Bytes c1000 = close_payload(1000);
  out.push_back(simple("7.1.1", "text echo, then a clean close", {frame(TEXT, hello)}, Chop::whole, echo({{TEXT, hello}})));
  out.push_back(simple("7.1.2", "close, then a second close", {frame(CLOSE, c1000), frame(CLOSE, c1000)}, Chop::whole,
                       replies({1000})));
  out.push_back(simple("7.1.3", "close, then ping (ignored)", {frame(CLOSE, c1000), frame(PING, hello)}, Chop::whole,
                       replies({1000})));
  out.push_back(simple("7.1.4", "close, then text (ignored)", {frame(CLOSE, c1000), frame(TEXT, hello)}, Chop::whole,
                       replies({1000})));
  out.push_back(simple("7.1.5", "text fragment, close, then the last fragment",
                       {frame(TEXT, bytes("fragment1"), false), frame(CLOSE, c1000), frame(CONT, bytes("fragment2"))},
                       Chop::whole, replies({1000})));
  {
    const Bytes big = text_payload(256 * 1024);
    out.push_back(simple("7.1.6", "256 KiB text, close, then ping", {frame(TEXT, big), frame(CLOSE, c1000), frame(PING, hello)},
                         Chop::whole, replies({1000}, {{TEXT, big}})));
  }
  out.push_back(simple("7.3.1", "close without payload", {frame(CLOSE, {})}, Chop::whole, replies({1005, 1000})));
  out.push_back(simple("7.3.2", "close with a 1-byte payload", {frame(CLOSE, Bytes{0x03})}, Chop::whole, fails(1002)));
  out.push_back(simple("7.3.3", "close 1000 without reason", {frame(CLOSE, c1000)}, Chop::whole, replies({1000})));
  out.push_back(simple("7.3.4", "close 1000 with a reason", {frame(CLOSE, close_payload(1000, "Hello World!"))}, Chop::whole,
                       replies({1000})));
  out.push_back(simple("7.3.5", "close 1000 with a 123-byte reason", {frame(CLOSE, close_payload(1000, std::string(123, '*')))},
                       Chop::whole, replies({1000})));
  out.push_back(simple("7.3.6", "close 1000 with a 124-byte reason (payload 126)",
                       {frame(CLOSE, close_payload(1000, std::string(124, '*')))}, Chop::whole, fails(1002)));
  out.push_back(simple("7.3.7", "close with a 123-byte reason, octet-wise writes",
                       {frame(CLOSE, close_payload(1000, std::string(123, 'r')))}, Chop::per_byte, replies({1000})));
  {
    Bytes reason = hex("cebae1bdb9cf83cebcceb5eda080656469746564");
    Bytes p = close_payload(1000);
    p.insert(p.end(), reason.begin(), reason.end());
    out.push_back(simple("7.5.1", "close with an invalid UTF-8 reason", {frame(CLOSE, p)}, Chop::whole, fails(1007)));
    Bytes valid = close_payload(1000);
    const Bytes v = hex("cebae1bdb9cf83cebcceb5");
    valid.insert(valid.end(), v.begin(), v.end());
    out.push_back(simple("7.5.2", "close with a valid multi-byte UTF-8 reason", {frame(CLOSE, valid)}, Chop::whole,
                         replies({1000})));
  }
  int j = 1;
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999})
    out.push_back(simple("7.7." + std::to_string(j++), "close with valid code " + std::to_string(code),
                         {frame(CLOSE, close_payload(code))}, Chop::whole, replies({code}, {}, {1000})));
  j = 1;
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
    out.push_back(simple("7.9." + std::to_string(j++), "close with invalid code " + std::to_string(code),
                         {frame(CLOSE, close_payload(code))}, Chop::whole, fails(1002)));
  return out;
}

}  // namespace ringlink::conformance
