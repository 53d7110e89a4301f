// chat: chat rooms over WebSocket, and the page that uses them, from one
// process, or from several joined by a broker.
//
//   chat [PORT [BROKER] [CERT KEY [TLS_PORT]]]
//       PORT      default 8080; 0 picks a free port; prints the URL
//       BROKER    redis://host:port or nats://host:port, so that several
//                 instances share their rooms
//       CERT KEY  PEM certificate chain and key: the page and the rooms are also
//                 served over https:// and wss:// on TLS_PORT (default 8443; 0 picks)
//
//   GET /                   the page (Handler::on_http; the engine answers and closes)
//   GET /ws?room=NAME       upgrade: the link joins room NAME (1-32 of A-Z a-z 0-9 _ -)
//   GET /metrics            Prometheus text (ServerConfig::metrics_endpoint)
//
// A room is a topic (docs/pubsub.md): the link subscribes in on_open, leaves
// by itself when it closes, and every text message is published to the
// room, the sender included: framed once, shared by every member on every
// reactor, and forwarded once to the other instances when a broker is set.
// Join and leave notices ("* N in ROOM", N counted on this instance) stay on
// this instance. The application keeps no member lists of its own.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "engine/ringlink.hpp"

namespace {

constexpr std::string_view page = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringlink chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em; }
  #log { list-style: none; padding: 0; border: 1px solid #ccc; border-radius: 4px; height: 18em; overflow-y: auto; }
  #log li { padding: .25em .6em; border-bottom: 1px solid #eee; }
  #log li.note { color: #777; font-style: italic; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #text { flex: 1; }
</style></head>
<body>
<h1>ringlink chat</h1>
<p id="status" data-state="connecting">connecting...</p>
<ul id="log"></ul>
<form id="form">
  <input id="name" size="10" placeholder="name" aria-label="name">
  <input id="text" autocomplete="off" placeholder="message" aria-label="message">
  <button id="send">Send</button>
