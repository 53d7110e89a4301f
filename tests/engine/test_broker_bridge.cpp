// The broker bridge in one process, over an in-memory broker (so that
// ThreadSanitizer sees every thread: reactors, bridge threads, the test):
// subscribe on first subscriber, cross-server delivery in order without
// duplicates, own messages skipped, the broker going away and coming back
// (failures, reconnect, resubscribe, gaps counted). The real brokers are in
// tests/integration/test_broker.cpp.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/broker_bridge.hpp"
#include "engine/link.hpp"
#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

namespace {

class FakeClient;

// Everything behind one mutex: the broker's state and each client's.
struct Hub {
  std::mutex m;
  bool up = true;
  std::vector<FakeClient*> clients;
  std::uint64_t subscribes = 0, unsubscribes = 0;
  void set_up(bool u);
};

class FakeClient final : public BrokerClient {
 public:
  explicit FakeClient(Hub& hub) : hub_(hub), ev_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~FakeClient() override {
    disconnect();
    ::close(ev_);
  }
  int connect(const std::string&, std::uint16_t, int) override {
    std::lock_guard g(hub_.m);
    if (!hub_.up) return -ECONNREFUSED;
    connected_ = true;
    hub_.clients.push_back(this);
    return 0;
  }
  void disconnect() noexcept override {
    std::lock_guard g(hub_.m);
    std::erase(hub_.clients, this);
    subs_.clear();
    inbox_.clear();
    connected_ = false;
  }
  int subscribe(std::string_view ch) override {
    std::lock_guard g(hub_.m);
    if (!hub_.up || !connected_) return -EIO;
    subs_.insert(std::string(ch));
    ++hub_.subscribes;
    return 0;
  }
  int unsubscribe(std::string_view ch) override {
    std::lock_guard g(hub_.m);
    if (!hub_.up || !connected_) return -EIO;
    subs_.erase(std::string(ch));
    ++hub_.unsubscribes;
    return 0;
  }
  int publish(std::string_view ch, std::span<const std::byte> msg) override {
    std::lock_guard g(hub_.m);
    if (!hub_.up || !connected_) return -EIO;
    for (FakeClient* c : hub_.clients) {
      if (!c->subs_.contains(std::string(ch))) continue;
      c->inbox_.emplace_back(std::string(ch), std::vector<std::byte>(msg.begin(), msg.end()));
      c->signal();
    }
    return 0;
  }
  int flush() override {
    std::lock_guard g(hub_.m);
    return hub_.up && connected_ ? 0 : -EIO;
  }
  int poll(int wake_fd, int timeout_ms, const OnMessage& on_message) override {
    pollfd fds[2] = {{ev_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    (void)::poll(fds, 2, timeout_ms);
    std::uint64_t n = 0;
    (void)!::read(ev_, &n, sizeof n);
    std::deque<std::pair<std::string, std::vector<std::byte>>> batch;
    {
      std::lock_guard g(hub_.m);
      if (!hub_.up || !connected_) return -ECONNRESET;
      batch.swap(inbox_);
    }
    for (auto& [ch, msg] : batch) on_message(ch, msg);
    return 0;
  }
  void signal() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(ev_, &one, sizeof one);
  }

 private:
  Hub& hub_;
  int ev_;
  bool connected_ = false;
  std::set<std::string> subs_;
  std::deque<std::pair<std::string, std::vector<std::byte>>> inbox_;
};

void Hub::set_up(bool u) {
  std::lock_guard g(m);
  up = u;
  for (FakeClient* c : clients) c->signal();
}

// "SUB t" subscribes the link on its reactor thread.
struct SubHandler : Handler {
  Server* server = nullptr;
  std::atomic<int> opened{0};
  void on_open(Link&) override { opened++; }
  void on_message(Link& l, std::span<std::byte> p, Opcode) override {
    const std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
    if (s.starts_with("SUB ")) {
      const std::string r = to_string(server->subscribe(l.id(), s.substr(4)));
      (void)l.send(std::as_bytes(std::span(r.data(), r.size())), Opcode::text);
    }
  }
};

struct Node {
  SubHandler h;
  Server server{test_config(2), h};
  std::unique_ptr<BrokerBridge> bridge;
  Node(Hub& hub) {
    h.server = &server;
    EXPECT_EQ(server.start(), 0);
    BrokerBridge::Options o;
    o.url = {"fake", "127.0.0.1", 1};
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 40;
    bridge = std::make_unique<BrokerBridge>(server, std::make_unique<FakeClient>(hub), o);
    server.topic_registry()->set_observer(bridge.get());   // before any subscribe
    EXPECT_EQ(bridge->start(), 0);
  }
  ~Node() {
    server.stop(500ms);
    bridge->stop();
  }
  void publish(const std::string& topic, const std::string& text) {
    const auto bytes = std::as_bytes(std::span(text.data(), text.size()));
    (void)server.publish_local(topic, bytes, Opcode::text);
    (void)bridge->forward(topic, bytes, Opcode::text);
  }
};

std::string next_text(WireConn& c) {
  auto f = c.read_frame();
  return f ? f->text() : "<nothing>";
}

TEST(BrokerBridgeInProcess, CrossServerInOrderOwnSkippedAndOutageSurvived) {
  Hub hub;
  Node a(hub), b(hub);
  WireConn on_a, on_b;
  ASSERT_EQ(on_a.open(a.server.port()), 101);
  ASSERT_EQ(on_b.open(b.server.port()), 101);
  for (WireConn* c : {&on_a, &on_b}) {
    ASSERT_TRUE(c->send_text("SUB t"));
    EXPECT_EQ(next_text(*c), "subscribed");
  }
  // Both channels subscribed at the broker: the first subscriber of each node.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard g(hub.m);
    return hub.subscribes == 2;
  }));
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) a.publish("t", std::to_string(i));
  for (WireConn* c : {&on_a, &on_b})
    for (int i = 0; i < n; ++i) ASSERT_EQ(next_text(*c), std::to_string(i));
  EXPECT_FALSE(on_a.read_frame(200)) << "a node delivered its own publication twice";
  EXPECT_EQ(b.bridge->stats().received.load(), static_cast<std::uint64_t>(n));
  EXPECT_EQ(a.bridge->stats().received.load(), 0u);
  EXPECT_EQ(b.bridge->stats().epochs.load(), 1u);

  // The broker goes away: local delivery goes on, forwards fail.
  hub.set_up(false);
  ASSERT_TRUE(eventually([&] { return a.bridge->stats().up.load() == 0 && b.bridge->stats().up.load() == 0; }));
  for (int i = n; i < n + 10; ++i) a.publish("t", std::to_string(i));
  for (int i = n; i < n + 10; ++i) ASSERT_EQ(next_text(on_a), std::to_string(i));
  EXPECT_GE(a.bridge->stats().publish_failures.load(), 10u);

  // Back: both reconnect and subscribe again; delivery resumes, the outage
  // is a gap of 10 at b, nothing is repeated.
  hub.set_up(true);
  ASSERT_TRUE(eventually([&] { return a.bridge->stats().up.load() == 1 && b.bridge->stats().up.load() == 1; }));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard g(hub.m);
    return hub.subscribes == 4;
  }));
  a.publish("t", std::to_string(n + 10));
  EXPECT_EQ(next_text(on_a), std::to_string(n + 10));
  EXPECT_EQ(next_text(on_b), std::to_string(n + 10));
  EXPECT_EQ(b.bridge->stats().gaps.load(), 10u);
  EXPECT_GE(a.bridge->stats().reconnects.load(), 1u);
  EXPECT_GE(a.bridge->stats().connect_failures.load(), 0u);
}

// A topic's channel is dropped after its last local subscriber leaves.
TEST(BrokerBridgeInProcess, ChannelFollowsLocalSubscribers) {
  Hub hub;
  Node a(hub);
  {
    WireConn c;
    ASSERT_EQ(c.open(a.server.port()), 101);
    ASSERT_TRUE(c.send_text("SUB t"));
    EXPECT_EQ(next_text(c), "subscribed");
    ASSERT_TRUE(eventually([&] {
      std::lock_guard g(hub.m);
      return hub.subscribes == 1;
    }));
  }
  ASSERT_TRUE(eventually([&] { return a.server.topic_registry()->topics() == 0; }));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard g(hub.m);
    return hub.unsubscribes == 1;
  }));
}

}  // namespace
