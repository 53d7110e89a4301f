// ringlink-load --pubsub end to end: against one ringlink-echo --pubsub, and
// against two nodes joined by a real redis-server (a child on a free
// loopback port, stopped by PID). Every publication must be counted where it
// went: delivered exactly once everywhere it was owed, or counted lost. The
// broker killed before the run must show as losses (the cross-node share),
// so the loss counter is seen to work. Plus the stream tracker's own cases.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/peer_process.hpp"
#include "tests/wait_until.hpp"
#include "tools/load/options.hpp"
#include "tools/load/pubsub_stream.hpp"

namespace {

using namespace std::chrono_literals;
using ringlink::load::StreamTracker;

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

bool can_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// One ringlink-echo --pubsub [--broker URL].
struct Node {
  std::unique_ptr<itest::PeerProcess> proc;
  int port = 0;
  bool start(const std::string& dir, const std::string& name, const std::string& broker) {
    const std::string port_file = dir + "/" + name + ".port";
    std::vector<std::string> argv{itest::env_or_empty("RINGLINK_ECHO"), "--port", "0", "--port-file", port_file,
                                  "--reactors", "1", "--pubsub", "--ping-interval", "0"};
    if (!broker.empty()) argv.insert(argv.end(), {"--broker", broker});
    proc = itest::PeerProcess::start(argv);
    if (!proc) return false;
    // The port file is complete once it ends with its newline.
    (void)ringlink::test::eventually([&] {
      const std::string t = read_file(port_file);
      return !t.empty() && t.back() == '\n';
    }, ringlink::test::hang_deadline, 20ms);
    port = std::atoi(read_file(port_file).c_str());
    return port > 0;
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port) + "/"; }
};

struct LoadRun {
  int status = -1;
  std::string report;
  std::string json;
  double number(const std::string& key) const {
    const std::size_t at = json.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::strtod(json.c_str() + at + key.size() + 3, nullptr);
  }
  std::string describe() const { return "exit " + std::to_string(status) + "\n" + report; }
};

// `during`, if given, runs while the load does (it is started first).
template <class During>
LoadRun run_load(const std::string& dir, std::vector<std::string> args, During during) {
  const std::string json = dir + "/out.json";
  std::filesystem::remove(json);
  std::vector<std::string> argv{itest::env_or_empty("RINGLINK_LOAD"), "--pubsub"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", json});
  LoadRun r;
  auto p = itest::PeerProcess::start(argv);
  if (!p) return r;
  during();
  const std::optional<int> st = p->wait(60s);
  if (st && WIFEXITED(*st)) r.status = WEXITSTATUS(*st);
  r.report = p->pending_stdout() + p->stderr_text();
  r.json = read_file(json);
  return r;
}

LoadRun run_load(const std::string& dir, std::vector<std::string> args) {
  return run_load(dir, std::move(args), [] {});
}

class PubsubRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (itest::env_or_empty("RINGLINK_LOAD").empty() || itest::env_or_empty("RINGLINK_ECHO").empty())
      GTEST_SKIP() << "RINGLINK_LOAD/RINGLINK_ECHO not set";
    dir_ = std::filesystem::temp_directory_path().string() + "/ringlink-pubsub-load-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // A redis-server child; false (and a skip) without one.
  bool start_redis() {
    if (itest::env_or_empty("RINGLINK_HAVE_REDIS") != "1" || ::access("/usr/bin/redis-server", X_OK) != 0) return false;
    redis_port_ = free_port();
    redis_ = itest::PeerProcess::start({"/usr/bin/redis-server", "--port", std::to_string(redis_port_), "--bind",
                                        "127.0.0.1", "--save", "", "--appendonly", "no"});
    return redis_ && ringlink::test::eventually([&] { return can_connect(redis_port_); }, ringlink::test::hang_deadline, 20ms);
  }
  void kill_redis() {
    redis_->send_signal(SIGKILL);
    (void)redis_->wait(5s);
    redis_.reset();
  }
  std::string redis_url() const { return "redis://127.0.0.1:" + std::to_string(redis_port_); }

  std::string dir_;
  std::unique_ptr<itest::PeerProcess> redis_;
  std::uint16_t redis_port_ = 0;
};

// 12 subscribers with 2 of 4 topics each: subscriber i takes 2i%4 and
// 2i%4+1, so every topic has exactly 6 subscribers and each publication is
// owed 6 deliveries.
const std::vector<std::string> six_per_topic{"--subs", "12", "--pubs", "4", "--topics", "4", "--sub-topics", "2"};

