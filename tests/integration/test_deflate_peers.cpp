// permessage-deflate against python3-websockets as the client (compression
// on by default): context takeover, no context takeover with small windows,
// windows of 9; text and binary of 16 B to 1 MiB and a fragmented message.
// And gorilla/websocket with EnableCompression (no context takeover, the
// only mode it has): every size to 16 MiB in its 4 KiB fragments, and 50
// concurrent links. The peers judge the echoes; these tests check what the
// server counted.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/echo_server.hpp"
#include "tests/integration/peer_process.hpp"

namespace {

using namespace std::chrono_literals;

ringlink::DeflateConfig deflate_on() {
  ringlink::DeflateConfig d;
  d.enabled = true;
  return d;
}

class PythonDeflate : public ::testing::TestWithParam<const char*> {};

// Proves: python3-websockets agrees on permessage-deflate with us in each
// mode and every message of 16 B to 1 MiB echoes exact, compressed both ways.
TEST_P(PythonDeflate, EchoesCompressed) {
  if (!ringlink::config::deflate) GTEST_SKIP() << "built without zlib";
  itest::EchoServer echo(deflate_on());
  ASSERT_EQ(echo.start(), 0);
  const std::vector<std::string> argv{itest::python(), itest::peer_script("deflate_client.py"), echo.url(), GetParam()};
  EXPECT_EQ(itest::run_peer(argv, 60s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, 10s));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_GT(m.deflate_in_wire_bytes, 0u);
  EXPECT_GT(m.deflate_in_plain_bytes, m.deflate_in_wire_bytes);
  EXPECT_GT(m.deflate_out_plain_bytes, m.deflate_out_wire_bytes);
  EXPECT_EQ(m.deflate_corrupt + m.deflate_too_big + m.deflate_rsv1_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PythonDeflate, ::testing::Values("takeover", "no_takeover", "window"));

class GoDeflate : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ringlink::config::deflate) GTEST_SKIP() << "built without zlib";
    if (itest::env_or_empty("RINGLINK_GO_CLIENT").empty()) GTEST_SKIP() << "go was not found at configure time";
    ASSERT_EQ(echo.start(), 0);
  }
  std::vector<std::string> go_client(std::vector<std::string> args) {
    std::vector<std::string> argv{itest::env_or_empty("RINGLINK_GO_CLIENT"), "-compress", "-url", echo.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  itest::EchoServer echo{deflate_on()};
};

// Proves: gorilla's compressed, fragmented messages of every size up to
// 16 MiB echo exact; its no-context-takeover offer is honoured.
TEST_F(GoDeflate, EchoesEverySizeCompressed) {
  EXPECT_EQ(itest::run_peer(go_client({"-mode", "sizes"}), 60s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, 10s));
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_GT(m.deflate_in_wire_bytes, 0u);
  EXPECT_GT(m.deflate_calls, 0u);
  EXPECT_EQ(m.deflate_corrupt + m.deflate_too_big + m.deflate_rsv1_errors, 0u);
}

// Proves: 50 compressed links at once (shared contexts per reactor, reset
// per message) keep their messages apart.
TEST_F(GoDeflate, FiftyConcurrentLinks) {
  EXPECT_EQ(itest::run_peer(go_client({"-mode", "concurrent", "-n", "50", "-m", "40"}), 60s), "");
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.deflate_corrupt + m.deflate_too_big + m.deflate_rsv1_errors, 0u);
  EXPECT_EQ(m.deflate_shared_fallbacks, 0u);  // no context takeover was asked for: nothing to fall back from
}

}  // namespace
