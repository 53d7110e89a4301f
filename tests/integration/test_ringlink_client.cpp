// ringlink's own client (a Server with listen=false and connect()) against
// a python3-websockets server: echo, pings from the peer, closes both ways,
// a refused upgrade, and a port with nothing listening.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/server.hpp"
#include "engine/socket.hpp"
#include "tests/integration/peer_process.hpp"

namespace {

using namespace std::chrono_literals;

struct Received {
  ringlink::Opcode op;
  std::vector<std::byte> bytes;
  std::string text() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
};

struct ConnectFailure {
  ringlink::LinkId id;
  int error;
  std::uint16_t http_status;
};

// Records every client event; the test thread waits on them with timeouts.
class ClientRecorder : public ringlink::Handler {
 public:
  void on_open(ringlink::Link& link) override {
    std::lock_guard lk(mu_);
    opened_.push_back(link.id());
    cv_.notify_all();
  }
  void on_message(ringlink::Link&, std::span<std::byte> payload, ringlink::Opcode op) override {
    std::lock_guard lk(mu_);
    messages_.push_back({op, {payload.begin(), payload.end()}});
    cv_.notify_all();
  }
  void on_close(ringlink::Link&, std::uint16_t code, std::string_view reason) override {
    std::lock_guard lk(mu_);
    closes_.push_back(code);
    close_reasons_.emplace_back(reason);
    cv_.notify_all();
  }
  void on_connect_failed(ringlink::LinkId id, void*, int error, std::uint16_t http_status) override {
    std::lock_guard lk(mu_);
    failures_.push_back({id, error, http_status});
    cv_.notify_all();
  }

  std::optional<ringlink::LinkId> wait_open(std::size_t index, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, timeout, [&] { return opened_.size() > index || !failures_.empty(); })) return {};
    if (opened_.size() <= index) return {};
    return opened_[index];
  }
  std::optional<Received> next_message(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    // A close while waiting ends the wait early: no message can follow it.
    const std::size_t closes = closes_.size();
    if (!cv_.wait_for(lk, timeout, [&] { return !messages_.empty() || closes_.size() > closes; })) return {};
    if (messages_.empty()) return {};
    Received r = std::move(messages_.front());
    messages_.pop_front();
    return r;
  }
  std::optional<std::uint16_t> wait_close(std::size_t index, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, timeout, [&] { return closes_.size() > index; })) return {};
    return closes_[index];
  }
  std::optional<ConnectFailure> wait_failure(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, timeout, [&] { return !failures_.empty() || !opened_.empty(); })) return {};
    if (failures_.empty()) return {};
    return failures_.front();
  }
  std::string close_reason(std::size_t index) {
    std::lock_guard lk(mu_);
    return index < close_reasons_.size() ? close_reasons_[index] : std::string();
  }
  std::size_t close_count() {
    std::lock_guard lk(mu_);
    return closes_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ringlink::LinkId> opened_;
  std::deque<Received> messages_;
  std::vector<std::uint16_t> closes_;
  std::vector<std::string> close_reasons_;
  std::vector<ConnectFailure> failures_;
};

std::string text_of(std::size_t n) {
  static const std::string unit = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // 1 + 2 + 3 + 4 bytes
  std::string s;
  s.reserve(n);
  while (s.size() + unit.size() <= n) s += unit;
  s.append(n - s.size(), 'x');
  return s;
}

std::vector<std::byte> binary_of(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span<const char>(s.data(), s.size())); }

class RinglinkClient : public ::testing::Test {
 protected:
  void SetUp() override {
    ringlink::ServerConfig cfg;
    cfg.listen = false;
    cfg.reactors = 2;
    server_ = std::make_unique<ringlink::Server>(cfg, rec_);
    ASSERT_EQ(server_->start(), 0);
  }
  void TearDown() override {
    EXPECT_EQ(server_->snapshot().handler_exceptions, 0u);
    server_->stop(2s);
  }

  // Starts ws_server.py in `mode` and returns its port (0 on failure).
  std::uint16_t start_peer(const char* mode) {
    std::string error;
    peer_ = itest::PeerProcess::start({itest::python(), itest::peer_script("ws_server.py"), mode}, &error);
    if (!peer_) {
      ADD_FAILURE() << "spawn failed: " << error;
      return 0;
    }
    const std::optional<std::string> line = peer_->read_line(15s);
    if (!line || line->rfind("port ", 0) != 0) {
      ADD_FAILURE() << "ws_server.py printed no port; stderr:\n" << peer_->stderr_text();
      return 0;
    }
    return static_cast<std::uint16_t>(std::stoul(line->substr(5)));
  }

