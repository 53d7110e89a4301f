#include "tools/load/options.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "engine/types.hpp"
#include "ringlink_config.hpp"
#include "tools/load/message.hpp"
#include "tools/load/pubsub.hpp"

namespace ringlink::load {
namespace {

constexpr std::uint32_t max_conns = 1'000'000;
constexpr std::uint32_t max_source_ips = 65'536;

template <class T>
bool parse_uint(std::string_view s, T& out) {
  if (s.empty()) return false;
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc{} || p != s.data() + s.size()) return false;
  out = v;
  return true;
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v) || v < 0) return false;
  out = v;
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const char* to_string(Mode m) noexcept {
  switch (m) {
    case Mode::echo: return "echo";
    case Mode::rate: return "rate";
    case Mode::push: return "push";
    case Mode::idle: return "idle";
  }
  return "unknown";
}

const char* usage_text() noexcept {
  return "usage: ringlink-load ws[s]://HOST:PORT/PATH [options]\n"
         "  HOST is an IPv4 or [IPv6] literal, or localhost.\n"
         "tls (wss://):\n"
         "  --ca FILE            trust the CAs in this PEM file (default: the system store)\n"
         "  --insecure           do not verify the server's certificate (self-signed test certificates)\n"
         "connections:\n"
         "  --conns N            connections (default 1)\n"
         "  --connect-rate R     new connections per second (default 0: all at once)\n"
         "  --threads T          reactor threads (default 1)\n"
         "  --source-ips A-B     bind connections round robin to IPv4 addresses A..B (or one address)\n"
         "  --processes N        fork N load processes that split the connections, --connect-rate and\n"
         "                       --rate; one merged report. Without --source-ips, a 127.x target is\n"
         "                       reached from 127.0.0.1-127.0.0.8 (more ephemeral ports). Not for --mode push.\n"
         "load:\n"
         "  --handshakes         instead of messages: each connection connects, upgrades (after TLS for\n"
         "                       wss://), closes with 1000 and again, for --duration; reports handshakes/s\n"
         "                       and their latency, failures by reason\n"
         "  --mode MODE          echo (default) | rate | push | idle\n"
         "  --inflight P         echo: messages outstanding per connection (default 1)\n"
         "  --rate M             rate: messages/s in total, open loop (required);\n"
         "                       push: messages/s sent by connection 0 (0: only receive)\n"
         "  --ping-interval D    idle: ping each connection this often (default 1s; 0: never)\n"
         "  --size S|MIN-MAX     payload bytes, fixed or uniform in a range (default 64;\n"
         "                       at least 40 binary, 54 text: the header every message carries)\n"
         "  --binary | --text    frame type (default binary; text payloads are ASCII)\n"
         "  --payload KIND       after each header: random (default, incompressible),\n"
         "                       json (a JSON-like record repeated) or zeros\n"
         "  --deflate            offer permessage-deflate; the report says what was agreed\n"
         "  --duration D         measured time after warm-up (default 10s; units s, ms, m)\n"
         "  --warmup D           load before measuring, after all connections are up (default 0)\n"
         "  --grace D            wait for outstanding replies at the end (default 2s)\n"
         "output:\n"
         "  --max-errors N       exit 1 when errors exceed N (default 0)\n"
         "  --progress           live line on stderr even when it is not a terminal\n"
         "  --json FILE          every figure and the percentile distribution as JSON\n"
         "  --plot FILE.png      latency percentile plot (needs gnuplot)\n"
         "exit status: 0 ok, 1 errors over --max-errors, 2 bad arguments, 3 could not run\n";
}

