// How a server link answers what its peer sends: every length form echoed,
// fragments reassembled, protocol violations closed with their code and
// counted, and a handler that throws closing only its own link.
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <vector>

#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

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
