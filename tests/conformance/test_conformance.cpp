// An Autobahn-style conformance run against the ringlink-echo binary
// ($RINGLINK_ECHO) over loopback. Each case prints `case ID ... VERDICT`; each
// section is one test that fails on any FAILED case; the end prints a table
// of verdicts per section. NON-STRICT cases are reported, not failed.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "tests/conformance/cases.hpp"
#include "tests/integration/peer_process.hpp"

using namespace ringlink::conformance;
using namespace std::chrono_literals;

namespace {

struct Tally {
  int ok = 0, non_strict = 0, failed = 0;
};
std::map<std::string, Tally> g_tally;   // section title -> counts, in run order by key
std::vector<std::string> g_order;

class EchoServer : public ::testing::Environment {
 public:
  static std::uint16_t port() { return port_; }

  void SetUp() override {
    const char* echo = std::getenv("RINGLINK_ECHO");
    ASSERT_NE(echo, nullptr) << "RINGLINK_ECHO is not set (meson sets it)";
    char dir_tmpl[] = "/tmp/ringlink-conf-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_tmpl), nullptr);
    dir_ = dir_tmpl;
    const std::string port_file = dir_ + "/port";
    std::string error;
    proc_ = itest::PeerProcess::start({echo, "--port", "0", "--reactors", "2", "--port-file", port_file}, &error);
    ASSERT_TRUE(proc_) << error;
    ASSERT_TRUE(itest::wait_for_file(port_file, 10s)) << proc_->stderr_text();
    FILE* f = std::fopen(port_file.c_str(), "r");
    ASSERT_NE(f, nullptr);
    unsigned p = 0;
    ASSERT_EQ(std::fscanf(f, "%u", &p), 1);
    std::fclose(f);
    port_ = static_cast<std::uint16_t>(p);
  }

  void TearDown() override {
    std::printf("\n%-16s %6s %11s %7s %6s\n", "section", "OK", "NON-STRICT", "FAILED", "total");
    Tally all;
    for (const auto& name : g_order) {
      const Tally& t = g_tally[name];
      std::printf("%-16s %6d %11d %7d %6d\n", name.c_str(), t.ok, t.non_strict, t.failed, t.ok + t.non_strict + t.failed);
      all.ok += t.ok, all.non_strict += t.non_strict, all.failed += t.failed;
    }
    std::printf("%-16s %6d %11d %7d %6d\n\n", "all", all.ok, all.non_strict, all.failed, all.ok + all.non_strict + all.failed);
    std::fflush(stdout);
    if (proc_) {
      proc_->send_signal(SIGTERM);
      const auto st = proc_->wait(10s);
      EXPECT_TRUE(st && itest::exited_ok(*st)) << "ringlink-echo did not stop cleanly: " << proc_->describe_status() << "\n"
                                              << proc_->stderr_text();
      // Its exit report: no handler exception, nothing left open.
      const std::string report = proc_->stderr_text();
      EXPECT_NE(report.find("links open 0"), std::string::npos) << report;
      EXPECT_NE(report.find("handler exceptions 0"), std::string::npos) << report;
    }
    if (!dir_.empty()) {
      std::remove((dir_ + "/port").c_str());
      ::rmdir(dir_.c_str());
    }
  }

 private:
  static inline std::uint16_t port_ = 0;
  std::unique_ptr<itest::PeerProcess> proc_;
  std::string dir_;
};

void run_section(const std::string& name, const std::vector<Case>& cases) {
  ASSERT_NE(EchoServer::port(), 0);
  if (g_tally.find(name) == g_tally.end()) g_order.push_back(name);
  Tally& t = g_tally[name];
  const auto start = std::chrono::steady_clock::now();
  for (const Case& c : cases) {
    const Result r = c.run(EchoServer::port());
    std::printf("case %-10s ... %s%s%s\n", c.id.c_str(), to_string(r.verdict), r.note.empty() ? "" : "  (",
                r.note.empty() ? "" : (r.note + ")").c_str());
    switch (r.verdict) {
      case Verdict::ok: ++t.ok; break;
      case Verdict::non_strict: ++t.non_strict; break;
      case Verdict::failed: ++t.failed; break;
    }
    EXPECT_NE(r.verdict, Verdict::failed) << "case " << c.id << " (" << c.title << "): " << r.note;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::printf("section %s: %zu cases, %d OK, %d NON-STRICT, %d FAILED, %lld ms\n", name.c_str(), cases.size(), t.ok,
              t.non_strict, t.failed, static_cast<long long>(ms));
  std::fflush(stdout);
}

}  // namespace

TEST(Conformance, S1Framing) { run_section("1 framing", framing_cases()); }
TEST(Conformance, S2PingPong) { run_section("2 ping/pong", ping_cases()); }
TEST(Conformance, S3ReservedBits) { run_section("3 reserved bits", reserved_bits_cases()); }
TEST(Conformance, S4Opcodes) { run_section("4 opcodes", opcode_cases()); }
TEST(Conformance, S5Fragmentation) { run_section("5 fragmentation", fragmentation_cases()); }
TEST(Conformance, S6Utf8) { run_section("6 utf-8", utf8_cases()); }
TEST(Conformance, S7Close) { run_section("7 close", close_cases()); }
TEST(Conformance, S9Limits) { run_section("9 limits", limits_cases()); }
TEST(Conformance, Upgrade) { run_section("U upgrade", upgrade_cases()); }
TEST(Conformance, Masking) { run_section("M masking", masking_cases()); }

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  ::testing::AddGlobalTestEnvironment(new EchoServer);
  return RUN_ALL_TESTS();
}