void expect_exact(const LoadRun& r, double per_publication) {
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("streams_confirmed"), r.number("streams")) << r.describe();
  EXPECT_GT(r.number("published"), 0) << r.describe();
  EXPECT_EQ(r.number("expected"), r.number("published") * per_publication) << r.describe();
  EXPECT_EQ(r.number("delivered"), r.number("expected")) << r.describe();
  EXPECT_EQ(r.number("lost"), 0) << r.describe();
  EXPECT_EQ(r.number("duplicates"), 0) << r.describe();
  EXPECT_EQ(r.number("reordered"), 0) << r.describe();
  EXPECT_EQ(r.number("malformed"), 0) << r.describe();
  EXPECT_EQ(r.number("count"), r.number("delivered")) << "one latency sample per delivery\n" << r.describe();
}

TEST_F(PubsubRuns, OneNodeDeliversEveryPublicationOnce) {
  Node n;
  ASSERT_TRUE(n.start(dir_, "a", ""));
  std::vector<std::string> args{n.url(), "--rate", "400", "--duration", "1s"};
  args.insert(args.end(), six_per_topic.begin(), six_per_topic.end());
  expect_exact(run_load(dir_, args), 6);
}

TEST_F(PubsubRuns, SubscribeByMessageOnTwoThreads) {
  Node n;
  ASSERT_TRUE(n.start(dir_, "a", ""));
  std::vector<std::string> args{n.url(), "--rate", "400", "--duration", "1s", "--subscribe-with", "message",
                                "--threads", "2"};
  args.insert(args.end(), six_per_topic.begin(), six_per_topic.end());
  expect_exact(run_load(dir_, args), 6);
}

TEST_F(PubsubRuns, TwoNodesOverRedisCountCrossNodeDeliveries) {
  if (!start_redis()) GTEST_SKIP() << "no redis-server (or built without hiredis)";
  Node a, b;
  ASSERT_TRUE(a.start(dir_, "a", redis_url()));
  ASSERT_TRUE(b.start(dir_, "b", redis_url()));
  // Subscribers and publishers alternate between the nodes: half of what
  // every subscriber is owed comes through the broker.
  std::vector<std::string> args{a.url(), b.url(), "--rate", "400", "--duration", "1s"};
  args.insert(args.end(), six_per_topic.begin(), six_per_topic.end());
  expect_exact(run_load(dir_, args), 6);
}

TEST_F(PubsubRuns, PublishersOnOneNodeSubscribersOnTheOther) {
  if (!start_redis()) GTEST_SKIP() << "no redis-server (or built without hiredis)";
  Node a, b;
  ASSERT_TRUE(a.start(dir_, "a", redis_url()));
  ASSERT_TRUE(b.start(dir_, "b", redis_url()));
  // --pub-nodes 1: every delivery goes through the broker.
  std::vector<std::string> args{a.url(), b.url(), "--pub-nodes", "1", "--rate", "400", "--duration", "1s"};
  args.insert(args.end(), six_per_topic.begin(), six_per_topic.end());
  expect_exact(run_load(dir_, args), 6);
}

TEST_F(PubsubRuns, BrokerDownShowsTheCrossNodeLosses) {
  if (!start_redis()) GTEST_SKIP() << "no redis-server (or built without hiredis)";
  Node a, b;
  ASSERT_TRUE(a.start(dir_, "a", redis_url()));
  ASSERT_TRUE(b.start(dir_, "b", redis_url()));
  kill_redis();
  std::vector<std::string> args{a.url(), b.url(), "--rate", "400", "--duration", "1s", "--confirm-timeout", "1s",
                                "--grace", "1s"};
  args.insert(args.end(), six_per_topic.begin(), six_per_topic.end());
  const LoadRun r = run_load(dir_, args);
  ASSERT_EQ(r.status, 1) << "losses are errors\n" << r.describe();
  // Only the local half of the streams is confirmed, and only local
  // deliveries arrive: every cross-node one is counted lost, none twice.
  EXPECT_EQ(r.number("streams_confirmed") * 2, r.number("streams")) << r.describe();
  EXPECT_EQ(r.number("expected"), r.number("published") * 6) << r.describe();
  EXPECT_GT(r.number("delivered"), 0) << r.describe();
  EXPECT_GT(r.number("lost"), 0) << r.describe();
  EXPECT_EQ(r.number("delivered") + r.number("lost"), r.number("expected")) << r.describe();
  EXPECT_EQ(r.number("duplicates"), 0) << r.describe();
  EXPECT_NE(r.report.find("had no warm-up"), std::string::npos) << r.describe();
}

