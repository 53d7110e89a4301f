// Boost.Beast WebSocket echo server: the reference peer for `make bench`.
//
//   beast_echo --port N
//
// One thread runs one io_context. Each connection follows the pattern of the
// Beast asynchronous server examples: async_accept, then a loop of async_read
// into a flat_buffer and async_write of the same bytes with the same message
// type. Beast answers pings and completes the close handshake by itself.
// SIGINT/SIGTERM stop the io_context; the process then exits with status 0.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// Same ceiling as ringlink's default max_message_size, so no peer refuses a
// message another one accepts.
constexpr std::uint64_t max_message_bytes = 16u << 20;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : ws_(std::move(socket)) {}

  void start() {
    // The suggested server timeouts bound the opening and closing handshakes,
    // but their idle timeout re-arms a timer on every read, which no other
    // peer pays for; an echo peer under load is never idle anyway.
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    // Echo whole messages: a write must not be split into frames at Beast's
    // discretion, or the peer would measure fragmentation instead of echo.
    ws_.auto_fragment(false);
    ws_.read_message_max(max_message_bytes);
    ws_.async_accept(
        [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    read();
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    // websocket::error::closed is the normal end after a close handshake;
    // every other error also ends the session, and there is nobody to tell.
    if (ec) return;
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->on_write(ec);
                    });
  }

  void on_write(beast::error_code ec) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    read();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

class Listener {
 public:
  Listener(asio::io_context& ioc, tcp::acceptor& acceptor) : ioc_(ioc), acceptor_(acceptor) {}

  void accept() {
    acceptor_.async_accept(ioc_, [this](beast::error_code ec, tcp::socket socket) {
      on_accept(ec, std::move(socket));
    });
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;  // acceptor closed at shutdown
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket))->start();
    }
    // Errors such as EMFILE are per connection attempt: keep accepting.
    accept();
  }

  asio::io_context& ioc_;
  tcp::acceptor& acceptor_;
};

bool parse_port(std::string_view s, std::uint16_t& out) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535)
    return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --port N\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      if (!parse_port(argv[++i], port)) return usage(argv[0]);
    } else if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      return 0;
    } else {
      return usage(argv[0]);
    }
  }
  if (port == 0) return usage(argv[0]);

  // The hint tells Asio that only one thread runs the context, so it may
  // skip locking in the scheduler.
  asio::io_context ioc{1};

  beast::error_code ec;
  tcp::acceptor acceptor{ioc};
  const tcp::endpoint endpoint{asio::ip::address_v4::any(), port};
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "beast_echo: cannot listen on port %u: %s\n", unsigned{port},
                 ec.message().c_str());
    return 1;
  }

  asio::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&](beast::error_code, int) {
    beast::error_code ignored;
    acceptor.close(ignored);
    ioc.stop();
  });

  Listener listener{ioc, acceptor};
  listener.accept();
  ioc.run();
  return 0;
}