bool parse_url(std::string_view url, Target& out, std::string& error) {
  const bool tls = url.substr(0, 6) == "wss://";
  if (tls && !config::tls) {
    error = "wss:// needs a build with TLS (meson -Dtls=enabled)";
    return false;
  }
  if (!tls && url.substr(0, 5) != "ws://") {
    error = "the URL must start with ws:// or wss://";
    return false;
  }
  std::string_view rest = url.substr(tls ? 6 : 5);
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!path.empty() && path.front() == '?') path.insert(path.begin(), '/');
  if (authority.empty()) {
    error = "the URL has no host";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    error = "user information in the URL is not supported";
    return false;
  }
  std::string_view host;
  std::string_view port_text;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated [IPv6] host";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "unexpected text after ]";
        return false;
      }
      port_text = after.substr(1);
      if (port_text.empty()) {
        error = "empty port";
        return false;
      }
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':') != colon) {
        error = "an IPv6 host must be written in brackets: ws://[::1]:port/";
        return false;
      }
      host = authority.substr(0, colon);
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        error = "empty port";
        return false;
      }
    } else {
      host = authority;
    }
  }
  std::uint16_t port = tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned p = 0;
    if (!parse_uint(port_text, p) || p == 0 || p > 65535) {
      error = "bad port '" + std::string(port_text) + "'";
      return false;
    }
    port = static_cast<std::uint16_t>(p);
  }
  Target t;
  t.host = std::string(host);
  t.port = port;
  t.path = path;
  t.host_header = std::string(authority);
  t.tls = tls;
  if (resolve_address(t.host, port, t.address) < 0) {
    error = "host '" + t.host + "' is not an IPv4/IPv6 literal or localhost (no DNS)";
    return false;
  }
  out = std::move(t);
  return true;
}

bool parse_duration(std::string_view text, double& seconds) {
  double scale = 1;
  if (ends_with(text, "ms")) {
    scale = 1e-3;
    text.remove_suffix(2);
  } else if (ends_with(text, "s")) {
    text.remove_suffix(1);
  } else if (ends_with(text, "m")) {
    scale = 60;
    text.remove_suffix(1);
  }
  double v = 0;
  if (!parse_double(text, v)) return false;
  seconds = v * scale;
  return true;
}

bool parse_size_range(std::string_view text, std::uint32_t& min, std::uint32_t& max) {
  const std::size_t dash = text.find('-');
  std::uint32_t a = 0, b = 0;
  if (dash == std::string_view::npos) {
    if (!parse_uint(text, a)) return false;
    b = a;
  } else if (!parse_uint(text.substr(0, dash), a) || !parse_uint(text.substr(dash + 1), b) || a > b) {
    return false;
  }
  min = a;
  max = b;
  return true;
}

bool parse_source_ips(std::string_view text, std::vector<SocketAddress>& out, std::string& error) {
  out.clear();
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    SocketAddress a;
    if (text.empty() || resolve_address(text, 0, a) < 0) {
      error = "bad source address '" + std::string(text) + "'";
      return false;
    }
    out.push_back(a);
    return true;
  }
  const std::string first(text.substr(0, dash));
  const std::string last(text.substr(dash + 1));
  in_addr lo{}, hi{};
  if (inet_pton(AF_INET, first.c_str(), &lo) != 1 || inet_pton(AF_INET, last.c_str(), &hi) != 1) {
    error = "a source range must be two IPv4 addresses: A.B.C.D-A.B.C.E";
    return false;
  }
  const std::uint32_t a = ntohl(lo.s_addr), b = ntohl(hi.s_addr);
  if (a > b) {
    error = "source range '" + std::string(text) + "' ends before it starts";
    return false;
  }
  if (b - a >= max_source_ips) {
    error = "source range larger than 65536 addresses";
    return false;
  }
  for (std::uint64_t v = a; v <= b; ++v) {
    SocketAddress s;
    auto* sin = reinterpret_cast<sockaddr_in*>(&s.storage);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(static_cast<std::uint32_t>(v));
    s.length = sizeof(sockaddr_in);
    out.push_back(s);
  }
  return true;
}