TEST_F(PubsubRuns, SubscriberNodeKilledShowsLosses) {
  if (!start_redis()) GTEST_SKIP() << "no redis-server (or built without hiredis)";
  Node a, b;
  ASSERT_TRUE(a.start(dir_, "a", redis_url()));
  ASSERT_TRUE(b.start(dir_, "b", redis_url()));
  std::vector<std::string> args{a.url(), b.url(), "--rate", "400", "--duration", "3s", "--grace", "1s"};
  args.insert(args.end(), six_per_topic.begin(), six_per_topic.end());
  // Node a dies with half of the subscribers on it, during the run or, on a
  // very slow machine, before publishing starts: either way what they were
  // owed after that is lost.
  const LoadRun r = run_load(dir_, args, [&] {
    std::this_thread::sleep_for(1s);
    a.proc->send_signal(SIGKILL);
  });
  ASSERT_EQ(r.status, 1) << r.describe();
  EXPECT_GT(r.number("lost"), 0) << r.describe();
  EXPECT_GT(r.number("delivered"), 0) << "node b's subscribers go on\n" << r.describe();
  EXPECT_EQ(r.number("delivered") + r.number("lost"), r.number("expected")) << r.describe();
  EXPECT_EQ(r.number("duplicates"), 0) << r.describe();
  EXPECT_NE(r.report.find("closed early"), std::string::npos) << r.describe();
}

TEST_F(PubsubRuns, RefusesProcesses) {
  const LoadRun r = run_load(dir_, {"ws://127.0.0.1:9/", "--rate", "10", "--processes", "2"});
  EXPECT_EQ(r.status, 2) << r.describe();
  EXPECT_NE(r.report.find("--processes does not apply to --pubsub"), std::string::npos) << r.describe();
}

TEST(PubsubOptions, ParseAndRefuse) {
  using ringlink::load::ParseOutcome;
  auto parse = [](std::vector<std::string_view> args, std::string& error) {
    ringlink::load::Options o;
    const ParseOutcome out = ringlink::load::parse_options(args, o, error);
    return std::pair{out, o};
  };
  std::string error;
  auto [ok, o] = parse({"--pubsub", "ws://127.0.0.1:1/", "ws://127.0.0.1:2/x", "--subs", "5", "--pubs", "2", "--topics",
                        "3", "--sub-topics", "2", "--pub-nodes", "1", "--rate", "10"}, error);
  ASSERT_EQ(ok, ParseOutcome::run) << error;
  EXPECT_TRUE(o.pubsub.enabled);
  ASSERT_EQ(o.pubsub.urls.size(), 2u);
  EXPECT_EQ(o.pubsub.urls[1], "ws://127.0.0.1:2/x");
  EXPECT_EQ(o.pubsub.subscribers, 5u);
  EXPECT_EQ(o.pubsub.topics_per_sub, 2u);
  EXPECT_EQ(o.pubsub.pub_nodes, 1u);
  const std::vector<std::pair<std::vector<std::string_view>, std::string>> bad{
      {{"ws://127.0.0.1:1/", "--subs", "5"}, "need --pubsub"},
      {{"ws://127.0.0.1:1/", "ws://127.0.0.1:2/"}, "unexpected argument"},
      {{"--pubsub", "ws://127.0.0.1:1/"}, "needs --rate"},
      {{"--pubsub", "ws://127.0.0.1:1/", "--rate", "1", "--mode", "rate"}, "mode of its own"},
      {{"--pubsub", "ws://127.0.0.1:1/", "--rate", "1", "--pub-nodes", "1"}, "--pub-nodes"},
      {{"--pubsub", "ws://127.0.0.1:1/", "--rate", "1", "--topics", "2", "--sub-topics", "3"}, "--sub-topics"},
      {{"--pubsub", "ws://127.0.0.1:1/", "ws://x/", "--rate", "1"}, "host"},
      {{"--pubsub", "ws://127.0.0.1:1/", "--rate", "1", "--subs", "0"}, "--subs"},
  };
  for (const auto& [args, want] : bad) {
    error.clear();
    EXPECT_EQ(parse(args, error).first, ParseOutcome::error) << want;
    EXPECT_NE(error.find(want), std::string::npos) << error;
  }
}

TEST(StreamTracker, CountsLateDuplicateAndMissing) {
  StreamTracker s;
  EXPECT_EQ(s.on_receive(0), StreamTracker::Arrival::in_order);
  EXPECT_EQ(s.on_receive(2), StreamTracker::Arrival::ahead);
  EXPECT_EQ(s.on_receive(2), StreamTracker::Arrival::duplicate);
  EXPECT_EQ(s.on_receive(1), StreamTracker::Arrival::late);
  EXPECT_EQ(s.on_receive(1), StreamTracker::Arrival::duplicate);
  EXPECT_EQ(s.on_receive(5), StreamTracker::Arrival::ahead);
  EXPECT_EQ(s.unique(), 4u);
  EXPECT_EQ(s.duplicates(), 2u);
  EXPECT_EQ(s.reordered(), 1u);
  EXPECT_EQ(s.next_expected(), 6u);  // 3 and 4 never came: 6 - 4 lost so far
  EXPECT_EQ(s.on_receive(200), StreamTracker::Arrival::ahead);
  EXPECT_EQ(s.on_receive(200 - 63), StreamTracker::Arrival::late);
  EXPECT_EQ(s.on_receive(200 - 63), StreamTracker::Arrival::duplicate);
  EXPECT_EQ(s.on_receive(200 - 64), StreamTracker::Arrival::too_old);
}

}  // namespace
