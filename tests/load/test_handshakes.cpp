// ringlink-load --handshakes end to end: connections cycling connect,
// upgrade (after TLS for wss://), close against a ringlink-echo child, and
// runs whose every handshake fails, which must be counted by reason and fail
// the exit status. Also the handshake figures every run now reports.
// Loopback only, ports chosen by the kernel; nothing is timed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "ringlink_config.hpp"
#include "tests/load/load_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace load_test;

struct LoadRun {
  int status = -1;
  std::string report, json;

  // The first number after "key": in the JSON, searched from `after`'s key.
  double number(const std::string& key, const std::string& after = {}) const {
    const std::size_t from = after.empty() ? 0 : json.find("\"" + after + "\"");
    if (from == std::string::npos) return -1;
    const std::size_t at = json.find("\"" + key + "\":", from);
    if (at == std::string::npos) return -1;
    return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
  }
  std::string describe() const { return "exit " + std::to_string(status) + "\n" + report + "\n" + json; }
};

// A port nothing listens on: bound (so no one else takes it) and not listening.
class DeadPort {
 public:
  DeadPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
  }
  ~DeadPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  DeadPort(const DeadPort&) = delete;
  DeadPort& operator=(const DeadPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class Handshakes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("RINGLINK_LOAD").empty() || env("RINGLINK_ECHO").empty()) GTEST_SKIP() << "RINGLINK_LOAD/RINGLINK_ECHO not set";
  }

  // ringlink-echo on port 0 (plus `extra`); its port, or 0.
  int start_echo(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{env("RINGLINK_ECHO"), "--reactors", "1", "--port", "0", "--port-file", dir_.file("port")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    echo_ = std::make_unique<Child>(argv, dir_.file("echo.out"));
    return echo_->started() ? wait_for_port(dir_.file("port")) : 0;
  }

  LoadRun load(const std::string& url, std::vector<std::string> args) {
    const std::string json = dir_.file("out.json");
    std::remove(json.c_str());
    std::vector<std::string> argv{env("RINGLINK_LOAD"), url};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--json", json});
    LoadRun r;
    Child c(argv, dir_.file("load.out"));
    r.status = c.wait(60s);
    r.report = read_file(dir_.file("load.out"));
    r.json = read_file(json);
    return r;
  }

  // A self-signed certificate for 127.0.0.1, made now: "" or what failed.
  std::string make_cert() {
    const std::string cmd = "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                            dir_.file("key.pem") + " -out " + dir_.file("cert.pem") +
                            " -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 >" + dir_.file("openssl.out") +
                            " 2>&1";
    return std::system(cmd.c_str()) == 0 ? "" : read_file(dir_.file("openssl.out"));
  }

  TempDir dir_;
  std::unique_ptr<Child> echo_;
};

std::string ws(int port) { return "ws://127.0.0.1:" + std::to_string(port) + "/"; }
std::string wss(int port) { return "wss://127.0.0.1:" + std::to_string(port) + "/"; }

// Proves: against a working server every cycle completes: handshakes are
// counted and timed, nothing fails, the JSON carries the figures.
TEST_F(Handshakes, PlainCyclesCompleteWithoutFailures) {
  const int port = start_echo();
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));
  const LoadRun r = load(ws(port), {"--handshakes", "--conns", "4", "--threads", "2", "--duration", "1"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0) << r.describe();
  EXPECT_GT(r.number("completed", "handshake"), 0) << r.describe();
  EXPECT_GT(r.number("per_s", "handshake"), 0) << r.describe();
  EXPECT_EQ(r.number("failed", "handshake"), 0) << r.describe();
  EXPECT_EQ(r.number("count", "handshake"), r.number("completed", "handshake")) << r.describe();
  EXPECT_GT(r.number("p99_us", "handshake"), 0) << r.describe();
  EXPECT_NE(r.json.find("\"handshakes\":true"), std::string::npos) << r.json;
  EXPECT_NE(r.report.find("handshakes completed"), std::string::npos) << r.report;
}

// Proves: wss:// cycles include the TLS handshake, verified against the
// certificate given with --ca, without failures.
TEST_F(Handshakes, TlsCyclesCompleteWithoutFailures) {
  if (!ringlink::config::tls) GTEST_SKIP() << "this build has no TLS";
  ASSERT_EQ(make_cert(), "");
  const int port = start_echo({"--tls-cert", dir_.file("cert.pem"), "--tls-key", dir_.file("key.pem")});
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));
  const LoadRun r = load(wss(port), {"--handshakes", "--conns", "2", "--duration", "1", "--ca", dir_.file("cert.pem")});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("errors"), 0) << r.describe();
  EXPECT_GT(r.number("completed", "handshake"), 0) << r.describe();
  EXPECT_EQ(r.number("failed", "handshake"), 0) << r.describe();
  EXPECT_NE(r.json.find("\"tls\":true"), std::string::npos) << r.json;
  EXPECT_NE(r.report.find("TLS included"), std::string::npos) << r.report;
}

// Proves: refused connects are counted by errno, fail the exit status and
// complete nothing.
TEST_F(Handshakes, RefusedConnectsAreCountedAsFailures) {
  const DeadPort dead;
  ASSERT_GT(dead.port(), 0);
  const LoadRun r = load(ws(dead.port()), {"--handshakes", "--conns", "2", "--duration", "300ms"});
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_EQ(r.number("completed", "handshake"), 0) << r.describe();
  EXPECT_GT(r.number("failed", "handshake"), 0) << r.describe();
  EXPECT_GT(r.number(std::to_string(ECONNREFUSED), "failed_by_errno"), 0) << r.describe();
  EXPECT_EQ(r.number("failed", "handshake"), r.number("errors")) << r.describe();
}

// Proves: a wss:// URL against a plaintext server fails every TLS handshake,
// and each failure is counted.
TEST_F(Handshakes, TlsAgainstAPlainServerFails) {
  if (!ringlink::config::tls) GTEST_SKIP() << "this build has no TLS";
  const int port = start_echo();
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));
  const LoadRun r = load(wss(port), {"--handshakes", "--conns", "2", "--duration", "500ms", "--insecure"});
  EXPECT_EQ(r.status, 1) << r.describe();
  EXPECT_EQ(r.number("completed", "handshake"), 0) << r.describe();
  EXPECT_GT(r.number("failed", "handshake"), 0) << r.describe();
}

// Proves: an ordinary run times every link's handshake and reports the rate.
TEST_F(Handshakes, EveryRunReportsHandshakeTimes) {
  const int port = start_echo();
  ASSERT_GT(port, 0) << read_file(dir_.file("echo.out"));
  const LoadRun r = load(ws(port), {"--conns", "6", "--duration", "300ms"});
  ASSERT_EQ(r.status, 0) << r.describe();
  EXPECT_EQ(r.number("count", "handshake"), 6) << r.describe();
  EXPECT_EQ(r.number("completed", "handshake"), 6) << r.describe();
  EXPECT_GT(r.number("per_s", "handshake"), 0) << r.describe();
  EXPECT_GE(r.number("max_us", "handshake"), r.number("p50_us", "handshake")) << r.describe();
  EXPECT_NE(r.report.find("handshakes (connect() to upgrade)"), std::string::npos) << r.report;
}

// Proves: the options --handshakes has no use for are refused.
TEST_F(Handshakes, MessageOptionsAreRefused) {
  const LoadRun r = load(ws(9), {"--handshakes", "--mode", "rate", "--rate", "10"});
  EXPECT_EQ(r.status, 2) << r.describe();
}

}  // namespace