  bool connect(std::uint16_t port, bool deflate = false) {
    ringlink::ConnectRequest req;
    req.deflate = deflate;
    if (ringlink::resolve_address("127.0.0.1", port, req.address) != 0) return false;
    req.host_header = "127.0.0.1:" + std::to_string(port);
    req.path = "/";
    return server_->connect(req);
  }

  std::unique_ptr<itest::PeerProcess> peer_;
  ClientRecorder rec_;
  std::unique_ptr<ringlink::Server> server_;
};

// Proves: with permessage-deflate offered (python3-websockets accepts it by
// default), messages of 16 B to 1 MiB go compressed both ways and echo exact.
TEST_F(RinglinkClient, EchoesCompressedWhenOffered) {
  if (!ringlink::config::deflate) GTEST_SKIP() << "built without zlib";
  const std::uint16_t port = start_peer("echo");
  ASSERT_NE(port, 0);
  ASSERT_TRUE(connect(port, true));
  const std::optional<ringlink::LinkId> id = rec_.wait_open(0, 10s);
  ASSERT_TRUE(id) << "not opened; stderr:\n" << peer_->stderr_text();
  for (std::size_t n : {16u, 1000u, 65536u, 1u << 20}) {
    const std::string text = text_of(n);
    ASSERT_EQ(server_->send(*id, bytes_of(text), ringlink::Opcode::text), ringlink::SendResult::queued) << n;
    std::optional<Received> got = rec_.next_message(30s);
    ASSERT_TRUE(got) << "no text echo of " << n << " bytes; stderr:\n" << peer_->stderr_text();
    EXPECT_TRUE(got->text() == text) << "text echo of " << n << " bytes differs";
    const std::vector<std::byte> bin = binary_of(n, static_cast<std::uint32_t>(n));
    ASSERT_EQ(server_->send(*id, bin, ringlink::Opcode::binary), ringlink::SendResult::queued) << n;
    got = rec_.next_message(30s);
    ASSERT_TRUE(got) << "no binary echo of " << n << " bytes; stderr:\n" << peer_->stderr_text();
    EXPECT_TRUE(got->bytes == bin) << "binary echo of " << n << " bytes differs";
  }
  const ringlink::MetricsSnapshot m = server_->snapshot();
  EXPECT_EQ(m.deflate_links, 1u);
  EXPECT_EQ(m.deflate_calls, 6u);  // both 16 B messages are below the threshold
  EXPECT_GT(m.deflate_in_wire_bytes, 0u);  // the peer compressed its echoes
  EXPECT_LT(m.deflate_out_wire_bytes, m.deflate_out_plain_bytes);
}

// Proves: our client's masked frames of every size up to 16 MiB echo back byte-exact, text and binary.
TEST_F(RinglinkClient, EchoesEverySizeTextAndBinary) {
  const std::uint16_t port = start_peer("echo");
  ASSERT_NE(port, 0);
  ASSERT_TRUE(connect(port));
  const std::optional<ringlink::LinkId> id = rec_.wait_open(0, 10s);
  ASSERT_TRUE(id) << "not opened; stderr:\n" << peer_->stderr_text();
  const std::size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20, 16u << 20};
  for (std::size_t n : sizes) {
    const std::string text = text_of(n);
    ASSERT_EQ(server_->send(*id, bytes_of(text), ringlink::Opcode::text), ringlink::SendResult::queued) << n;
    std::optional<Received> got = rec_.next_message(30s);
    ASSERT_TRUE(got) << "no text echo of " << n << " bytes; stderr:\n" << peer_->stderr_text();
    EXPECT_EQ(got->op, ringlink::Opcode::text);
    EXPECT_TRUE(got->text() == text) << "text echo of " << n << " bytes differs (got " << got->bytes.size() << ")";

    const std::vector<std::byte> bin = binary_of(n, static_cast<std::uint32_t>(n));
    ASSERT_EQ(server_->send(*id, bin, ringlink::Opcode::binary), ringlink::SendResult::queued) << n;
    got = rec_.next_message(30s);
    ASSERT_TRUE(got) << "no binary echo of " << n << " bytes; stderr:\n" << peer_->stderr_text();
    EXPECT_EQ(got->op, ringlink::Opcode::binary);
    EXPECT_TRUE(got->bytes == bin) << "binary echo of " << n << " bytes differs (got " << got->bytes.size() << ")";
  }
  EXPECT_EQ(rec_.close_count(), 0u) << "the server's keepalive pings (every 0.2 s) went unanswered";
}