ParseOutcome parse_options(const std::vector<std::string_view>& args, Options& out, std::string& error) {
  Options o;
  bool have_url = false, have_rate = false, have_inflight = false, have_ping = false;
  std::string_view size_text;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    auto value = [&](std::string_view& v) {
      if (i + 1 >= args.size()) {
        error = std::string(a) + " needs a value";
        return false;
      }
      v = args[++i];
      return true;
    };
    auto bad = [&](std::string_view v, const char* what) {
      error = "bad value '" + std::string(v) + "' for " + std::string(a) + ": " + what;
      return ParseOutcome::error;
    };
    std::string_view v;
    if (a == "-h" || a == "--help") return ParseOutcome::help;
    if (a == "--text" || a == "--binary") {
      o.text = a == "--text";
    } else if (a == "--insecure") {
      o.insecure = true;
    } else if (a == "--progress") {
      o.progress = true;
    } else if (a == "--deflate") {
      o.deflate = true;
    } else if (a == "--handshakes") {
      o.handshakes = true;
    } else if (a == "--pubsub") {
      o.pubsub.enabled = true;
    } else if (a.substr(0, 2) == "--") {
      if (!value(v)) return ParseOutcome::error;
      if (a == "--conns") {
        if (!parse_uint(v, o.conns) || o.conns == 0 || o.conns > max_conns) return bad(v, "1 to 1000000");
      } else if (a == "--connect-rate") {
        if (!parse_double(v, o.connect_rate)) return bad(v, "a number >= 0");
      } else if (a == "--threads") {
        if (!parse_uint(v, o.threads) || o.threads == 0 || o.threads > max_reactors) return bad(v, "1 to 256");
      } else if (a == "--processes") {
        if (!parse_uint(v, o.processes) || o.processes == 0 || o.processes > 256) return bad(v, "1 to 256");
      } else if (a == "--source-ips") {
        if (!parse_source_ips(v, o.sources, error)) return ParseOutcome::error;
      } else if (a == "--mode") {
        if (v == "echo") o.mode = Mode::echo;
        else if (v == "rate") o.mode = Mode::rate;
        else if (v == "push") o.mode = Mode::push;
        else if (v == "idle") o.mode = Mode::idle;
        else return bad(v, "echo, rate, push or idle");
      } else if (a == "--inflight") {
        if (!parse_uint(v, o.inflight) || o.inflight == 0 || o.inflight > 65536) return bad(v, "1 to 65536");
        have_inflight = true;
      } else if (a == "--rate") {
        if (!parse_double(v, o.rate) || o.rate > 1e9) return bad(v, "messages per second, 0 to 1e9");
        have_rate = true;
      } else if (a == "--ping-interval") {
        double s = 0;
        if (!parse_duration(v, s) || s > 3600) return bad(v, "a duration up to 1h");
        o.ping_interval_ms = static_cast<std::uint32_t>(std::llround(s * 1000));
        if (s > 0 && o.ping_interval_ms == 0) return bad(v, "at least 1ms");
        have_ping = true;
      } else if (a == "--payload") {
        if (v == "random") o.payload = FillerKind::random;
        else if (v == "json") o.payload = FillerKind::json;
        else if (v == "zeros") o.payload = FillerKind::zeros;
        else return bad(v, "json, random or zeros");
      } else if (a == "--size") {
        size_text = v;
        if (!parse_size_range(v, o.size_min, o.size_max)) return bad(v, "BYTES or MIN-MAX");
      } else if (a == "--duration") {
        if (!parse_duration(v, o.duration_s) || o.duration_s <= 0 || o.duration_s > 86400) return bad(v, "a duration > 0");
      } else if (a == "--warmup") {
        if (!parse_duration(v, o.warmup_s) || o.warmup_s > 86400) return bad(v, "a duration >= 0");
      } else if (a == "--grace") {
        if (!parse_duration(v, o.grace_s) || o.grace_s > 600) return bad(v, "a duration up to 10m");
      } else if (a == "--max-errors") {
        if (!parse_uint(v, o.max_errors)) return bad(v, "a count");
      } else if (a == "--json") {
        o.json_path = std::string(v);
      } else if (a == "--ca") {
        o.ca_file = std::string(v);
      } else if (a == "--plot") {
        o.plot_path = std::string(v);
      } else if (const PubsubParse p = parse_pubsub_option(a, v, o.pubsub, error); p != PubsubParse::not_mine) {
        if (p == PubsubParse::error) return ParseOutcome::error;
      } else {
        error = "unknown option " + std::string(a);
        return ParseOutcome::error;
      }
    } else if (!have_url) {
      if (!parse_url(a, o.target, error)) return ParseOutcome::error;
      o.url = std::string(a);
      o.pubsub.urls.emplace_back(a);
      have_url = true;
    } else {
      o.pubsub.urls.emplace_back(a);  // --pubsub's further nodes; check_pubsub_options refuses them otherwise
    }
  }
  if (!have_url) {
    error = "missing the ws:// URL";
    return ParseOutcome::error;
  }
  // Options that would do nothing in the chosen mode are mistakes.
  if (o.handshakes && (have_inflight || have_rate || have_ping || !size_text.empty() ||
                       std::find(args.begin(), args.end(), "--mode") != args.end())) {
    error = "--handshakes sends no messages: --mode, --inflight, --rate, --ping-interval and --size do not apply";
    return ParseOutcome::error;
  }
  if (o.handshakes && o.pubsub.enabled) {
    error = "--handshakes and --pubsub are two different runs: choose one";
    return ParseOutcome::error;
  }
  if (have_inflight && o.mode != Mode::echo) {
    error = "--inflight applies to --mode echo only";
    return ParseOutcome::error;
  }
  if (!check_pubsub_options(o, error)) return ParseOutcome::error;
  if (have_rate && o.mode != Mode::rate && o.mode != Mode::push && !o.pubsub.enabled) {
    error = "--rate applies to --mode rate and push only";
    return ParseOutcome::error;
  }
  if (o.mode == Mode::rate && o.rate <= 0) {
    error = "--mode rate needs --rate M (messages per second, > 0)";
    return ParseOutcome::error;
  }
  if (have_ping && o.mode != Mode::idle) {
    error = "--ping-interval applies to --mode idle only";
    return ParseOutcome::error;
  }
  if (o.mode == Mode::idle && !size_text.empty()) {
    error = "--size does not apply to --mode idle (it sends only pings)";
    return ParseOutcome::error;
  }
  const std::uint32_t floor = static_cast<std::uint32_t>(min_message_size(o.text));
  if (o.size_min < floor) {
    error = "--size must be at least " + std::to_string(floor) + " bytes for " + (o.text ? "text" : "binary") +
            " messages (the header each message carries)";
    return ParseOutcome::error;
  }
  if ((o.insecure || !o.ca_file.empty()) && !o.target.tls) {
    error = "--ca and --insecure apply to wss:// only";
    return ParseOutcome::error;
  }
  if (o.size_max > config::max_message_size) {
    error = "--size above the largest message this build accepts (" + std::to_string(config::max_message_size) + ")";
    return ParseOutcome::error;
  }
  if (o.processes > o.conns) {
    error = "--processes above --conns leaves a process without connections";
    return ParseOutcome::error;
  }
  if (o.processes > 1 && o.mode == Mode::push) {
    error = "--processes does not apply to --mode push (one link's broadcasts, every link's deliveries)";
    return ParseOutcome::error;
  }
  // Several processes mean more links than one source address has ephemeral
  // ports for, to one server address: spread them over 127.0.0.1-8.
  if (o.processes > 1 && o.sources.empty() && o.target.address.storage.ss_family == AF_INET &&
      (ntohl(reinterpret_cast<const sockaddr_in*>(&o.target.address.storage)->sin_addr.s_addr) >> 24) == 127 &&
      !parse_source_ips("127.0.0.1-127.0.0.8", o.sources, error))
    return ParseOutcome::error;
  for (const SocketAddress& s : o.sources) {
    if (s.storage.ss_family != o.target.address.storage.ss_family) {
      error = "--source-ips and the target address are of different families (IPv4/IPv6)";
      return ParseOutcome::error;
    }
  }
  out = std::move(o);
  return ParseOutcome::run;
}

}  // namespace ringlink::load
