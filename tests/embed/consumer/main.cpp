// An application outside the ringlink tree, built by install_test.sh with
// nothing but `pkg-config --cflags --libs ringlink`. It runs a server on port
// 0 and a client link on the same engine, sends one text message and checks
// the echo and the close code. Exit 0 on success; otherwise what went wrong.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "engine/ringlink.hpp"

namespace {

constexpr std::string_view hello = "hello from an installed ringlink";

struct Handler : ringlink::Handler {
  void on_open(ringlink::Link& link) override {
    if (link.is_client() && link.send_text(hello) != ringlink::SendResult::queued) failed = "send_text refused";
  }
  void on_message(ringlink::Link& link, std::span<std::byte> payload, ringlink::Opcode op) override {
    if (!link.is_client()) {
      (void)link.send(payload, op);  // the server side echoes
      return;
    }
    echoed.assign(reinterpret_cast<const char*>(payload.data()), payload.size());
    link.close(ringlink::close_code::normal);
  }
  void on_close(ringlink::Link& link, std::uint16_t code, std::string_view) override {
    if (link.is_client()) {
      client_close = code;
      done = true;
    }
  }
  void on_connect_failed(ringlink::LinkId, void*, int error, std::uint16_t status) override {
    failed = "connect failed: error " + std::to_string(error) + ", status " + std::to_string(status);
    done = true;
  }
  std::string echoed, failed;
  std::uint16_t client_close = 0;
  std::atomic<bool> done{false};
};

}  // namespace

int main() {
  Handler handler;
  ringlink::ServerConfig cfg;
  cfg.reactors = 1;
  ringlink::Server server{cfg, handler};
  if (int err = server.start(); err < 0) return std::printf("start: %d\n", err), 1;

  ringlink::ConnectRequest req;
  if (ringlink::resolve_address("127.0.0.1", server.port(), req.address) < 0) return std::puts("resolve"), 1;
  req.host_header = "127.0.0.1:" + std::to_string(server.port());
  req.path = "/";
  if (!server.connect(req)) return std::puts("connect refused"), 1;

  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!handler.done && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.stop(std::chrono::seconds(2));

  if (!handler.failed.empty()) return std::printf("%s\n", handler.failed.c_str()), 1;
  if (!handler.done) return std::puts("timed out"), 1;
  if (handler.echoed != hello) return std::printf("echo differs: '%s'\n", handler.echoed.c_str()), 1;
  if (handler.client_close != ringlink::close_code::normal) return std::printf("close code %u\n", handler.client_close), 1;
  std::printf("consumer: echoed '%s', closed %u, framing %s\n", handler.echoed.c_str(), handler.client_close,
              ringlink::config::framing == ringlink::config::Framing::native ? "native" : "wslay");
  return 0;
}
