// ringlink-load end to end: the binary against ringlink-echo (every mode),
// python3-websockets and gorilla/websocket echo servers (no errors allowed),
// and a deliberately faulty python server whose faults must appear in the
// counts and the exit status. Loopback only, ports chosen by the kernel.
// The tests judge what the tool counts and whether it keeps its schedule
// (never sending ahead of it), not how many messages a second this machine
// moves: that is bench/'s work.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/load/load_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace load_test;

// A server under test: started, its port read from the port file.
struct Server {
  std::unique_ptr<Child> child;
  int port = 0;
};

Server start_server(const TempDir& dir, std::vector<std::string> argv, bool port_flag) {
  const std::string port_file = dir.file("port");
  if (port_flag) {
    argv.insert(argv.end(), {"--port", "0", "--port-file", port_file});
  } else {
    argv.push_back(port_file);
  }
  Server s;
  s.child = std::make_unique<Child>(argv, dir.file("server.out"));
  if (s.child->started()) s.port = wait_for_port(port_file, 15s);
  return s;
}

Server ringlink_echo(const TempDir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{env("RINGLINK_ECHO"), "--reactors", "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return start_server(dir, argv, true);
}

struct LoadRun {
  int status = -1;
  std::string report;  // stdout + stderr
  std::string json;
  double wall_s = 0;   // from the start of the process to its exit, as this test saw it

  // The first number after "key": in the JSON (keys are unique enough for the tests).
  double number(const std::string& key, const std::string& after = {}) const {
    std::size_t from = after.empty() ? 0 : json.find("\"" + after + "\"");
    if (from == std::string::npos) return -1;
    const std::size_t at = json.find("\"" + key + "\":", from);
    if (at == std::string::npos) return -1;
    return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
  }
  std::string describe() const { return "exit " + std::to_string(status) + "\n" + report; }
};

LoadRun run_load(const TempDir& dir, int port, std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
  const std::string json = dir.file("out.json");
  std::remove(json.c_str());
  std::vector<std::string> argv{env("RINGLINK_LOAD"), "ws://127.0.0.1:" + std::to_string(port) + "/"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", json});
  LoadRun r;
  const auto start = std::chrono::steady_clock::now();
  Child load(argv, dir.file("load.out"));
  r.status = load.wait(timeout);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.report = read_file(dir.file("load.out"));
  r.json = read_file(json);
  return r;
}

// start_server puts the port file last; python wants it before the mode.
Server python_server_fixed(const TempDir& dir, const std::string& mode) {
  const std::string port_file = dir.file("port");
  Server s;
  s.child = std::make_unique<Child>(
      std::vector<std::string>{"/usr/bin/python3", env("RINGLINK_LOAD_PEERS") + "/ws_echo.py", port_file, mode},
      dir.file("server.out"));
  if (s.child->started()) s.port = wait_for_port(port_file, 15s);
  return s;
}

class LoadRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("RINGLINK_LOAD").empty() || env("RINGLINK_ECHO").empty()) GTEST_SKIP() << "RINGLINK_LOAD/RINGLINK_ECHO not set";
  }
  TempDir dir_;
};

// ---------------------------------------------------------------------------
// Against ringlink-echo

TEST_F(LoadRuns, EchoModeIsClean) {
  Server s = ringlink_echo(dir_);
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--conns", "8", "--inflight", "4", "--duration", "1", "--warmup", "200ms"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0) << r.describe();
  EXPECT_EQ(r.number("opened"), 8);
  EXPECT_EQ(r.number("open_at_end"), 8);
  EXPECT_GT(r.number("msgs_received"), 0) << r.describe();
  EXPECT_GT(r.number("count", "latency"), 0);
  EXPECT_GT(r.number("min", "fairness"), 0);
  EXPECT_EQ(r.number("unanswered", "checks"), 0);
  EXPECT_NE(r.json.find("\"self_saturated\":"), std::string::npos);
  EXPECT_NE(r.report.find("errors: 0"), std::string::npos) << r.report;
}

// --plot draws a PNG with gnuplot (make deps installs it); without gnuplot
// the report says so and the exit status is unchanged.
TEST_F(LoadRuns, PlotDrawsAPngOrSaysWhyNot) {
  Server s = ringlink_echo(dir_);
  ASSERT_GT(s.port, 0);
  const std::string png = dir_.file("latency.png");
  const LoadRun r = run_load(dir_, s.port, {"--conns", "4", "--duration", "500ms", "--plot", png});
  ASSERT_EQ(r.status, 0) << r.describe();
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const std::string bytes = read_file(png);
    ASSERT_GT(bytes.size(), 1000u) << r.describe();
    EXPECT_EQ(bytes.substr(1, 3), "PNG");
    EXPECT_NE(r.report.find("plot written to"), std::string::npos) << r.report;
  } else {
    EXPECT_NE(r.report.find("--plot needs gnuplot"), std::string::npos) << r.report;
  }
}

