// Upgrade (U) and masking (M) cases. An upgrade refusal is OK when the
// status is exact, the response says `Connection: close` (426 also
// `Sec-WebSocket-Version: 13`) and the server closes TCP; a late TCP close is
// NON-STRICT.
#include <algorithm>
#include <cctype>
#include <string>

#include "tests/conformance/cases.hpp"

namespace ringlink::conformance {

using wire::bytes;
using wire::close_payload;
using wire::frame;
using wire::WireConn;

namespace {

constexpr std::uint8_t TEXT = 0x1, BIN = 0x2, CLOSE = 0x8, PING = 0x9;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool has_header(const std::string& head, std::string_view line) { return lower(head).find(lower(std::string(line))) != std::string::npos; }

const std::string kKey = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
const std::string kAccept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string request(std::string_view request_line, std::string_view fields) {
  return std::string(request_line) + "\r\n" + std::string(fields) + "\r\n";
}
const std::string kStd = "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey + "Sec-WebSocket-Version: 13\r\n";

// An accepted upgrade: 101 with the right accept key, then an echo works.
Case accepts(std::string id, std::string title, std::string req, std::size_t chop) {
  return {std::move(id), std::move(title), [req = std::move(req), chop](std::uint16_t port) {
            WireConn c;
            if (!c.connect(port)) return Result{Verdict::failed, "connect failed"};
            const Bytes b = bytes(req);
            chop == 0 ? c.write(b) : c.write_chopped(b, chop);
            const int status = c.read_head(hang_ms);
            if (status != 101) return Result{Verdict::failed, "status " + std::to_string(status) + ", want 101"};
            if (!has_header(c.head(), kAccept)) return Result{Verdict::failed, "wrong or missing Sec-WebSocket-Accept"};
            c.start_reader();
            c.write(frame(TEXT, bytes("after upgrade")));
            return judge(c, Expect{{{TEXT, bytes("after upgrade")}}, End::clean, {}, {}, false, hang_ms});
          }};
}

Case refuses(std::string id, std::string title, std::string req, int status, std::size_t chop = 0,
             std::string must_have = {}) {
  return {std::move(id), std::move(title), [req = std::move(req), status, chop, must_have](std::uint16_t port) {
            WireConn c;
            if (!c.connect(port)) return Result{Verdict::failed, "connect failed"};
            const Bytes b = bytes(req);
            chop == 0 ? c.write(b) : c.write_chopped(b, chop);
            const int got = c.read_head(hang_ms);
            if (got != status) return Result{Verdict::failed, "status " + std::to_string(got) + ", want " + std::to_string(status)};
            if (!has_header(c.head(), "Connection: close")) return Result{Verdict::failed, "no Connection: close"};
            if (!must_have.empty() && !has_header(c.head(), must_have)) return Result{Verdict::failed, "missing " + must_have};
            if (!c.wait_eof(strict_window_ms)) {
              if (!c.wait_eof(hang_ms)) return Result{Verdict::failed, "no TCP close after the refusal"};
              return Result{Verdict::non_strict, "TCP closed late"};
            }
            return Result{Verdict::ok, {}};
          }};
}

}  // namespace

std::vector<Case> upgrade_cases() {
  std::vector<Case> out;
  const std::string line = "GET / HTTP/1.1";
  out.push_back(accepts("U.1", "valid upgrade request", request(line, kStd), 0));
  out.push_back(accepts("U.2", "valid request in 1-byte writes", request(line, kStd), 1));
  out.push_back(accepts("U.3", "valid request in 7-byte writes (CRLF split)", request(line, kStd), 7));
  out.push_back(accepts("U.4", "token lists in any case",
                        request(line, "Host: 127.0.0.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n" + kKey +
                                          "Sec-WebSocket-Version: 13\r\n"),
                        0));
  out.push_back(accepts("U.5", "field names in any case",
                        request(line, "HOST: 127.0.0.1\r\nupgrade: websocket\r\nCONNECTION: Upgrade, Keep-Alive\r\n"
                                      "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n"),
                        0));
  {
    std::string lf = request(line, kStd);
    std::string bare;
    for (char ch : lf)
      if (ch != '\r') bare.push_back(ch);
    out.push_back(accepts("U.6", "bare LF line ends", bare, 0));
  }
  out.push_back(accepts("U.7", "extra unknown fields and a path with a query",
                        request("GET /chat?room=1 HTTP/1.1", kStd + "X-Custom: a, b\r\nUser-Agent: conformance\r\n"), 0));
  out.push_back({"U.8", "upgrade and a first frame in the same write", [](std::uint16_t port) {
                   WireConn c;
                   if (!c.connect(port)) return Result{Verdict::failed, "connect failed"};
                   Bytes b = bytes(request("GET / HTTP/1.1", kStd));
                   const Bytes f = frame(TEXT, bytes("early"));
                   b.insert(b.end(), f.begin(), f.end());
                   c.write(b);
                   if (c.read_head(hang_ms) != 101) return Result{Verdict::failed, "no 101"};
                   c.start_reader();
                   return judge(c, Expect{{{TEXT, bytes("early")}}, End::clean, {}, {}, false, hang_ms});
                 }});
  out.push_back(refuses("U.9", "POST", request("POST / HTTP/1.1", kStd), 405));
  out.push_back(refuses("U.10", "lower-case method", request("get / HTTP/1.1", kStd), 405));
  out.push_back(refuses("U.11", "HTTP/1.0", request("GET / HTTP/1.0", kStd), 400));
  out.push_back(refuses("U.12", "absolute-form target", request("GET http://127.0.0.1/ HTTP/1.1", kStd), 400));
  out.push_back(refuses("U.13", "no Host",
                        request(line, "Upgrade: websocket\r\nConnection: Upgrade\r\n" + kKey + "Sec-WebSocket-Version: 13\r\n"), 400));
  out.push_back(refuses("U.14", "no Sec-WebSocket-Key",
                        request(line, "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"), 400));
  out.push_back(refuses("U.15", "Sec-WebSocket-Key not 16 bytes",
                        request(line, "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc=\r\n"
                                      "Sec-WebSocket-Version: 13\r\n"),
                        400));
  out.push_back(refuses("U.16", "Upgrade: h2c",
                        request(line, "Host: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" + kKey + "Sec-WebSocket-Version: 13\r\n"), 400));
  out.push_back(refuses("U.17", "Connection without the upgrade token",
                        request(line, "Host: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" + kKey + "Sec-WebSocket-Version: 13\r\n"),
                        400));
  out.push_back(refuses("U.18", "obsolete line folding", request(line, kStd + "X-Folded: a\r\n b\r\n"), 400));
  out.push_back(refuses("U.19", "a body (Content-Length: 5)", request(line, kStd + "Content-Length: 5\r\n"), 400));
  out.push_back(refuses("U.20", "two Host fields", request(line, kStd + "Host: b\r\n"), 400));
  out.push_back(refuses("U.21", "space before the colon", request(line, kStd + "X-Bad : 1\r\n"), 400));
  const std::string no_version = "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + kKey;
  out.push_back(refuses("U.22", "Sec-WebSocket-Version: 8", request(line, no_version + "Sec-WebSocket-Version: 8\r\n"), 426, 0,
                        "Sec-WebSocket-Version: 13"));
  out.push_back(refuses("U.23", "no Sec-WebSocket-Version", request(line, no_version), 426, 0, "Sec-WebSocket-Version: 13"));
  out.push_back(refuses("U.24", "Sec-WebSocket-Version: 13, 8", request(line, no_version + "Sec-WebSocket-Version: 13, 8\r\n"),
                        426, 0, "Sec-WebSocket-Version: 13"));
  out.push_back(refuses("U.25", "head over the byte limit (one long field)",
                        request(line, kStd + "X-Long: " + std::string(9000, 'a') + "\r\n"), 431));
  {
    std::string many = kStd;
    for (int i = 0; i < 70; ++i) many += "X-F" + std::to_string(i) + ": v\r\n";
    out.push_back(refuses("U.26", "more header fields than the limit", request(line, many), 431));
  }
  out.push_back(refuses("U.27", "head over the byte limit, never ended, 512-byte writes",
                        line + "\r\n" + kStd + "X-Long: " + std::string(9000, 'b'), 431, 512));
  out.push_back(refuses("U.28", "binary garbage in the request line", "\x16\x03\x01\x02\x05\x01\x07\x01\xfc\x03\x03\r\n\r\n", 400));
  return out;
}

std::vector<Case> masking_cases() {
  std::vector<Case> out;
  auto fails = [](std::vector<Want> before) { return Expect{std::move(before), End::fail, {1002}, {}, true, hang_ms}; };
  auto simple = [&](std::string id, std::string title, std::vector<Bytes> frames, std::size_t chop, Expect e) {
    out.push_back({std::move(id), std::move(title), [frames = std::move(frames), chop, e = std::move(e)](std::uint16_t port) {
                     return run_simple(port, [&](WireConn& c) {
                       for (const auto& f : frames) chop == 0 ? c.write(f) : c.write_chopped(f, chop);
                     }, e);
                   }});
  };
  simple("M.1", "unmasked text", {frame(TEXT, bytes("hello"), true, false)}, 0, fails({}));
  simple("M.2", "valid text, then unmasked binary", {frame(TEXT, bytes("first")), frame(BIN, bytes("x"), true, false)}, 0,
         fails({{TEXT, bytes("first")}}));
  simple("M.3", "unmasked ping", {frame(PING, bytes("p"), true, false)}, 0, fails({}));
  simple("M.4", "unmasked close", {frame(CLOSE, close_payload(1000), true, false)}, 0, fails({}));
  simple("M.5", "unmasked empty text, octet-wise writes", {frame(TEXT, {}, true, false)}, 1, fails({}));
  simple("M.6", "unmasked continuation of a masked start",
         {frame(TEXT, bytes("a"), false), frame(0x0, bytes("b"), true, false)}, 0, fails({}));
  simple("M.7", "mask key 0 (valid)", {frame(TEXT, bytes("zero key"), true, true, 0, 0)}, 0,
         Expect{{{TEXT, bytes("zero key")}}, End::clean, {}, {}, false, hang_ms});
  simple("M.8", "a different mask key per frame",
         {frame(TEXT, bytes("k1"), false, true, 0, 0x01020304), frame(0x0, bytes("k2"), true, true, 0, 0xA1B2C3D4)}, 0,
         Expect{{{TEXT, bytes("k1k2")}}, End::clean, {}, {}, false, hang_ms});
  return out;
}

}  // namespace ringlink::conformance
