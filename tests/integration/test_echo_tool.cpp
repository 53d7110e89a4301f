// The ringlink-echo binary as a whole: started on port 0 with --port-file,
// driven by python3-websockets, stopped with SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/peer_process.hpp"
#include "tests/wait_until.hpp"

namespace {

using namespace std::chrono_literals;

class EchoTool : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string echo = itest::env_or_empty("RINGLINK_ECHO");
    ASSERT_FALSE(echo.empty()) << "RINGLINK_ECHO not set";
    ASSERT_EQ(::access(echo.c_str(), X_OK), 0) << echo << " is not built";
    const char* tmpdir = std::getenv("TMPDIR");
    dir_ = std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/ringlink-echo-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
    port_file_ = dir_ + "/port";
    std::string error;
    proc_ = itest::PeerProcess::start({echo, "--port", "0", "--port-file", port_file_, "--reactors", "2"}, &error);
    ASSERT_TRUE(proc_) << error;
    ASSERT_TRUE(itest::wait_for_file(port_file_, 10s)) << "no port file; stderr:\n" << proc_->stderr_text();
    std::ifstream in(port_file_);
    in >> port_;
    ASSERT_GT(port_, 0u);
  }
  void TearDown() override {
    proc_.reset();  // killed if still running
    ::unlink(port_file_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::vector<std::string> client(std::vector<std::string> args) const {
    std::vector<std::string> argv{itest::python(), itest::peer_script("ws_client.py"),
                                  "ws://127.0.0.1:" + std::to_string(port_) + "/"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  // SIGTERM, then a clean exit; returns the metrics it printed. The tool
  // stops with a 5 s deadline for the close handshakes; the wait here only
  // stops a hang.
  std::string stop_and_expect_clean_exit() {
    EXPECT_TRUE(proc_->send_signal(SIGTERM));
    const std::optional<int> st = proc_->wait(ringlink::test::hang_deadline);
    EXPECT_TRUE(st) << "ringlink-echo still running after SIGTERM";
    if (st) {
      EXPECT_TRUE(itest::exited_ok(*st)) << itest::describe_wait_status(*st) << "\n" << proc_->stderr_text();
    }
    return proc_->stderr_text();
  }

  std::string dir_;
  std::string port_file_;
  unsigned port_ = 0;
  std::unique_ptr<itest::PeerProcess> proc_;
};

// The number right after `label` in the metrics text, or UINT64_MAX. (No
// std::regex: GCC 12 warns inside it under the sanitizers.)
std::uint64_t metric(const std::string& text, const std::string& label) {
  const std::size_t at = text.find(label);
  if (at == std::string::npos) return UINT64_MAX;
  std::size_t i = at + label.size();
  if (i >= text.size() || text[i] < '0' || text[i] > '9') return UINT64_MAX;
  std::uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
  return v;
}

// Proves: the tool echoes python clients, exits 0 on SIGTERM and prints matching metrics.
TEST_F(EchoTool, EchoesThenStopsOnSigterm) {
  EXPECT_EQ(itest::run_peer(client({"concurrent", "20", "50"}), 30s), "");
  EXPECT_EQ(itest::run_peer(client({"ping"}), 30s), "");
  const std::string err = stop_and_expect_clean_exit();
  EXPECT_NE(err.find("ringlink-echo metrics:"), std::string::npos) << err;
  EXPECT_EQ(metric(err, "links open "), 0u) << err;
  EXPECT_EQ(metric(err, "accepted "), 21u) << err;
  // 20 x 50 echoes, plus the one message the ping mode sends.
  EXPECT_EQ(metric(err, "messages in "), 1001u) << err;
  EXPECT_EQ(metric(err, ", out "), 1001u) << err;
}

// Proves: a client that pipelines 64 KiB messages faster than it reads the
// echoes gets every echo: when send() answers backpressured, the tool keeps
// the message it could not send and pauses reading until on_drain (it once
// dropped that message).
TEST_F(EchoTool, NoEchoLostUnderBackpressure) {
  EXPECT_EQ(itest::run_peer(client({"flood", "200", "65536"}), 40s), "");
  const std::string err = stop_and_expect_clean_exit();
  EXPECT_EQ(metric(err, "messages in "), metric(err, ", out ")) << err;
}

// Proves: SIGTERM with a client connected closes it with 1001 and still exits 0.
TEST_F(EchoTool, SigtermClosesOpenLinksWith1001) {
  std::string error;
  auto holder = itest::PeerProcess::start(client({"hold"}), &error);
  ASSERT_TRUE(holder) << error;
  const std::optional<std::string> line = holder->read_line(15s);
  ASSERT_TRUE(line && *line == "open") << "client did not connect; stderr:\n" << holder->stderr_text();
  stop_and_expect_clean_exit();
  const std::optional<int> st = holder->wait(10s);
  ASSERT_TRUE(st) << "client still waiting for the close";
  EXPECT_TRUE(itest::exited_ok(*st)) << itest::describe_wait_status(*st) << "\n" << holder->stderr_text();
}

}  // namespace
