// gorilla/websocket as the client (built offline from Debian's package),
// against an in-process ringlink echo server (2 reactors, port 0).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/echo_server.hpp"
#include "tests/integration/peer_process.hpp"

namespace {

using namespace std::chrono_literals;
using itest::EchoServer;

// Longer than the engine's close_timeout: see PythonClient.PeerFinIsSeenPromptly.
constexpr auto close_wait = 10s;

std::vector<std::string> go_client(const EchoServer& s, std::vector<std::string> args) {
  std::vector<std::string> argv{itest::env_or_empty("RINGLINK_GO_CLIENT"), "-url", s.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

class GoClient : public ::testing::Test {
 protected:
  void SetUp() override {
    if (itest::env_or_empty("RINGLINK_GO_CLIENT").empty()) GTEST_SKIP() << "go was not found at configure time";
    ASSERT_EQ(echo.start(), 0);
  }
  void TearDown() override { EXPECT_EQ(echo.server().snapshot().handler_exceptions, 0u); }
  // The server pings links quiet for 300 ms (the ping test waits for it).
  EchoServer echo{300};
};

// Proves: every size up to 16 MiB echoes byte-exact, text and binary, from gorilla's 4 KiB fragments.
TEST_F(GoClient, EchoesEverySizeTextAndBinary) {
  EXPECT_EQ(itest::run_peer(go_client(echo, {"-mode", "sizes"}), 50s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
}

// Proves: gorilla's ping gets its payload back, and the server pings an idle gorilla link that answers.
TEST_F(GoClient, PingsBothWays) {
  EXPECT_EQ(itest::run_peer(go_client(echo, {"-mode", "ping"}), 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
}

// Proves: client close codes 1000 and 4000 are echoed and reported to on_close.
TEST_F(GoClient, EchoesClientCloseCodes) {
  EXPECT_EQ(itest::run_peer(go_client(echo, {"-mode", "close"}), 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(2, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), (std::vector<std::uint16_t>{1000, 4000}));
}

// Proves: Link::close(4001, "bye") reaches gorilla with that code and reason.
TEST_F(GoClient, ServerCloseCarriesCodeAndReason) {
  EXPECT_EQ(itest::run_peer(go_client(echo, {"-mode", "server_close"}), 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{itest::server_close_code});
}

// Proves: 50 concurrent gorilla connections pipelining 100 messages each get every echo, in order.
TEST_F(GoClient, FiftyConcurrentConnections) {
  EXPECT_EQ(itest::run_peer(go_client(echo, {"-mode", "concurrent", "-n", "50", "-m", "100"}), 40s), "");
  ASSERT_TRUE(echo.handler().wait_closes(50, close_wait));
  EXPECT_EQ(echo.handler().opens(), 50u);
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>(50, 1000));
  EXPECT_EQ(echo.server().snapshot().messages_in, 50u * 100u);
}

}  // namespace
