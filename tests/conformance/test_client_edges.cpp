// ringlink's client (a Server with listen=false and connect()) against a
// python3-websockets server that sends edge cases (edge_server.py): a code
// point split across fragments, a 125-byte ping, empty messages, 1 MiB
// messages, a close 4000 with a reason, and invalid UTF-8, which our client
// must answer with close 1007.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/server.hpp"
#include "engine/socket.hpp"
#include "tests/integration/peer_process.hpp"

using namespace std::chrono_literals;

namespace {

struct Message {
  ringlink::Opcode op;
  std::vector<std::byte> bytes;
  std::string text() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
};

class Recorder : public ringlink::Handler {
 public:
  void on_open(ringlink::Link&) override { note([&] { ++opened_; }); }
  void on_message(ringlink::Link&, std::span<std::byte> p, ringlink::Opcode op) override {
    note([&] { messages_.push_back({op, {p.begin(), p.end()}}); });
  }
  void on_close(ringlink::Link&, std::uint16_t code, std::string_view reason) override {
    note([&] { closes_.push_back({code, std::string(reason)}); });
  }
  void on_connect_failed(ringlink::LinkId, void*, int, std::uint16_t status) override {
    note([&] { closes_.push_back({static_cast<std::uint16_t>(status == 0 ? 1 : status), "connect failed"}); });
  }

  // Waits until the link closed; returns (code, reason).
  std::optional<std::pair<std::uint16_t, std::string>> wait_close(std::chrono::milliseconds t) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, t, [&] { return !closes_.empty(); })) return std::nullopt;
    return closes_.front();
  }
  std::vector<Message> messages() {
    std::lock_guard lk(mu_);
    return {messages_.begin(), messages_.end()};
  }

 private:
  template <class F>
  void note(F f) {
    std::lock_guard lk(mu_);
    f();
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int opened_ = 0;
  std::deque<Message> messages_;
  std::vector<std::pair<std::uint16_t, std::string>> closes_;
};

class ClientEdges : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    peer_ = itest::PeerProcess::start({itest::python(), itest::peer_script("edge_server.py")}, &error);
    ASSERT_TRUE(peer_) << error;
    const auto line = peer_->read_line(15s);
    ASSERT_TRUE(line && line->rfind("port ", 0) == 0) << "no port; stderr:\n" << peer_->stderr_text();
    port_ = static_cast<std::uint16_t>(std::stoul(line->substr(5)));
    ringlink::ServerConfig cfg;
    cfg.listen = false;
    cfg.reactors = 1;
    server_ = std::make_unique<ringlink::Server>(cfg, rec_);
    ASSERT_EQ(server_->start(), 0);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->snapshot().handler_exceptions, 0u);
      server_->stop(2s);
      EXPECT_EQ(server_->snapshot().links_open, 0u);
    }
  }

  // Runs one scenario; returns our close (code, reason) and the peer's line.
  std::pair<std::uint16_t, std::string> run(const std::string& path, std::string* peer_line) {
    ringlink::ConnectRequest req;
    EXPECT_EQ(ringlink::resolve_address("127.0.0.1", port_, req.address), 0);
    req.host_header = "127.0.0.1:" + std::to_string(port_);
    req.path = path;
    EXPECT_TRUE(server_->connect(req));
    const auto closed = rec_.wait_close(20s);
    EXPECT_TRUE(closed) << path << ": never closed; peer stderr:\n" << peer_->stderr_text();
    const auto line = peer_->read_line(10s);
    EXPECT_TRUE(line) << path << ": peer printed nothing; stderr:\n" << peer_->stderr_text();
    if (peer_line != nullptr && line) *peer_line = *line;
    return closed ? *closed : std::pair<std::uint16_t, std::string>{0, ""};
  }

  Recorder rec_;
  std::unique_ptr<itest::PeerProcess> peer_;
  std::unique_ptr<ringlink::Server> server_;
  std::uint16_t port_ = 0;
};

}  // namespace

// Proves: code points split across fragments (2 and 4 bytes) are reassembled and accepted.
TEST_F(ClientEdges, CodePointSplitAcrossFragments) {
  std::string line;
  const auto [code, reason] = run("/split", &line);
  EXPECT_EQ(code, 1000);
  EXPECT_EQ(line, "closed /split 1000 ");
  const auto m = rec_.messages();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].op, ringlink::Opcode::text);
  EXPECT_EQ(m[0].text(), "caf\xC3\xA9 ");
  EXPECT_EQ(m[1].text(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(m[2].text(), "after");
}

// Proves: a 125-byte ping (the largest control payload) is answered with the same bytes.
TEST_F(ClientEdges, Ping125IsAnswered) {
  std::string line;
  const auto [code, reason] = run("/ping125", &line);
  EXPECT_EQ(code, 1000);
  EXPECT_EQ(line, "closed /ping125 1000 ");
  const auto m = rec_.messages();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].text(), "pong-ok");
}

// Proves: empty text and empty binary messages arrive as empty messages of their type.
TEST_F(ClientEdges, EmptyMessages) {
  run("/empty", nullptr);
  const auto m = rec_.messages();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].op, ringlink::Opcode::text);
  EXPECT_TRUE(m[0].bytes.empty());
  EXPECT_EQ(m[1].op, ringlink::Opcode::binary);
  EXPECT_TRUE(m[1].bytes.empty());
}

// Proves: 1 MiB text and binary messages arrive whole and byte-exact.
TEST_F(ClientEdges, OneMebibyteMessages) {
  const auto [code, reason] = run("/big", nullptr);
  EXPECT_EQ(code, 1000);
  const auto m = rec_.messages();
  ASSERT_EQ(m.size(), 2u);
  std::string text;
  for (int i = 0; i < 512 * 1024; ++i) text += "\xC3\xA9";
  EXPECT_EQ(m[0].op, ringlink::Opcode::text);
  EXPECT_TRUE(m[0].text() == text) << "text differs, " << m[0].bytes.size() << " bytes";
  std::vector<std::byte> bin(1u << 20);
  for (std::size_t i = 0; i < bin.size(); ++i) bin[i] = std::byte(i & 0xFF);
  EXPECT_EQ(m[1].op, ringlink::Opcode::binary);
  EXPECT_TRUE(m[1].bytes == bin) << "binary differs, " << m[1].bytes.size() << " bytes";
}

// Proves: the server's close code 4000 and reason reach on_close, and our echo carries 4000 back
// (the reason is not echoed; RFC 6455 5.5.1 asks only for the code).
TEST_F(ClientEdges, Close4000WithReason) {
  std::string line;
  const auto [code, reason] = run("/close4000", &line);
  EXPECT_EQ(code, 4000);
  EXPECT_EQ(reason, "edge reason");
  EXPECT_EQ(line, "closed /close4000 4000 ");
}

// Proves: invalid UTF-8 in a text message makes our client fail the connection with 1007.
TEST_F(ClientEdges, InvalidUtf8Closes1007) {
  std::string line;
  const auto [code, reason] = run("/badutf8", &line);
  EXPECT_EQ(code, 1007);
  EXPECT_EQ(line.rfind("closed /badutf8 1007", 0), 0u) << line;
  EXPECT_TRUE(rec_.messages().empty());
}