</form>
<script>
  const params = new URLSearchParams(location.search);
  const room = params.get('room') || 'lobby';
  const name = document.getElementById('name');
  const text = document.getElementById('text');
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  name.value = params.get('name') || 'guest';
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws?room=${encodeURIComponent(room)}`);
  ws.onopen = () => { status.textContent = `in room ${room}`; status.dataset.state = 'open'; };
  ws.onclose = (e) => { status.textContent = `disconnected (${e.code})`; status.dataset.state = 'closed'; };
  ws.onmessage = (e) => {
    const li = document.createElement('li');
    li.textContent = e.data;              // text, never markup
    if (e.data.startsWith('* ')) li.className = 'note';
    log.append(li);
    log.scrollTop = log.scrollHeight;
  };
  document.getElementById('form').onsubmit = (e) => {
    e.preventDefault();
    if (text.value === '' || ws.readyState !== WebSocket.OPEN) return;
    ws.send(`${name.value}: ${text.value}`);
    text.value = '';
  };
</script>
</body></html>
)html";

constexpr std::size_t max_chat_message = 4096;

// The value of `key` in a query string ("a=1&room=x"), or empty.
std::string_view query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=')
      return pair.substr(key.size() + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

bool valid_room(std::string_view room) {
  if (room.empty() || room.size() > 32) return false;
  for (char c : room)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

class Chat : public ringlink::Handler {
 public:
  void set_server(ringlink::Server* server) { server_ = server; }

  ringlink::HttpResponse on_http(std::string_view path) override {
    if (path == "/" || path == "/index.html") return {200, "text/html; charset=utf-8", page};
    return {404, "text/plain", "not found\n"};
  }

  ringlink::UpgradeDecision on_upgrade(const ringlink::UpgradeRequestParser& req) override {
    const std::string_view target = req.target();
    const std::size_t q = target.find('?');
    if (target.substr(0, q) != "/ws") return ringlink::UpgradeDecision::refuse(404, "not found\n");
    const std::string_view room = q == std::string_view::npos ? "" : query_value(target.substr(q + 1), "room");
    if (!valid_room(room)) return ringlink::UpgradeDecision::refuse(400, "room: 1-32 of A-Z a-z 0-9 _ -\n");
    // on_open for this link follows on this thread before any other callback
    // (handler.hpp), so the room can wait here until it has a Link to go to.
    pending_room = room;
    return ringlink::UpgradeDecision::accept();
  }

  void on_open(ringlink::Link& link) override {
    auto* room = new std::string(std::move(pending_room));
    link.user_data() = room;
    // On the link's own thread: done at once (or refused by a cap).
    if (server_->subscribe(link.id(), *room) != ringlink::SubscribeResult::subscribed) {
      link.close(ringlink::close_code::try_again_later, "rooms full");
      return;
    }
    announce(*room);
  }

  void on_message(ringlink::Link& link, std::span<std::byte> payload, ringlink::Opcode op) override {
    if (op != ringlink::Opcode::text) {
      link.close(ringlink::close_code::unsupported_data, "text only");
      return;
    }
    if (payload.size() > max_chat_message) {
      link.close(ringlink::close_code::message_too_big, "message too long");
      return;
    }
    // A link whose queue is full skips the message (policy reject): a chat
    // favours the others over a laggard.
    (void)server_->publish(*static_cast<std::string*>(link.user_data()), payload, ringlink::Opcode::text);
  }

  void on_close(ringlink::Link& link, std::uint16_t, std::string_view) override {
    auto* room = static_cast<std::string*>(link.user_data());
    if (room == nullptr) return;
    announce(*room);   // the link has left the room already
    delete room;
    link.user_data() = nullptr;
  }

 private:
  void announce(const std::string& room) {
    const std::uint64_t n = server_->topic_stats(room).subscribers;
    if (n == 0) return;
    const std::string note = "* " + std::to_string(n) + " in " + room;
    (void)server_->publish_local(room, std::as_bytes(std::span(note.data(), note.size())), ringlink::Opcode::text);
  }

  static thread_local std::string pending_room;  // on_upgrade -> on_open, per reactor thread
  ringlink::Server* server_ = nullptr;
};

thread_local std::string Chat::pending_room;

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop;  // blocked before start(): the reactor threads inherit the mask
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  Chat chat;
  ringlink::ServerConfig cfg;
  cfg.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  cfg.metrics_endpoint = true;
  cfg.ping_interval_ms = 30'000;  // browsers answer pings; a vanished tab is noticed
  // Browsers offer permessage-deflate on every connection; take it where the
  // library has zlib. A line of chat is under the threshold and goes as it is,
  // a long one leaves compressed, once for the whole room.
  cfg.deflate.enabled = ringlink::config::deflate;
  int arg = 2;
  if (argc > arg && std::strstr(argv[arg], "://") != nullptr) cfg.broker = argv[arg++];
  if (argc > arg + 1) {           // the page picks wss:// when it was loaded over https://
    cfg.tls.cert_file = argv[arg];
    cfg.tls.key_file = argv[arg + 1];
    cfg.tls.port = static_cast<std::uint16_t>(argc > arg + 2 ? std::atoi(argv[arg + 2]) : 8443);
  }
  ringlink::Server server{cfg, chat};
  chat.set_server(&server);
  if (int err = server.start(); err < 0) {
    std::fprintf(stderr, "chat: cannot start on port %u%s%s: %s\n", cfg.port, cfg.broker.empty() ? "" : " with ",
                 cfg.broker.c_str(), std::strerror(-err));
    return 1;
  }
  std::printf("chat: http://127.0.0.1:%u/\n", server.port());
  if (server.tls_port() != 0) std::printf("chat: https://127.0.0.1:%u/\n", server.tls_port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.stop(std::chrono::seconds(5));
  std::printf("chat: stopped\n");
}
