// Verdicts for the conformance cases (see cases.hpp) and payload helpers.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "tests/conformance/cases.hpp"

namespace ringlink::conformance {

using wire::RxFrame;
using wire::WireConn;

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::ok: return "OK";
    case Verdict::non_strict: return "NON-STRICT";
    case Verdict::failed: return "FAILED";
  }
  return "?";
}

namespace {

constexpr std::uint8_t op_close = 0x8;

// Data frames joined into messages; control frames as they are. A message
// still open at the end comes back with op 0xFF (never expected).
std::vector<Want> events_of(const std::vector<RxFrame>& frames, std::size_t upto) {
  std::vector<Want> out;
  bool in_message = false;
  for (std::size_t i = 0; i < upto; ++i) {
    const RxFrame& f = frames[i];
    if (f.opcode >= 0x8) {
      out.push_back({f.opcode, f.payload});
      continue;
    }
    if (!in_message) {
      out.push_back({f.opcode, f.payload});
      in_message = !f.fin;
    } else {
      // Find the open message (the last data event).
      for (auto it = out.rbegin(); it != out.rend(); ++it)
        if (it->op < 0x8) {
          it->payload.insert(it->payload.end(), f.payload.begin(), f.payload.end());
          break;
        }
      in_message = !f.fin;
    }
  }
  if (in_message)
    for (auto it = out.rbegin(); it != out.rend(); ++it)
      if (it->op < 0x8) {
        it->op = 0xFF;
        break;
      }
  return out;
}

std::string describe(const Want& w) {
  std::string s = "op " + std::to_string(w.op) + " len " + std::to_string(w.payload.size());
  if (w.payload.size() <= 24 && w.op != 2) {
    s += " \"";
    for (auto b : w.payload) s += (b >= 0x20 && b < 0x7F) ? static_cast<char>(b) : '.';
    s += "\"";
  }
  return s;
}

// Compares received events with the expected ones. 0: equal; 1: a strict
// prefix was received; 2: different.
int compare(const std::vector<Want>& got, const std::vector<Want>& want, std::string& why) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (i >= want.size()) {
      why = "unexpected " + describe(got[i]);
      return 2;
    }
    if (got[i].op != want[i].op || got[i].payload != want[i].payload) {
      why = "event " + std::to_string(i) + ": got " + describe(got[i]) + ", want " + describe(want[i]);
      return 2;
    }
  }
  if (got.size() < want.size()) {
    why = "got " + std::to_string(got.size()) + " of " + std::to_string(want.size()) + " expected events";
    return 1;
  }
  return 0;
}

bool contains(const std::vector<std::uint16_t>& v, std::uint16_t c) { return std::find(v.begin(), v.end(), c) != v.end(); }

}  // namespace

