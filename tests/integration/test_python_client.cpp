// python3-websockets as the client, against an in-process ringlink echo
// server (2 reactors, port 0). The script decides pass/fail for what it
// sees on the wire; these tests add what the server's handler saw.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/echo_server.hpp"
#include "tests/integration/peer_process.hpp"
#include "tests/wait_until.hpp"

namespace {

using namespace std::chrono_literals;
using itest::EchoServer;

// Waits that include a close handshake the peer answers: only a hang
// reaches the deadline.
constexpr auto close_wait = ringlink::test::hang_deadline;

std::vector<std::string> client(const EchoServer& s, std::vector<std::string> args) {
  std::vector<std::string> argv{itest::python(), itest::peer_script("ws_client.py"), s.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

class PythonClient : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(echo.start(), 0); }
  void TearDown() override { EXPECT_EQ(echo.server().snapshot().handler_exceptions, 0u); }
  EchoServer echo;
};

// Proves: every size from 0 to 16 MiB (7/16/64-bit lengths) echoes byte-exact, text and binary.
TEST_F(PythonClient, EchoesEverySizeTextAndBinary) {
  EXPECT_EQ(itest::run_peer(client(echo, {"sizes"}), 50s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
}

// Proves: fragmented messages (empty fragments, a character split across fragments, a ping between) reassemble.
TEST_F(PythonClient, ReassemblesFragmentedMessages) {
  EXPECT_EQ(itest::run_peer(client(echo, {"fragments"}), 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
}

// Proves: pings of 0, 5 and 125 bytes get pongs with the same payload.
TEST_F(PythonClient, AnswersPingsWithTheirPayload) { EXPECT_EQ(itest::run_peer(client(echo, {"ping"}), 30s), ""); }

// Proves: a client's close code (1000, 4000 with a reason) is echoed and reported to on_close.
TEST_F(PythonClient, EchoesClientCloseCodes) {
  EXPECT_EQ(itest::run_peer(client(echo, {"close", "1000"}), 30s), "");
  EXPECT_EQ(itest::run_peer(client(echo, {"close", "4000", "python says bye"}), 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(2, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), (std::vector<std::uint16_t>{1000, 4000}));
}

// Proves: Link::close(4001, "bye") reaches the client with that code and reason.
TEST_F(PythonClient, ServerCloseCarriesCodeAndReason) {
  EXPECT_EQ(itest::run_peer(client(echo, {"server_close"}), 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{itest::server_close_code});
}

// Proves: invalid UTF-8 in text (in one frame, at the end, across fragments) closes with 1007.
TEST_F(PythonClient, InvalidUtf8ClosesWith1007) {
  EXPECT_EQ(itest::run_peer(client(echo, {"bad_utf8"}), 30s), "");
  constexpr std::size_t cases = 6;  // BAD_UTF8 in ws_client.py
  ASSERT_TRUE(echo.handler().wait_closes(cases, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>(cases, 1007));
  EXPECT_EQ(echo.server().snapshot().messages_in, 0u);
}

// Proves: 100 concurrent clients pipelining 100 messages each all get every echo, in order.
TEST_F(PythonClient, HundredConcurrentClients) {
  EXPECT_EQ(itest::run_peer(client(echo, {"concurrent", "100", "100"}), 50s), "");
  ASSERT_TRUE(echo.handler().wait_closes(100, close_wait));
  EXPECT_EQ(echo.handler().opens(), 100u);
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>(100, 1000));
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.messages_in, 100u * 100u);
  EXPECT_EQ(m.messages_out, 100u * 100u);
}

// Proves: a peer that reads its echoes slower than it sends (send queue full,
// backpressured, on_drain) loses no echo and sees none reordered.
TEST_F(PythonClient, FloodLosesNoEcho) {
  EXPECT_EQ(itest::run_peer(client(echo, {"flood", "200", "65536"}), 40s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.messages_in, 200u);
  EXPECT_EQ(m.messages_out, 200u);
}

// Proves: RFC 6455 violations (unmasked, reserved opcode/RSV, bad control
// frames, bad continuation, bad close payloads, > max_message_size) get the
// close code the RFC names (1002, 1007, 1009).
TEST_F(PythonClient, ProtocolViolationsCloseWithRfcCodes) {
  EXPECT_EQ(itest::run_peer(client(echo, {"protocol_errors"}), 40s), "");
  constexpr std::size_t cases = 16;  // PROTOCOL_ERRORS + too_big in ws_client.py
  ASSERT_TRUE(echo.handler().wait_closes(cases, close_wait));
  std::vector<std::uint16_t> want(14, 1002);
  want.push_back(1007);
  want.push_back(1009);
  EXPECT_EQ(echo.handler().close_codes(), want);
  EXPECT_EQ(echo.server().snapshot().messages_in, 0u);
}

// Proves: bytes and the peer's FIN that arrive in one epoll edge are both
// seen. The peer sends the upgrade, then a message / a close / half a frame,
// then FIN, all at once; the server must answer, close its side and report
// on_close (1006 / 1000 / 1006). Guards against a backend that stops at the
// short read of the data and never reads the EOF, which brings no new edge:
// such a link would end only at close_timeout, here longer than the hang
// deadline, so "promptly" means "without waiting out close_timeout", not a
// speed.
TEST_F(PythonClient, PeerFinIsSeenPromptly) {
  ringlink::ServerConfig cfg;
  cfg.port = 0;
  cfg.reactors = 2;
  cfg.close_timeout_ms = 2 * static_cast<std::uint32_t>(std::chrono::milliseconds(close_wait).count());
  EchoServer patient(cfg);
  ASSERT_EQ(patient.start(), 0);
  EXPECT_EQ(itest::run_peer(client(patient, {"eof_cases"}), close_wait), "");
  EXPECT_TRUE(patient.handler().wait_closes(3, close_wait))
      << "on_close ran for " << patient.handler().close_codes().size() << " of 3 links";
  EXPECT_EQ(patient.handler().close_codes(), (std::vector<std::uint16_t>{1000, 1006, 1006}));
}

}  // namespace
