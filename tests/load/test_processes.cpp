// --processes in both tools, end to end on loopback: ringlink-echo's processes
// share one port (port 0) and each takes links, SIGTERM stops every one of
// them with close 1001 and one merged summary; ringlink-load's processes
// split the links over several 127.0.0.x sources and their merged counts are
// exactly what the server saw. Deadlines only stop hangs; nothing is timed.
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/load/load_test_util.hpp"
#include "tests/wait_until.hpp"

namespace {

using namespace std::chrono_literals;
using namespace load_test;

// The number right after `label`, or UINT64_MAX.
std::uint64_t number_after(const std::string& text, const std::string& label, std::size_t from = 0) {
  const std::size_t at = text.find(label, from);
  if (at == std::string::npos) return UINT64_MAX;
  std::size_t i = at + label.size();
  if (i >= text.size() || text[i] < '0' || text[i] > '9') return UINT64_MAX;
  std::uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
  return v;
}

int start_echo(const Child& echo, const std::string& port_file) {
  const int port = wait_for_port(port_file);
  return echo.started() ? port : 0;
}

// The PIDs whose parent is `parent` (from /proc/PID/stat's fourth field).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/proc")) {
    while (const dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  for (const std::string& name : names) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_file("/proc/" + name + "/stat");
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::atol(name.c_str())));
  }
  return out;
}

// Local IPv4 addresses of TCP sockets connected to `port` (/proc/net/tcp).
std::set<std::string> sources_to(int port) {
  std::set<std::string> out;
  std::istringstream lines(read_file("/proc/net/tcp"));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string slot, local, remote;
    f >> slot >> local >> remote;
    if (remote.size() < 13 || std::strtol(remote.substr(9).c_str(), nullptr, 16) != port) continue;
    const unsigned long a = std::strtoul(local.substr(0, 8).c_str(), nullptr, 16);  // little-endian
    out.insert(std::to_string(a & 0xff) + "." + std::to_string((a >> 8) & 0xff) + "." +
               std::to_string((a >> 16) & 0xff) + "." + std::to_string(a >> 24));
  }
  return out;
}

// GET `path` from 127.0.0.1:port; the whole response, or "" when it failed.
std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// The samples of one Prometheus series, one per label set, in order.
std::vector<std::uint64_t> samples_of(const std::string& text, const std::string& name) {
  std::vector<std::uint64_t> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) != 0) continue;
    const std::size_t space = line.rfind(' ');
    if (space != std::string::npos) out.push_back(std::strtoull(line.c_str() + space + 1, nullptr, 10));
  }
  return out;
}

class Processes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("RINGLINK_LOAD").empty() || env("RINGLINK_ECHO").empty()) GTEST_SKIP() << "RINGLINK_LOAD/RINGLINK_ECHO not set";
  }
  std::vector<std::string> load_argv(int port, std::vector<std::string> args, const std::string& json) const {
    std::vector<std::string> argv{env("RINGLINK_LOAD"), "ws://127.0.0.1:" + std::to_string(port) + "/"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--json", json});
    return argv;
  }
  TempDir dir_;
};