TEST_F(LoadRuns, TextModeWithVariableSizesAndTwoThreads) {
  Server s = ringlink_echo(dir_);
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--conns", "6", "--threads", "2", "--text", "--size", "54-3000", "--duration", "1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0);
  EXPECT_EQ(r.number("opened"), 6);
  EXPECT_GT(r.number("msgs_received"), 0);
}

TEST_F(LoadRuns, RateModeKeepsTheScheduleAndReportsBothLatencies) {
  Server s = ringlink_echo(dir_);
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--mode", "rate", "--rate", "4000", "--conns", "10", "--duration", "1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0);
  // Never ahead of the schedule: at most one message per 1/4000 s of the
  // process's life, plus the one due at the start. A slow machine can only
  // lag (send_lag reports by how much); a tool that ignored the rate would
  // send as fast as the echoes come back.
  EXPECT_GT(r.number("total_sent"), 0) << r.describe();
  EXPECT_LE(r.number("total_sent"), 4000 * r.wall_s + 1) << r.describe();
  EXPECT_GT(r.number("count", "latency_uncorrected"), 0);
  EXPECT_GT(r.number("count", "send_lag"), 0);
  // Corrected latency is never below the uncorrected one.
  EXPECT_GE(r.number("p50_us", "latency"), r.number("p50_us", "latency_uncorrected") - 0.5);
}

TEST_F(LoadRuns, PushModeMeasuresEveryConnection) {
  Server s = ringlink_echo(dir_, {"--broadcast"});
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--mode", "push", "--rate", "200", "--conns", "5", "--duration", "1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0);
  // Each push reaches every connection, nothing more: at most 5 receipts per
  // push, and pushes at most as the schedule allows (see the rate mode).
  EXPECT_GT(r.number("total_sent"), 0) << r.describe();
  EXPECT_LE(r.number("total_sent"), 200 * r.wall_s + 1) << r.describe();
  EXPECT_LE(r.number("total_received"), 5 * r.number("total_sent")) << r.describe();
  EXPECT_GT(r.number("min", "fairness"), 0);
  EXPECT_EQ(r.number("lost", "checks"), 0);
}

TEST_F(LoadRuns, PushModeOnlyReceivingWithRateZero) {
  Server s = ringlink_echo(dir_, {"--broadcast"});
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--mode", "push", "--conns", "3", "--duration", "500ms"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0);
  EXPECT_EQ(r.number("total_received"), 0);
  EXPECT_EQ(r.number("open_at_end"), 3);
}

TEST_F(LoadRuns, IdleModePingsAndCountsSurvivors) {
  Server s = ringlink_echo(dir_);
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--mode", "idle", "--conns", "20", "--ping-interval", "100ms", "--duration", "1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0);
  EXPECT_EQ(r.number("open_at_end"), 20);
  // Every connection pinged, none more often than every 100 ms.
  EXPECT_GE(r.number("pings"), 20) << r.describe();
  EXPECT_LE(r.number("pings"), 20 * (r.wall_s / 0.1 + 1)) << r.describe();
  EXPECT_EQ(r.number("pongs_missing"), 0);
  EXPECT_NE(r.report.find("20 of 20 connections survived"), std::string::npos) << r.report;
}

TEST_F(LoadRuns, SourceAddressesAndConnectRate) {
  Server s = ringlink_echo(dir_);
  ASSERT_GT(s.port, 0);
  const auto t0 = std::chrono::steady_clock::now();
  const LoadRun r = run_load(dir_, s.port,
                         {"--conns", "6", "--source-ips", "127.0.0.1-127.0.0.3", "--connect-rate", "10", "--duration", "300ms"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("opened"), 6);
  EXPECT_EQ(r.number("source_ips"), 3);
  // 6 connections at 10/s: the last starts after 0.5 s. Lower bounds only:
  // the rate limit holds however slow the machine.
  EXPECT_GE(r.number("ramp_s"), 0.45);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 500ms);
}

TEST_F(LoadRuns, ConnectErrorsAreCountedByErrno) {
  // A port nobody listens on: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  const LoadRun r = run_load(dir_, ntohs(a.sin_port), {"--conns", "3", "--duration", "200ms"});
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_EQ(r.number("errors"), 3);
  EXPECT_EQ(r.number("111", "connect_errors_by_errno"), 3) << r.json;  // ECONNREFUSED
  EXPECT_EQ(r.number("opened"), 0);
  // Within --max-errors the run passes.
  const LoadRun tolerated = run_load(dir_, ntohs(a.sin_port), {"--conns", "3", "--duration", "200ms", "--max-errors", "3"});
  EXPECT_EQ(tolerated.status, 0) << tolerated.describe();
}

