// permessage-deflate against Node `ws` (perMessageDeflate, threshold 0), both
// ways round: ws as the client of a ringlink server, and ringlink's client
// against a ws server; context takeover on and off, windows 9, 12 and 15.
// ws comes from npm (the lock file beside the script) on first use.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "engine/server.hpp"
#include "engine/socket.hpp"
#include "tests/integration/echo_server.hpp"
#include "tests/integration/peer_process.hpp"

namespace {

using namespace std::chrono_literals;

using Mode = std::tuple<const char*, int>;  // takeover "on"/"off", window bits

std::string node() { return "/usr/bin/node"; }
std::string script() { return itest::peer_script("node/deflate_peer.js"); }

class NodeDeflateClient : public ::testing::TestWithParam<Mode> {};

// Proves: ws's client agrees with us and every echo of 16 B to 1 MiB, text,
// binary and fragmented, comes back exact; nothing failed on our side.
TEST_P(NodeDeflateClient, EchoesCompressed) {
  if (!ringlink::config::deflate) GTEST_SKIP() << "built without zlib";
  ringlink::DeflateConfig d;
  d.enabled = true;
  d.threshold = 0;
  itest::EchoServer echo(d);
  ASSERT_EQ(echo.start(), 0);
  const auto [takeover, bits] = GetParam();
  EXPECT_EQ(itest::run_peer({node(), script(), "client", echo.url(), takeover, std::to_string(bits)}, 90s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, 10s));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.deflate_calls, 11u);  // every echo compressed
  EXPECT_GT(m.deflate_in_plain_bytes, m.deflate_in_wire_bytes);
  EXPECT_EQ(m.deflate_corrupt + m.deflate_too_big + m.deflate_rsv1_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, NodeDeflateClient,
                         ::testing::Combine(::testing::Values("on", "off"), ::testing::Values(9, 12, 15)));

// Records what the client side receives.
class Recorder : public ringlink::Handler {
 public:
  void on_open(ringlink::Link& l) override {
    std::lock_guard lk(mu_);
    id_ = l.id();
    compressed_ = l.compressed();
    cv_.notify_all();
  }
  void on_message(ringlink::Link&, std::span<std::byte> p, ringlink::Opcode) override {
    std::lock_guard lk(mu_);
    got_.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
    cv_.notify_all();
  }
  void on_connect_failed(ringlink::LinkId, void*, int, std::uint16_t) override {
    std::lock_guard lk(mu_);
    failed_ = true;
    cv_.notify_all();
  }
  std::optional<ringlink::LinkId> wait_open() {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 10s, [&] { return id_.has_value() || failed_; });
    return id_;
  }
  std::optional<std::string> next(std::chrono::milliseconds t) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, t, [&] { return !got_.empty(); })) return {};
    std::string s = std::move(got_.front());
    got_.pop_front();
    return s;
  }
  bool compressed() {
    std::lock_guard lk(mu_);
    return compressed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ringlink::LinkId> id_;
  bool compressed_ = false;
  bool failed_ = false;
  std::deque<std::string> got_;
};

class NodeDeflateServer : public ::testing::TestWithParam<Mode> {};

// Proves: ringlink's client offers, ws's server agrees, and echoes of 16 B
// to 1 MiB come back exact, compressed both ways.
TEST_P(NodeDeflateServer, EchoesCompressed) {
  if (!ringlink::config::deflate) GTEST_SKIP() << "built without zlib";
  const auto [takeover, bits] = GetParam();
  std::string error;
  auto peer = itest::PeerProcess::start({node(), script(), "server", takeover, std::to_string(bits)}, &error);
  ASSERT_TRUE(peer) << error;
  const std::optional<std::string> line = peer->read_line(30s);
  ASSERT_TRUE(line && line->rfind("port ", 0) == 0) << "no port; stderr:\n" << peer->stderr_text();
  const auto port = static_cast<std::uint16_t>(std::stoul(line->substr(5)));

  ringlink::ServerConfig cfg;
  cfg.listen = false;
  cfg.reactors = 1;
  Recorder rec;
  ringlink::Server client(cfg, rec);
  ASSERT_EQ(client.start(), 0);
  ringlink::ConnectRequest req;
  ASSERT_EQ(ringlink::resolve_address("127.0.0.1", port, req.address), 0);
  req.host_header = "127.0.0.1:" + std::to_string(port);
  req.deflate = true;
  const bool off = std::string_view(takeover) == "off";
  req.deflate_offer.server_no_context_takeover = off;
  req.deflate_offer.client_no_context_takeover = off;
  req.deflate_offer.server_max_window_bits = static_cast<std::uint8_t>(bits);
  req.deflate_offer.client_max_window_bits = static_cast<std::uint8_t>(bits);
  ASSERT_TRUE(client.connect(req));
  const auto id = rec.wait_open();
  ASSERT_TRUE(id) << "not opened; stderr:\n" << peer->stderr_text();
  EXPECT_TRUE(rec.compressed());
  for (std::size_t n : {16u, 100u, 1024u, 65536u, 1u << 20}) {
    std::string text;
    while (text.size() < n) text += R"({"id":7,"name":"ringlink","tags":["a","b"]},)";
    text.resize(n);
    ASSERT_EQ(client.send(*id, std::as_bytes(std::span(text.data(), text.size())), ringlink::Opcode::text),
              ringlink::SendResult::queued);
    const auto got = rec.next(30s);
    ASSERT_TRUE(got) << n << "; stderr:\n" << peer->stderr_text();
    EXPECT_TRUE(*got == text) << n;
  }
  const ringlink::MetricsSnapshot m = client.snapshot();
  EXPECT_EQ(m.deflate_calls, 4u);  // 16 B is below the default threshold
  EXPECT_GT(m.deflate_in_plain_bytes, m.deflate_in_wire_bytes);
  client.stop(2s);
}

INSTANTIATE_TEST_SUITE_P(Modes, NodeDeflateServer,
                         ::testing::Combine(::testing::Values("on", "off"), ::testing::Values(9, 12, 15)));

}  // namespace