// Proves: two echo processes on one port (picked from port 0) both take links;
// SIGTERM to the parent closes every open link with 1001, stops both children
// and prints one summary whose per-process counts add up to the total.
TEST_F(Processes, EchoProcessesShareThePortAndStopTogether) {
  Child echo({env("RINGLINK_ECHO"), "--processes", "2", "--reactors", "1", "--port", "0", "--port-file",
              dir_.file("port")},
             dir_.file("echo.out"));
  const int port = start_echo(echo, dir_.file("port"));
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));
  const std::vector<pid_t> kids = children_of(echo.pid());
  EXPECT_EQ(kids.size(), 2u);

  // Held open until the server goes (SIGTERM comes well inside the 8 s):
  // every link must end with 1001.
  Child held(load_argv(port, {"--mode", "idle", "--conns", "40", "--duration", "8", "--progress"}, dir_.file("idle.json")),
             dir_.file("idle.out"));
  ASSERT_TRUE(ringlink::test::eventually(
      [&] { return read_file(dir_.file("idle.out")).find("conns 40/40") != std::string::npos; }, 30s, 20ms))
      << read_file(dir_.file("idle.out"));

  ASSERT_EQ(::kill(echo.pid(), SIGTERM), 0);
  const int status = echo.wait(30s);
  const std::string out = read_file(dir_.file("echo.out"));
  EXPECT_EQ(status, 0) << out;
  for (pid_t k : kids) EXPECT_NE(::kill(k, 0), 0) << "child " << k << " outlived the parent";

  EXPECT_EQ(number_after(out, "accepted "), 40u) << out;
  EXPECT_EQ(number_after(out, "links open "), 0u) << out;
  EXPECT_EQ(number_after(out, "shutdown="), 40u) << out;
  const std::string per = "accepted per process: ";
  const std::size_t at = out.find(per);
  ASSERT_NE(at, std::string::npos) << out;
  const std::uint64_t first = number_after(out, per);
  const std::uint64_t second = number_after(out, " ", at + per.size());
  EXPECT_GT(first, 0u) << out;
  EXPECT_GT(second, 0u) << out;
  EXPECT_EQ(first + second, 40u) << out;

  // The load tool saw 40 closes with 1001 (an error for it, so it exits 1).
  EXPECT_EQ(held.wait(30s), 1) << read_file(dir_.file("idle.out"));
  const std::string json = read_file(dir_.file("idle.json"));
  EXPECT_EQ(number_after(json, "\"1001\":"), 40u) << json;
}

// Proves, at the size the scale benchmark's processes work at in small: two
// echo processes hold 4,000 links opened by two load processes (2 x 2,000),
// the load tool's merged report counts every one of them, and SIGTERM ends
// all 4,000 with 1001 and both server processes cleanly.
TEST_F(Processes, TwoByTwoThousandLinksMergeAndStopCleanly) {
  constexpr std::uint64_t links = 4000;
  Child echo({env("RINGLINK_ECHO"), "--processes", "2", "--reactors", "1", "--port", "0", "--port-file",
              dir_.file("port")},
             dir_.file("echo.out"));
  const int port = start_echo(echo, dir_.file("port"));
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));
  const std::vector<pid_t> kids = children_of(echo.pid());
  EXPECT_EQ(kids.size(), 2u);

  Child held(load_argv(port, {"--processes", "2", "--mode", "idle", "--conns", std::to_string(links),
                              "--connect-rate", "4000", "--duration", "20", "--progress"},
                       dir_.file("idle.json")),
             dir_.file("idle.out"));
  ASSERT_TRUE(ringlink::test::eventually(
      [&] {
        return read_file(dir_.file("idle.out")).find("conns " + std::to_string(links) + "/" + std::to_string(links)) !=
               std::string::npos;
      },
      90s, 50ms))
      << read_file(dir_.file("idle.out"));

  ASSERT_EQ(::kill(echo.pid(), SIGTERM), 0);
  const int status = echo.wait(60s);
  const std::string out = read_file(dir_.file("echo.out"));
  EXPECT_EQ(status, 0) << out;
  for (pid_t k : kids) EXPECT_NE(::kill(k, 0), 0) << "child " << k << " outlived the parent";
  EXPECT_EQ(number_after(out, "accepted "), links) << out;
  EXPECT_EQ(number_after(out, "links open "), 0u) << out;
  EXPECT_EQ(number_after(out, "shutdown="), links) << out;
  const std::string per = "accepted per process: ";
  const std::size_t at = out.find(per);
  ASSERT_NE(at, std::string::npos) << out;
  const std::uint64_t first = number_after(out, per);
  const std::uint64_t second = number_after(out, " ", at + per.size());
  EXPECT_GT(first, 0u) << out;
  EXPECT_GT(second, 0u) << out;
  EXPECT_EQ(first + second, links) << out;

  // Both load processes' links, merged: every one opened and closed by the
  // server with 1001 (an error for the load tool, so it exits 1). An idle
  // run lasts its --duration even once its links are gone.
  EXPECT_EQ(held.wait(60s), 1) << read_file(dir_.file("idle.out"));
  const std::string json = read_file(dir_.file("idle.json"));
  EXPECT_EQ(number_after(json, "\"processes\":"), 2u) << json;
  EXPECT_EQ(number_after(json, "\"opened\":"), links) << json;
  EXPECT_EQ(number_after(json, "\"1001\":"), links) << json;
}