// ---------------------------------------------------------------------------
// Other servers

TEST_F(LoadRuns, PythonWebsocketsEchoIsClean) {
  Server s = python_server_fixed(dir_, "echo");
  ASSERT_GT(s.port, 0) << read_file(dir_.file("server.out"));
  for (const char* kind : {"--binary", "--text"}) {
    const LoadRun r = run_load(dir_, s.port, {"--conns", "4", "--inflight", "2", kind, "--size", "60-2000", "--duration", "1"});
    ASSERT_EQ(r.status, 0) << kind << " " << r.describe();
    EXPECT_EQ(r.number("errors"), 0);
    EXPECT_GT(r.number("msgs_received"), 0);
  }
}

TEST_F(LoadRuns, GorillaEchoIsClean) {
  if (env("RINGLINK_GO_ECHO").empty()) GTEST_SKIP() << "go not found at configure time";
  Server s = start_server(dir_, {env("RINGLINK_GO_ECHO")}, false);
  ASSERT_GT(s.port, 0) << read_file(dir_.file("server.out"));
  const LoadRun r = run_load(dir_, s.port, {"--conns", "10", "--inflight", "2", "--duration", "1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0);
  EXPECT_GT(r.number("msgs_received"), 0);
  const LoadRun rate = run_load(dir_, s.port, {"--mode", "rate", "--rate", "2000", "--conns", "4", "--duration", "1", "--text"});
  ASSERT_EQ(rate.status, 0) << rate.describe();
  EXPECT_EQ(rate.number("errors"), 0);
}

// ---------------------------------------------------------------------------
// A faulty server: every fault is counted, per connection, and fails the run.

TEST_F(LoadRuns, CorruptedDuplicatedAndMissingEchoesAreCounted) {
  Server s = python_server_fixed(dir_, "corrupt");
  ASSERT_GT(s.port, 0) << read_file(dir_.file("server.out"));
  const LoadRun r = run_load(dir_, s.port, {"--conns", "3", "--inflight", "4", "--duration", "1"});
  EXPECT_EQ(r.status, 1) << r.describe();
  // Per connection: one changed filler byte, one changed header byte (that
  // message is also lost: its number is unreadable), one duplicate, one never echoed.
  EXPECT_EQ(r.number("bad_filler"), 3) << r.json;
  EXPECT_EQ(r.number("bad_header"), 3);
  EXPECT_EQ(r.number("duplicates", "checks"), 3);
  EXPECT_EQ(r.number("lost", "checks"), 6);
  EXPECT_EQ(r.number("unanswered", "checks"), 0);
  EXPECT_EQ(r.number("errors"), 15);
  for (int conn = 0; conn < 3; ++conn) {
    const std::string at = "\"index\":" + std::to_string(conn) + ",";
    const std::size_t pos = r.json.find(at);
    ASSERT_NE(pos, std::string::npos);
    const LoadRun slice{0, "", r.json.substr(pos)};
    EXPECT_EQ(slice.number("mismatches"), 2) << conn;
    EXPECT_EQ(slice.number("duplicates"), 1) << conn;
    EXPECT_EQ(slice.number("lost"), 2) << conn;
  }
  EXPECT_NE(r.report.find("bad_filler 3"), std::string::npos) << r.report;
}

TEST_F(LoadRuns, CloseMidRunIsCountedByCode) {
  Server s = python_server_fixed(dir_, "close");
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--conns", "4", "--duration", "1"});
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_EQ(r.number("4001", "unexpected_closes_by_code"), 4) << r.json;
  EXPECT_EQ(r.number("open_at_end"), 0);
  // Each connection had its 11th message in flight when the server closed.
  EXPECT_EQ(r.number("unanswered", "checks"), 4);
  EXPECT_EQ(r.number("errors"), 8);
  EXPECT_NE(r.report.find("closed early with 4001"), std::string::npos) << r.report;
}

TEST_F(LoadRuns, RefusedUpgradeIsCountedByStatus) {
  Server s = python_server_fixed(dir_, "refuse");
  ASSERT_GT(s.port, 0);
  const LoadRun r = run_load(dir_, s.port, {"--conns", "5", "--duration", "300ms"});
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_EQ(r.number("403", "upgrade_failures_by_status"), 5) << r.json;
  EXPECT_EQ(r.number("opened"), 0);
  EXPECT_EQ(r.number("errors"), 5);
}

TEST_F(LoadRuns, BadArgumentsExitWithStatusTwo) {
  const LoadRun r = run_load(dir_, 1, {"--conns", "zero"});
  EXPECT_EQ(r.status, 2) << r.describe();
  EXPECT_NE(r.report.find("bad value 'zero' for --conns"), std::string::npos) << r.report;
}

}  // namespace
