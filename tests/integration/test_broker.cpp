// Topics across processes: two ringlink-echo --pubsub nodes joined by a real
// broker (redis-server, nats-server: Debian packages, started here as
// children on free loopback ports, stopped by PID). Cross-node order and no
// duplicates; the broker killed (-9) and restarted mid-traffic: local
// fan-out keeps working, the outage is counted, delivery resumes by itself;
// a node killed (-9) leaves the other serving; examples/chat over two
// instances. Every wait is bounded.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/peer_process.hpp"
#include "tests/wait_until.hpp"
#include "tests/wire_client.hpp"

namespace {

using namespace std::chrono_literals;
using ringlink::wire::WireConn;

// Polls every 20 ms: a look is often a request to a server's /metrics.
template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = ringlink::test::hang_deadline) {
  return ringlink::test::eventually(p, limit, 20ms);
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(std::uint16_t port) {
  WireConn c;
  return c.connect(port);
}

// A broker child on a fixed port (so that it can come back on the same one).
class Broker {
 public:
  Broker(std::string kind, std::uint16_t port) : kind_(std::move(kind)), port_(port) {}
  static std::string binary(const std::string& kind) {
    return kind == "redis" ? "/usr/bin/redis-server" : "/usr/sbin/nats-server";
  }
  bool start() {
    const std::string p = std::to_string(port_);
    std::vector<std::string> argv;
    if (kind_ == "redis") {
      argv = {binary(kind_), "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"};
    } else {
      argv = {binary(kind_), "-a", "127.0.0.1", "-p", p};
    }
    std::string error;
    proc_ = itest::PeerProcess::start(argv, &error);
    return proc_ && eventually([&] { return can_connect(port_); });
  }
  void kill9() {
    if (!proc_) return;
    proc_->send_signal(SIGKILL);
    (void)proc_->wait(5s);
    proc_.reset();
  }
  std::string url() const { return kind_ + "://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string kind_;
  std::uint16_t port_;
  std::unique_ptr<itest::PeerProcess> proc_;
};

// One ringlink-echo --pubsub --broker node.
class Node {
 public:
  bool start(const std::string& broker_url, const std::string& dir, const std::string& name) {
    port_file_ = dir + "/" + name + ".port";
    std::string error;
    proc_ = itest::PeerProcess::start({itest::env_or_empty("RINGLINK_ECHO"), "--port", "0", "--port-file", port_file_,
                                       "--reactors", "2", "--pubsub", "--metrics", "--ping-interval", "0",
                                       "--broker", broker_url},
                                      &error);
    if (!proc_ || !itest::wait_for_file(port_file_, 10s)) return false;
    std::ifstream in(port_file_);
    in >> port_;
    return port_ != 0;
  }
  void kill9() {
    proc_->send_signal(SIGKILL);
    (void)proc_->wait(5s);
  }
  ~Node() { ::unlink(port_file_.c_str()); }
  std::uint16_t port() const { return port_; }
  bool alive() { return proc_ && !proc_->wait(0ms); }
  std::string stderr_text() const { return proc_ ? proc_->stderr_text() : ""; }
  // GET /metrics: the server-wide series (name value).
  std::map<std::string, double> metrics() const {
    std::map<std::string, double> m;
    WireConn http;
    if (!http.connect(port_) || !http.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") || http.read_head() != 200)
      return m;
    std::string body;
    std::uint8_t b = 0;
    while (http.read_exact(&b, 1, 2000)) body.push_back(static_cast<char>(b));
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#' || line.find('{') != std::string::npos) continue;
      const std::size_t sp = line.find(' ');
      if (sp != std::string::npos) m[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
    }
    return m;
  }
  double metric(const std::string& name) const {
    auto m = metrics();
    auto it = m.find(name);
    return it == m.end() ? -1 : it->second;
  }

 private:
  std::unique_ptr<itest::PeerProcess> proc_;
  std::string port_file_;
  std::uint16_t port_ = 0;
};

// A client's view of one topic: numbered messages "<publisher>:<n>" per
// publisher must rise by one (no duplicate, no reordering, no loss) unless
// losses are allowed, in which case they must still rise.
struct Stream {
  std::map<std::string, long> last;
  int numbered = 0;
  bool strict = true;
  std::string error;
  void take(const std::string& text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos) return;   // probes and markers
    const std::string who = text.substr(0, colon);
    const long n = std::stol(text.substr(colon + 1));
    auto it = last.find(who);
    const long prev = it == last.end() ? -1 : it->second;
    if (n <= prev || (strict && n != prev + 1))
      if (error.empty()) error = who + ": " + std::to_string(n) + " after " + std::to_string(prev);
    last[who] = n;
    ++numbered;
  }
};

class BrokerBridge : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string kind = GetParam();
    if (itest::env_or_empty(kind == "redis" ? "RINGLINK_HAVE_REDIS" : "RINGLINK_HAVE_NATS") != "1")
      GTEST_SKIP() << "built without the " << kind << " feature";
    ASSERT_EQ(::access(Broker::binary(kind).c_str(), X_OK), 0) << Broker::binary(kind) << " missing (DEB_PACKAGES)";
    const char* tmpdir = std::getenv("TMPDIR");
    dir_ = std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/ringlink-broker-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
    broker_ = std::make_unique<Broker>(kind, free_port());
    ASSERT_TRUE(broker_->start()) << "the broker did not start";
    ASSERT_TRUE(a_.start(broker_->url(), dir_, "a"));
    ASSERT_TRUE(b_.start(broker_->url(), dir_, "b"));
  }
  void TearDown() override {
    if (broker_) broker_->kill9();
    // The nodes (and their port files) outlive TearDown: remove it all.
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Publishes probes from `from` until `to` (subscribed to `topic`) gets
  // one: the broker subscription of `to`'s node is in place.
  static bool path_open(WireConn& from, WireConn& to, const std::string& topic) {
    int k = 0;
    return eventually([&] {
      (void)from.send_text("PUB " + topic + " probe" + std::to_string(k++));
      while (auto f = to.read_frame(50))
        if (f->text().starts_with("probe")) return true;
      return false;
    });
  }
  static void open_client(WireConn& c, std::uint16_t port, const std::string& path) {
    ASSERT_EQ(c.open(port, path), 101);
  }

  std::string dir_;
  std::unique_ptr<Broker> broker_;
  Node a_, b_;
};

// Two publishers on two nodes, subscribers on both: each subscriber gets
// every publication once, each publisher's in order; a node never delivers
// its own publication twice (once locally, never again from the broker).
TEST_P(BrokerBridge, CrossNodeOrderAndNoDuplicates) {
  WireConn a_sub, b_sub, a_pub, b_pub;
  open_client(a_sub, a_.port(), "/?sub=room");
  open_client(b_sub, b_.port(), "/?sub=room");
  open_client(a_pub, a_.port(), "/");
  open_client(b_pub, b_.port(), "/");
  ASSERT_TRUE(path_open(a_pub, b_sub, "room")) << a_.stderr_text();
  ASSERT_TRUE(path_open(b_pub, a_sub, "room")) << b_.stderr_text();
  constexpr int n = 400;
  std::thread ta([&] {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(a_pub.send_text("PUB room A:" + std::to_string(i)));
  });
  std::thread tb([&] {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(b_pub.send_text("PUB room B:" + std::to_string(i)));
  });
  ta.join();
  tb.join();
  for (WireConn* c : {&a_sub, &b_sub}) {
    Stream s;
    while (s.numbered < 2 * n) {
      auto f = c->read_frame(10000);
      ASSERT_TRUE(f) << "after " << s.numbered << " numbered";
      s.take(f->text());
    }
    EXPECT_EQ(s.error, "");
    EXPECT_EQ(s.last["A"], n - 1);
    EXPECT_EQ(s.last["B"], n - 1);
    // Nothing more: a duplicate of an own publication would come now.
    while (auto f = c->read_frame(300)) {
      if (!f->text().starts_with("probe")) ADD_FAILURE() << "extra message " << f->text();
    }
  }
  EXPECT_GE(a_.metric("ringlink_broker_forwarded_total"), n);
  EXPECT_GE(b_.metric("ringlink_broker_received_total"), n);
  EXPECT_EQ(a_.metric("ringlink_broker_gaps_total"), 0);
}

// The broker dies mid-traffic and comes back on the same port: both nodes
// stay up, local fan-out goes on, what could not be forwarded is counted
// (publish failures on the publishing node, a gap on the other), the
// bridges reconnect and resubscribe, and delivery resumes with nothing
// duplicated or reordered.
TEST_P(BrokerBridge, BrokerRestartIsSurvived) {
  WireConn a_sub, b_sub, a_pub;
  open_client(a_sub, a_.port(), "/?sub=feed");
  open_client(b_sub, b_.port(), "/?sub=feed");
  open_client(a_pub, a_.port(), "/");
  ASSERT_TRUE(path_open(a_pub, b_sub, "feed"));
  Stream seen_b, seen_a;
  seen_b.strict = false;
  int next = 0;
  auto publish = [&](int count) {
    for (int i = 0; i < count; ++i) ASSERT_TRUE(a_pub.send_text("PUB feed A:" + std::to_string(next++)));
  };
  auto read_until = [&](WireConn& c, Stream& s, long last) {
    while (s.last.count("A") == 0 || s.last["A"] < last) {
      auto f = c.read_frame(10000);
      if (!f) return false;
      s.take(f->text());
    }
    return true;
  };
  publish(100);
  ASSERT_TRUE(read_until(b_sub, seen_b, next - 1));
  ASSERT_TRUE(read_until(a_sub, seen_a, next - 1));

  broker_->kill9();
  ASSERT_TRUE(eventually([&] { return a_.metric("ringlink_broker_up") == 0; })) << a_.stderr_text();
  const int outage_first = next;
  publish(100);
  ASSERT_TRUE(read_until(a_sub, seen_a, next - 1)) << "local fan-out stopped with the broker";
  EXPECT_GE(a_.metric("ringlink_broker_publish_failures_total"), 1);

  ASSERT_TRUE(broker_->start());
  ASSERT_TRUE(eventually([&] { return a_.metric("ringlink_broker_up") == 1 && b_.metric("ringlink_broker_up") == 1; }));
  ASSERT_TRUE(path_open(a_pub, b_sub, "feed"));
  const int after_first = next;
  publish(100);
  ASSERT_TRUE(read_until(b_sub, seen_b, next - 1));
  ASSERT_TRUE(read_until(a_sub, seen_a, next - 1));
  EXPECT_EQ(seen_a.error, "") << "local delivery lost, duplicated or reordered";
  EXPECT_EQ(seen_b.error, "") << "cross-node delivery duplicated or reordered";
  EXPECT_EQ(seen_a.numbered, next);
  // Before the outage and after it, everything crossed; of the outage, what
  // crossed is counted as not lost, the rest as a gap on node B.
  const double gaps = b_.metric("ringlink_broker_gaps_total");
  EXPECT_GE(seen_b.numbered, outage_first + (next - after_first));
  EXPECT_GT(gaps, 0);
  EXPECT_GE(a_.metric("ringlink_broker_reconnects_total"), 1);
  EXPECT_GE(b_.metric("ringlink_broker_reconnects_total"), 1);
  EXPECT_TRUE(a_.alive());
  EXPECT_TRUE(b_.alive());
}

// A node killed with -9: the other node and the broker carry on, and a
// node started in its place is a new publisher (an epoch) to the others.
TEST_P(BrokerBridge, NodeKilledOthersCarryOn) {
  WireConn b_sub, a_pub;
  open_client(b_sub, b_.port(), "/?sub=t");
  open_client(a_pub, a_.port(), "/");
  ASSERT_TRUE(path_open(a_pub, b_sub, "t"));
  const double epochs = b_.metric("ringlink_broker_epochs_total");
  EXPECT_EQ(epochs, 1);
  a_.kill9();
  // Node B still serves its own links.
  WireConn b_pub;
  open_client(b_pub, b_.port(), "/");
  ASSERT_TRUE(b_pub.send_text("PUB t local"));
  auto f = b_sub.read_frame(10000);
  while (f && f->text().starts_with("probe")) f = b_sub.read_frame(10000);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->text(), "local");
  Node a2;
  ASSERT_TRUE(a2.start(broker_->url(), dir_, "a2"));
  WireConn a2_pub;
  open_client(a2_pub, a2.port(), "/");
  ASSERT_TRUE(path_open(a2_pub, b_sub, "t"));
  EXPECT_EQ(b_.metric("ringlink_broker_epochs_total"), 2);
}