// Proves: with --processes 2 --metrics-endpoint, /metrics answers for both
// processes whichever one takes the request: both reactors' series are there
// and they add up to every link the load opened (one process alone has only
// its share of them).
TEST_F(Processes, MetricsEndpointCoversEveryProcess) {
  Child echo({env("RINGLINK_ECHO"), "--processes", "2", "--reactors", "1", "--metrics-endpoint", "--port", "0",
              "--port-file", dir_.file("port")},
             dir_.file("echo.out"));
  const int port = start_echo(echo, dir_.file("port"));
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));

  Child load(load_argv(port, {"--conns", "40", "--duration", "300ms"}, dir_.file("out.json")), dir_.file("load.out"));
  ASSERT_EQ(load.wait(60s), 0) << read_file(dir_.file("load.out"));
  const std::string json = read_file(dir_.file("out.json"));
  ASSERT_EQ(number_after(json, "\"opened\":"), 40u) << json;

  // Each process publishes its counters ten times a second: ask until both
  // have, a few times so that both processes get to answer.
  std::string body;
  for (int i = 0; i < 6; ++i) {
    std::vector<std::uint64_t> accepted;
    EXPECT_TRUE(ringlink::test::eventually(
        [&] {
          body = http_get(port, "/metrics");
          accepted = samples_of(body, "ringlink_links_accepted_total");
          return accepted.size() == 2 && accepted[0] + accepted[1] >= 40;
        },
        30s, 20ms))
        << body;
    ASSERT_EQ(accepted.size(), 2u) << body;
    EXPECT_GT(accepted[0], 0u) << body;
    EXPECT_GT(accepted[1], 0u) << body;
  }
  EXPECT_EQ(samples_of(body, "ringlink_messages_in_total").size(), 2u) << body;

  ASSERT_EQ(::kill(echo.pid(), SIGTERM), 0);
  EXPECT_EQ(echo.wait(30s), 0) << read_file(dir_.file("echo.out"));
}

// Proves: two load processes split 40 links, connect from more than one
// 127.0.0.x, lose nothing, and their merged counts equal what the server counted.
TEST_F(Processes, LoadProcessesMergeExactly) {
  Child echo({env("RINGLINK_ECHO"), "--reactors", "1", "--port", "0", "--port-file", dir_.file("port")},
             dir_.file("echo.out"));
  const int port = start_echo(echo, dir_.file("port"));
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));

  Child load(load_argv(port, {"--processes", "2", "--conns", "40", "--inflight", "2", "--duration", "2",
                              "--connect-rate", "400"}, dir_.file("out.json")),
             dir_.file("load.out"));
  std::set<std::string> sources;
  // Sampled while the run lasts: the sources are visible only while connected.
  ringlink::test::eventually(
      [&] {
        for (const std::string& s : sources_to(port)) sources.insert(s);
        return load.exited();
      },
      60s, 50ms);
  const int status = load.wait(1s);
  const std::string report = read_file(dir_.file("load.out"));
  const std::string json = read_file(dir_.file("out.json"));
  ASSERT_EQ(status, 0) << report;
  EXPECT_GE(sources.size(), 2u) << "sources seen: " << sources.size();
  for (const std::string& s : sources) EXPECT_EQ(s.rfind("127.0.0.", 0), 0u) << s;

  EXPECT_EQ(number_after(json, "\"errors\":"), 0u) << json;
  EXPECT_EQ(number_after(json, "\"opened\":"), 40u) << json;
  EXPECT_EQ(number_after(json, "\"lost\":"), 0u) << json;
  EXPECT_EQ(number_after(json, "\"unanswered\":"), 0u) << json;
  EXPECT_EQ(number_after(json, "\"processes\":"), 2u) << json;
  // The two processes' connections, one index each.
  EXPECT_NE(json.find("\"index\":39,"), std::string::npos) << json;
  const std::uint64_t sent = number_after(json, "\"total_sent\":");
  const std::uint64_t received = number_after(json, "\"total_received\":");
  EXPECT_EQ(sent, received) << json;

  ASSERT_EQ(::kill(echo.pid(), SIGTERM), 0);
  ASSERT_EQ(echo.wait(30s), 0);
  const std::string out = read_file(dir_.file("echo.out"));
  EXPECT_EQ(number_after(out, "accepted "), 40u) << out;
  EXPECT_EQ(number_after(out, "messages in "), sent) << out << json;
  EXPECT_EQ(number_after(out, ", out "), received) << out << json;
}

}  // namespace