// Proves: a ping from the python server gets our pong with its payload (and keepalive pings keep the link up).
TEST_F(RinglinkClient, AnswersServerPings) {
  const std::uint16_t port = start_peer("echo");
  ASSERT_NE(port, 0);
  ASSERT_TRUE(connect(port));
  const std::optional<ringlink::LinkId> id = rec_.wait_open(0, 10s);
  ASSERT_TRUE(id);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(server_->send_text(*id, "ping-me"), ringlink::SendResult::queued);
    const std::optional<Received> got = rec_.next_message(15s);
    ASSERT_TRUE(got) << "no answer; stderr:\n" << peer_->stderr_text();
    EXPECT_EQ(got->text(), "pong-ok");
  }
  EXPECT_EQ(rec_.close_count(), 0u);
}

// Proves: a close the python server starts (4002) is answered and on_close reports 4002.
TEST_F(RinglinkClient, PeerInitiatedCloseReportsItsCode) {
  const std::uint16_t port = start_peer("echo");
  ASSERT_NE(port, 0);
  ASSERT_TRUE(connect(port));
  const std::optional<ringlink::LinkId> id = rec_.wait_open(0, 10s);
  ASSERT_TRUE(id);
  ASSERT_EQ(server_->send_text(*id, "close-please"), ringlink::SendResult::queued);
  const std::optional<std::uint16_t> code = rec_.wait_close(0, 10s);
  ASSERT_TRUE(code) << "on_close not called; stderr:\n" << peer_->stderr_text();
  EXPECT_EQ(*code, 4002);
  // The python side received our echo of its code.
  const std::optional<std::string> line = peer_->read_line(10s);
  ASSERT_TRUE(line) << peer_->stderr_text();
  EXPECT_EQ(line->substr(0, 11), "closed 4002");
}

// Proves: on_close gets the reason of the peer's close frame ("py-bye"), as
// Session reports it with the close event (the reactor once passed an empty
// reason).
TEST_F(RinglinkClient, PeerCloseReasonReachesOnClose) {
  const std::uint16_t port = start_peer("echo");
  ASSERT_NE(port, 0);
  ASSERT_TRUE(connect(port));
  const std::optional<ringlink::LinkId> id = rec_.wait_open(0, 10s);
  ASSERT_TRUE(id);
  ASSERT_EQ(server_->send_text(*id, "close-please"), ringlink::SendResult::queued);
  const std::optional<std::uint16_t> code = rec_.wait_close(0, 10s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 4002);
  EXPECT_EQ(rec_.close_reason(0), "py-bye");
}

// Proves: a close we start (1000, then 4000) reaches the python server with that code and on_close reports it.
TEST_F(RinglinkClient, OurCloseReachesThePeer) {
  const std::uint16_t port = start_peer("echo");
  ASSERT_NE(port, 0);
  const std::uint16_t codes[] = {1000, 4000};
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(connect(port));
    const std::optional<ringlink::LinkId> id = rec_.wait_open(i, 10s);
    ASSERT_TRUE(id);
    ASSERT_EQ(server_->send_text(*id, "hello"), ringlink::SendResult::queued);
    const std::optional<Received> got = rec_.next_message(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->text(), "hello");
    ASSERT_TRUE(server_->close(*id, codes[i]));
    const std::optional<std::uint16_t> code = rec_.wait_close(i, 10s);
    ASSERT_TRUE(code) << "on_close not called";
    EXPECT_EQ(*code, codes[i]);
    const std::optional<std::string> line = peer_->read_line(10s);
    ASSERT_TRUE(line) << peer_->stderr_text();
    EXPECT_EQ(*line, "closed " + std::to_string(codes[i]) + " ");
  }
}

// Proves: an upgrade refused with 403 reports on_connect_failed(error 0, http_status 403).
TEST_F(RinglinkClient, RefusedUpgradeReportsHttpStatus) {
  const std::uint16_t port = start_peer("refuse");
  ASSERT_NE(port, 0);
  ASSERT_TRUE(connect(port));
  const std::optional<ConnectFailure> f = rec_.wait_failure(10s);
  ASSERT_TRUE(f) << "on_connect_failed not called";
  EXPECT_EQ(f->error, 0);
  EXPECT_EQ(f->http_status, 403);
  EXPECT_TRUE(f->id.valid());
}

// Proves: connecting to a port with nothing listening reports on_connect_failed(-ECONNREFUSED, 0).
TEST_F(RinglinkClient, NothingListeningReportsEconnrefused) {
  // A bound socket that never listens holds the port, so nobody else takes it
  // and every connection to it is refused.
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_TRUE(connect(ntohs(a.sin_port)));
  const std::optional<ConnectFailure> f = rec_.wait_failure(10s);
  ::close(s);
  ASSERT_TRUE(f) << "on_connect_failed not called";
  EXPECT_EQ(f->error, -ECONNREFUSED) << std::strerror(-f->error);
  EXPECT_EQ(f->http_status, 0);
}

}  // namespace