Result judge(WireConn& c, const Expect& e) {
  Result r;
  auto fail = [&](std::string why) {
    r.verdict = Verdict::failed;
    r.note = std::move(why);
    return r;
  };
  auto check_server = [&]() -> bool {
    const std::string err = c.server_error();
    if (err.empty()) return true;
    r.verdict = Verdict::failed;
    r.note = err;
    return false;
  };

  if (e.end == End::clean) {
    // Every expected event first; then our close must be the next thing answered.
    for (;;) {
      const auto frames = c.frames();
      const auto got = events_of(frames, frames.size());
      std::string why;
      const int cmp = compare(got, e.events, why);
      if (cmp == 2) return fail(why);
      if (cmp == 0) break;
      const std::size_t have = frames.size();
      if (!c.wait_frames(have + 1, e.timeout_ms)) return fail(why + (c.eof() ? " (TCP closed)" : " (timeout)"));
    }
    const std::size_t before = c.frame_count();
    c.write(wire::frame(op_close, wire::close_payload(1000)));
    const int at = c.wait_close_frame(hang_ms);
    if (at < 0) return fail("no close frame after our close 1000");
    const auto frames = c.frames();
    if (static_cast<std::size_t>(at) != before)
      return fail("unexpected frame before the close reply: " + describe({frames[before].opcode, frames[before].payload}));
    if (frames[at].close_code() != 1000)
      return fail("close reply code " + std::to_string(frames[at].close_code()) + ", want 1000");
    if (!c.wait_eof(hang_ms)) return fail("no TCP close after the close handshake");
    if (!check_server()) return r;
    r.verdict = Verdict::ok;
    return r;
  }

  const int at = c.wait_close_frame(e.timeout_ms);
  if (at < 0) {
    if (c.eof()) {
      // RFC 6455 7.1.7: the endpoint SHOULD send a close frame first.
      r.verdict = Verdict::non_strict;
      r.note = "TCP closed without a close frame";
      return r;
    }
    return fail("no close frame within " + std::to_string(e.timeout_ms) + " ms");
  }
  const auto frames = c.frames();
  const auto got = events_of(frames, static_cast<std::size_t>(at));
  std::string why;
  const int cmp = compare(got, e.events, why);
  Verdict v = Verdict::ok;
  if (cmp == 2) return fail(why);
  if (cmp == 1) {
    if (!e.events_optional) return fail(why);
    v = Verdict::non_strict;
    r.note = why;
  }
  const std::uint16_t code = frames[at].close_code();
  if (frames[at].payload.size() == 1) return fail("close frame with a 1-byte payload");
  if (!contains(e.codes, code)) {
    if (e.end == End::close_reply && contains(e.loose_codes, code)) {
      v = Verdict::non_strict;
      r.note = "close code " + std::to_string(code) + " instead of the echo";
    } else {
      std::string want;
      for (auto w : e.codes) want += std::to_string(w) + " ";
      return fail("close code " + std::to_string(code) + ", want " + want);
    }
  }
  if (e.end == End::fail) {
    // The server failed the connection: it must end TCP without our reply.
    if (!c.wait_eof(strict_window_ms)) {
      c.write(wire::frame(op_close, wire::close_payload(code == 1005 ? 1000 : code)));
      if (!c.wait_eof(hang_ms)) return fail("close " + std::to_string(code) + " but no TCP close");
      v = Verdict::non_strict;
      r.note = "TCP closed only after our close reply";
    }
  } else if (!c.wait_eof(hang_ms)) {
    return fail("no TCP close after the close handshake");
  }
  // Anything after the close frame is a protocol violation by the server.
  const auto all = c.frames();
  if (all.size() > static_cast<std::size_t>(at) + 1) return fail("frames after the server's close frame");
  if (!check_server()) return r;
  r.verdict = v;
  return r;
}

Result fail_fast(WireConn& c, const Bytes& before, const Bytes& after, const Expect& e, int fast_ms) {
  c.write(before);
  if (c.wait_close_frame(fast_ms) >= 0) return judge(c, e);
  c.write(after);
  Result r = judge(c, e);
  if (r.verdict == Verdict::ok) {
    r.verdict = Verdict::non_strict;
    r.note = "failed only after the rest of the message arrived";
  }
  return r;
}

Result run_simple(std::uint16_t port, const std::function<void(WireConn&)>& send, const Expect& e) {
  WireConn c;
  const int status = c.open(port);
  if (status != 101) return {Verdict::failed, "upgrade answered " + std::to_string(status)};
  c.start_reader();
  send(c);
  return judge(c, e);
}

Bytes text_payload(std::size_t n) {
  static const std::string unit = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \xCE\xBA\xE1\xBD\xB9";  // 1-4 byte code points
  Bytes s;
  s.reserve(n);
  while (s.size() + unit.size() <= n) s.insert(s.end(), unit.begin(), unit.end());
  while (s.size() < n) s.push_back('x');
  return s;
}

Bytes binary_payload(std::size_t n, std::uint32_t seed) {
  Bytes v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

Bytes hex(std::string_view h) {
  Bytes out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<std::uint8_t>(nib(h[i]) << 4 | nib(h[i + 1])));
  return out;
}

std::size_t utf8_first_bad(const Bytes& s) {
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    int need = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte (RFC 3629 table)
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b == 0xE0) {
      need = 2, lo = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      need = 2;
    } else if (b == 0xED) {
      need = 2, hi = 0x9F;
    } else if (b == 0xF0) {
      need = 3, lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      need = 3;
    } else if (b == 0xF4) {
      need = 3, hi = 0x8F;
    } else {
      return i;
    }
    for (int k = 1; k <= need; ++k) {
      if (i + static_cast<std::size_t>(k) >= n) return n;
      const std::uint8_t c = s[i + static_cast<std::size_t>(k)];
      const bool good = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
      if (!good) return i + static_cast<std::size_t>(k);
    }
    i += static_cast<std::size_t>(need) + 1;
  }
  return std::string::npos;
}

}  // namespace ringlink::conformance
