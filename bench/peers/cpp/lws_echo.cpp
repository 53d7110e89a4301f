// libwebsockets echo server: the reference peer for `make bench`.
//
//   lws_echo --port N
//
// One lws context with one service thread and one protocol, written in the
// usual lws callback style: LWS_CALLBACK_RECEIVE gathers the fragments of a
// message, a complete message goes on the connection's bounded queue, and
// LWS_CALLBACK_SERVER_WRITEABLE writes one queued message per callback with
// the type it arrived with. lws answers pings and the close handshake itself.
// SIGINT/SIGTERM end the service loop; the process then exits with status 0.

#include <libwebsockets.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// Same ceiling as ringlink's default max_message_size.
constexpr std::size_t max_message_bytes = std::size_t{16} << 20;
// lws hands RECEIVE at most rx_buffer_size bytes at a time and reads the
// socket pt_serv_buf_size bytes at a time; 64 KiB keeps a 16 KiB message (plus
// frame header) to one read and one callback.
constexpr std::size_t rx_chunk_bytes = 64 * 1024;
// Messages waiting for their echo per connection. At the bound the connection
// stops reading (rx flow control) rather than buffering without limit; reading
// resumes once half the queue has been written.
constexpr std::size_t queue_bound = 64;

struct Message {
  // LWS_PRE bytes of headroom, then the payload: lws_write builds the frame
  // header in place in front of the payload.
  std::vector<unsigned char> frame;
  bool binary = false;

  std::size_t payload_size() const { return frame.size() - LWS_PRE; }
};

struct Connection {
  Message partial;              // message being gathered from fragments
  bool gathering = false;
  std::deque<Message> queue;    // complete messages waiting to be echoed
  bool rx_paused = false;
  std::vector<unsigned char> spare;  // a written frame's storage, kept for reuse
};

// lws allocates per_session_data_size zeroed bytes for every connection; the
// C++ state lives behind one pointer so its lifetime is explicit.
struct SessionData {
  Connection* conn;
};

volatile std::sig_atomic_t g_stop = 0;
lws_context* g_context = nullptr;

void on_signal(int) {
  g_stop = 1;
  // Wakes the service thread out of poll() even if the signal landed just
  // before it blocked; it only writes one byte to lws's event pipe.
  if (g_context != nullptr) lws_cancel_service(g_context);
}

void begin_message(Connection& c, bool binary) {
  c.partial.frame = std::move(c.spare);
  c.partial.frame.clear();
  c.partial.frame.resize(LWS_PRE);
  c.partial.binary = binary;
  c.gathering = true;
}

// Returns 0 to keep the connection, -1 to have lws close it.
int on_receive(lws* wsi, Connection& c, const unsigned char* data, std::size_t len) {
  if (!c.gathering) begin_message(c, lws_frame_is_binary(wsi) != 0);
  if (c.partial.payload_size() + len > max_message_bytes) {
    static constexpr char reason[] = "message too big";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                     reinterpret_cast<unsigned char*>(const_cast<char*>(reason)),
                     sizeof(reason) - 1);
    return -1;
  }
  c.partial.frame.insert(c.partial.frame.end(), data, data + len);
  if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0) return 0;

  c.gathering = false;
  c.queue.push_back(std::move(c.partial));
  if (c.queue.size() >= queue_bound && !c.rx_paused) {
    c.rx_paused = true;
    lws_rx_flow_control(wsi, 0);
  }
  lws_callback_on_writable(wsi);
  return 0;
}

int on_writeable(lws* wsi, Connection& c) {
  if (c.queue.empty()) return 0;
  Message& m = c.queue.front();
  const std::size_t n = m.payload_size();
  const int written = lws_write(wsi, m.frame.data() + LWS_PRE, n,
                                m.binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
  // lws keeps whatever the socket did not take and sends it before the next
  // WRITEABLE, so anything short of the full payload here is a failure.
  if (written < 0 || static_cast<std::size_t>(written) < n) return -1;
  if (m.frame.capacity() > c.spare.capacity()) c.spare = std::move(m.frame);
  c.queue.pop_front();

  if (c.rx_paused && c.queue.size() <= queue_bound / 2) {
    c.rx_paused = false;
    lws_rx_flow_control(wsi, 1);
  }
  // One lws_write per WRITEABLE callback: ask again for the rest.
  if (!c.queue.empty()) lws_callback_on_writable(wsi);
  return 0;
}

int echo_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* session = static_cast<SessionData*>(user);
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      session->conn = new Connection{};
      return 0;
    case LWS_CALLBACK_RECEIVE:
      if (session->conn == nullptr) return -1;
      return on_receive(wsi, *session->conn, static_cast<const unsigned char*>(in), len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
      if (session->conn == nullptr) return -1;
      return on_writeable(wsi, *session->conn);
    case LWS_CALLBACK_CLOSED:
      delete session->conn;
      session->conn = nullptr;
      return 0;
    default:
      // protocols[0] also receives the HTTP-level callbacks of every
      // connection; the dummy gives them lws's default behaviour.
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

bool parse_port(std::string_view s, int& out) {
  if (s.empty() || s.size() > 5) return false;
  int v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  if (v == 0 || v > 65535) return false;
  out = v;
  return true;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --port N\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
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

  // A benchmark peer logs nothing per message; keep only errors.
  lws_set_log_level(LLL_ERR, nullptr);

  static lws_protocols protocols[2];
  std::memset(protocols, 0, sizeof(protocols));
  protocols[0].name = "echo";
  protocols[0].callback = echo_callback;
  protocols[0].per_session_data_size = sizeof(SessionData);
  protocols[0].rx_buffer_size = rx_chunk_bytes;
  // One send() per echo as far as the socket takes it, instead of lws
  // splitting large messages into rx_buffer_size pieces.
  protocols[0].tx_packet_size = max_message_bytes + 16;
  // protocols[1] stays zeroed: the terminator.

  lws_context_creation_info info;
  std::memset(&info, 0, sizeof(info));
  info.port = port;
  info.protocols = protocols;
  info.pt_serv_buf_size = rx_chunk_bytes;
  info.count_threads = 1;
  // Reject invalid UTF-8 in text messages, as RFC 6455 requires and as the
  // other peers do.
  info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;

  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  lws_context* context = lws_create_context(&info);
  if (context == nullptr) {
    std::fprintf(stderr, "lws_echo: cannot listen on port %d\n", port);
    return 1;
  }
  g_context = context;

  while (g_stop == 0) {
    if (lws_service(context, 0) < 0) break;
  }

  g_context = nullptr;
  lws_context_destroy(context);
  return 0;
}