// examples/chat as two instances over one broker: a room spans both.
TEST_P(BrokerBridge, ChatExampleRunsAsTwoInstances) {
  const std::string chat = itest::env_or_empty("RINGLINK_CHAT");
  ASSERT_EQ(::access(chat.c_str(), X_OK), 0) << "RINGLINK_CHAT not built";
  std::uint16_t ports[2] = {0, 0};
  std::unique_ptr<itest::PeerProcess> procs[2];
  for (int i = 0; i < 2; ++i) {
    std::string error;
    procs[i] = itest::PeerProcess::start({chat, "0", broker_->url()}, &error);
    ASSERT_TRUE(procs[i]) << error;
    auto line = procs[i]->read_line(10s);   // "chat: http://127.0.0.1:PORT/"
    ASSERT_TRUE(line) << procs[i]->stderr_text();
    const std::size_t colon = line->rfind(':');
    ports[i] = static_cast<std::uint16_t>(std::atoi(line->c_str() + colon + 1));
    ASSERT_NE(ports[i], 0) << *line;
  }
  WireConn alice, bob;
  open_client(alice, ports[0], "/ws?room=lobby");
  open_client(bob, ports[1], "/ws?room=lobby");
  EXPECT_EQ(alice.read_frame()->text(), "* 1 in lobby");   // counted per instance
  EXPECT_EQ(bob.read_frame()->text(), "* 1 in lobby");
  int k = 0;
  ASSERT_TRUE(eventually([&] {
    (void)alice.send_text("alice: hi " + std::to_string(k++));
    while (auto f = bob.read_frame(50))
      if (f->text().starts_with("alice: hi")) return true;
    return false;
  }));
  ASSERT_TRUE(bob.send_text("bob: hello"));
  bool got = false;
  while (auto f = alice.read_frame(5000)) {
    if (f->text() == "bob: hello") {
      got = true;
      break;
    }
  }
  EXPECT_TRUE(got) << "bob's message did not reach the other instance";
}

INSTANTIATE_TEST_SUITE_P(Brokers, BrokerBridge, ::testing::Values("redis", "nats"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
