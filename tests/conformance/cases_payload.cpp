// Sections 6 (UTF-8) and 9 (limits: large messages, many small ones).
// The 6.5 onwards sequences are the edge cases of Markus Kuhn's UTF-8 decoder
// test, grouped the way the Autobahn|Testsuite numbers them; each is sent
// whole (6.N.M), as one frame in 1-byte writes (6.N.M.b), and as 1-byte
// fragments (6.N.M.f). Invalid ones must fail with 1007 as soon as the first
// byte that cannot start or continue a valid sequence has arrived.
#include <cstring>
#include <string>
#include <thread>

#include "tests/conformance/cases.hpp"

namespace ringlink::conformance {

using wire::bytes;
using wire::concat;
using wire::frame;
using wire::WireConn;

namespace {

constexpr std::uint8_t CONT = 0x0, TEXT = 0x1, BIN = 0x2;

struct Group {
  std::string name;
  std::vector<Bytes> seqs;
};

std::vector<Group> utf8_groups() {
  std::vector<Group> g;
  const Bytes kosme = hex("cebae1bdb9cf83cebcceb5");
  g.push_back({"valid sequences",
               {bytes("hello$world"), concat({bytes("hello"), hex("c2a2"), bytes("world")}),
                concat({bytes("hello"), hex("e282ac"), bytes("world")}),
                concat({bytes("hello"), hex("f0a4ada2"), bytes("world")}), kosme}});
  Group prefixes{"every prefix of a multi-byte string", {}};
  for (std::size_t i = 1; i <= kosme.size(); ++i) prefixes.seqs.emplace_back(kosme.begin(), kosme.begin() + static_cast<std::ptrdiff_t>(i));
  g.push_back(prefixes);
  g.push_back({"first sequence of each length", {hex("00"), hex("c280"), hex("e0a080"), hex("f0908080")}});
  g.push_back({"first sequence of length 5 and 6", {hex("f888808080"), hex("fc8480808080")}});
  g.push_back({"last sequence of each length", {hex("7f"), hex("dfbf"), hex("efbfbf"), hex("f48fbfbf")}});
  g.push_back({"last sequence of length 4, 5, 6", {hex("f7bfbfbf"), hex("fbbfbfbfbf"), hex("fdbfbfbfbfbf")}});
  g.push_back({"other boundaries", {hex("ed9fbf"), hex("ee8080"), hex("efbfbd"), hex("f48fbfbf"), hex("f4908080")}});
  Group cont{"unexpected continuation bytes", {hex("80"), hex("bf"), hex("80bf"), hex("80bf80"), hex("80bf80bf"),
                                               hex("80bf80bf80"), hex("80bf80bf80bf")}};
  Bytes all_cont;
  for (int b = 0x80; b < 0xBF; ++b) all_cont.push_back(static_cast<std::uint8_t>(b));
  cont.seqs.push_back(all_cont);
  g.push_back(cont);
  Group lonely{"lonely start bytes", {}};
  for (auto [lo, hi] : {std::pair{0xC0, 0xDF}, {0xE0, 0xEF}, {0xF0, 0xF7}, {0xF8, 0xFB}, {0xFC, 0xFD}}) {
    Bytes s;
    for (int b = lo; b < hi; ++b) {
      s.push_back(static_cast<std::uint8_t>(b));
      s.push_back(0x20);
    }
    lonely.seqs.push_back(s);
  }
  g.push_back(lonely);
  const std::vector<Bytes> cut = {hex("c0"),       hex("e080"),     hex("f08080"), hex("f8808080"),
                                  hex("fc80808080"), hex("df"),     hex("efbf"),   hex("f7bfbf"),
                                  hex("fbbfbfbf"),   hex("fdbfbfbfbf")};
  g.push_back({"last continuation byte missing", cut});
  Bytes joined;
  for (const auto& s : cut) joined.insert(joined.end(), s.begin(), s.end());
  g.push_back({"concatenated incomplete sequences", {joined}});
  g.push_back({"impossible bytes", {hex("fe"), hex("ff"), hex("fefeffff")}});
  g.push_back({"overlong slash", {hex("c0af"), hex("e080af"), hex("f08080af"), hex("f8808080af"), hex("fc80808080af")}});
  g.push_back({"maximum overlong sequences",
               {hex("c1bf"), hex("e09fbf"), hex("f08fbfbf"), hex("f887bfbfbf"), hex("fc83bfbfbfbf")}});
  g.push_back({"overlong NUL", {hex("c080"), hex("e08080"), hex("f0808080"), hex("f880808080"), hex("fc8080808080")}});
  g.push_back({"single UTF-16 surrogates",
               {hex("eda080"), hex("edadbf"), hex("edae80"), hex("edafbf"), hex("edb080"), hex("edbe80"), hex("edbfbf")}});
  g.push_back({"paired UTF-16 surrogates",
               {hex("eda080edb080"), hex("eda080edbfbf"), hex("edadbfedb080"), hex("edadbfedbfbf"), hex("edae80edb080"),
                hex("edae80edbfbf"), hex("edafbfedb080"), hex("edafbfedbfbf")}});
  Group nonchars{"non-characters (valid UTF-8)", {hex("efbfbe"), hex("efbfbf")}};
  for (std::uint8_t z1 : {0xF0, 0xF1, 0xF2, 0xF3, 0xF4})
    for (std::uint8_t z2 : {0x8F, 0x9F, 0xAF, 0xBF}) {
      if (z1 == 0xF4 && z2 != 0x8F) continue;   // beyond U+10FFFF
      if (z1 == 0xF0 && z2 == 0x8F) continue;   // overlong
      for (std::uint8_t z3 : {0xBE, 0xBF}) nonchars.seqs.push_back(Bytes{z1, z2, 0xBF, z3});
    }
  g.push_back(nonchars);
  g.push_back({"specials", {hex("efbfb9"), hex("efbfba"), hex("efbfbb"), hex("efbfbc"), hex("efbfbd"), hex("efbfbe"), hex("efbfbf")}});
  return g;
}

Expect echo_text(const Bytes& p) { return Expect{{{TEXT, p}}, End::clean, {}, {}, false, hang_ms}; }
Expect fails1007() { return Expect{{}, End::fail, {1007}, {}, false, hang_ms}; }

std::vector<Bytes> byte_fragments(const Bytes& s) {
  std::vector<Bytes> out;
  for (std::size_t i = 0; i < s.size(); ++i) out.push_back(frame(i == 0 ? TEXT : CONT, Bytes{s[i]}, i + 1 == s.size()));
  return out;
}

Bytes join(const std::vector<Bytes>& v, std::size_t from, std::size_t to) {
  Bytes out;
  for (std::size_t i = from; i < to && i < v.size(); ++i) out.insert(out.end(), v[i].begin(), v[i].end());
  return out;
}

// One sequence in one of the three ways, valid or not.
Case utf8_case(std::string id, std::string title, Bytes seq, int way) {
  return {std::move(id), std::move(title), [seq = std::move(seq), way](std::uint16_t port) {
            WireConn c;
            if (c.open(port) != 101) return Result{Verdict::failed, "upgrade failed"};
            c.start_reader();
            const std::size_t bad = utf8_first_bad(seq);
            const bool valid = bad == std::string::npos;
            const Expect e = valid ? echo_text(seq) : fails1007();
            if (way == 0) {
              c.write(frame(TEXT, seq));
              return judge(c, e);
            }
            if (way == 1) {  // one frame, 1-byte writes; the header goes first
              const Bytes f = frame(TEXT, seq);
              const std::size_t header = f.size() - seq.size();
              if (valid || bad >= seq.size()) {
                c.write_chopped(f, 1);
                return judge(c, e);
              }
              // Within a frame the bytes up to the bad one are written first.
              const Bytes before(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(header + bad + 1));
              const Bytes after(f.begin() + static_cast<std::ptrdiff_t>(header + bad + 1), f.end());
              return fail_fast(c, before, after, e);
            }
            const std::vector<Bytes> frags = byte_fragments(seq);
            if (valid || bad >= seq.size()) {
              c.write(join(frags, 0, frags.size()));
              return judge(c, e);
            }
            return fail_fast(c, join(frags, 0, bad + 1), join(frags, bad + 1, frags.size()), e);
          }};
}

Bytes text_message_frames(const Bytes& msg, std::size_t frag, std::uint8_t op) {
  Bytes out;
  if (msg.empty()) return frame(op, msg);
  for (std::size_t i = 0; i < msg.size(); i += frag) {
    const std::size_t n = std::min(frag, msg.size() - i);
    const Bytes part(msg.begin() + static_cast<std::ptrdiff_t>(i), msg.begin() + static_cast<std::ptrdiff_t>(i + n));
    const Bytes f = frame(i == 0 ? op : CONT, part, i + n == msg.size());
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

}  // namespace

std::vector<Case> utf8_cases() {
  std::vector<Case> out;
  auto add = [&](std::string id, std::string title, std::vector<Bytes> frames, bool per_byte, Expect e) {
    out.push_back({std::move(id), std::move(title), [frames = std::move(frames), per_byte, e = std::move(e)](std::uint16_t port) {
                     return run_simple(port, [&](WireConn& c) {
                       for (const auto& f : frames) per_byte ? c.write_chopped(f, 1) : c.write(f);
                     }, e);
                   }});
  };
  add("6.1.1", "empty text message", {frame(TEXT, {})}, false, echo_text({}));
  add("6.1.2", "text of three empty fragments", {frame(TEXT, {}, false), frame(CONT, {}, false), frame(CONT, {})}, false,
      echo_text({}));
  add("6.1.3", "empty first and last fragments around a payload",
      {frame(TEXT, {}, false), frame(CONT, bytes("middle frame payload"), false), frame(CONT, {})}, false,
      echo_text(bytes("middle frame payload")));
  const Bytes hello = concat({bytes("Hello-"), hex("c2b5"), bytes("@"), hex("c39fc3b6c3a4c3bcc3a0c3a1"), bytes("-UTF-8!!")});
  add("6.2.1", "valid UTF-8 in one frame", {frame(TEXT, hello)}, false, echo_text(hello));
  add("6.2.2", "valid UTF-8 in 2 fragments split on a code point boundary",
      {frame(TEXT, Bytes(hello.begin(), hello.begin() + 8), false), frame(CONT, Bytes(hello.begin() + 8, hello.end()))}, false,
      echo_text(hello));
  add("6.2.3", "valid UTF-8 in one frame, octet-wise writes", {frame(TEXT, hello)}, true, echo_text(hello));
  add("6.2.4", "valid UTF-8 in 1-byte fragments (code points split across frames)", byte_fragments(hello), false,
      echo_text(hello));
  const Bytes invalid = hex("cebae1bdb9cf83cebcceb5eda080656469746564");
  add("6.3.1", "invalid UTF-8 in one frame", {frame(TEXT, invalid)}, false, fails1007());
  out.push_back(utf8_case("6.3.2", "invalid UTF-8 in 1-byte fragments", invalid, 2));
  // 6.4: fail fast, before the rest of the message arrives.
  struct Parts { Bytes a, b, c; };
  const Parts p1{hex("cebae1bdb9cf83cebcceb5"), hex("f4908080"), hex("656469746564")};
  const Parts p2{hex("cebae1bdb9cf83cebcceb5f4"), hex("90"), hex("8080656469746564")};
  for (int i = 0; i < 2; ++i) {
    const Parts& p = i == 0 ? p1 : p2;
    out.push_back({"6.4." + std::to_string(i + 1), "invalid UTF-8 in 3 fragments: fail at the 2nd", [p](std::uint16_t port) {
                     WireConn c;
                     if (c.open(port) != 101) return Result{Verdict::failed, "upgrade failed"};
                     c.start_reader();
                     c.write(frame(TEXT, p.a, false));
                     // Lets the first part arrive on its own, as the case's
                     // peer would send it; the verdict does not depend on it.
                     std::this_thread::sleep_for(std::chrono::milliseconds(20));
                     return fail_fast(c, frame(CONT, p.b, false), frame(CONT, p.c), fails1007());
                   }});
  }
  for (int i = 0; i < 2; ++i) {
    const Parts& p = i == 0 ? p1 : p2;
    out.push_back({"6.4." + std::to_string(i + 3), "invalid UTF-8 in one frame written in 3 chops: fail at the 2nd",
                   [p](std::uint16_t port) {
                     WireConn c;
                     if (c.open(port) != 101) return Result{Verdict::failed, "upgrade failed"};
                     c.start_reader();
                     const Bytes f = frame(TEXT, concat({p.a, p.b, p.c}));
                     const std::size_t h = f.size() - p.a.size() - p.b.size() - p.c.size();
                     const auto cut1 = f.begin() + static_cast<std::ptrdiff_t>(h + p.a.size());
                     const auto cut2 = cut1 + static_cast<std::ptrdiff_t>(p.b.size());
                     c.write(Bytes(f.begin(), cut1));
                     // Lets the first chop arrive on its own (see 6.4.1).
                     std::this_thread::sleep_for(std::chrono::milliseconds(20));
                     return fail_fast(c, Bytes(cut1, cut2), Bytes(cut2, f.end()), fails1007());
                   }});
  }
  int i = 5;
  for (const Group& g : utf8_groups()) {
    int j = 1;
    for (const Bytes& s : g.seqs) {
      const std::string id = "6." + std::to_string(i) + "." + std::to_string(j++);
      out.push_back(utf8_case(id, g.name, s, 0));
      out.push_back(utf8_case(id + ".b", g.name + ", octet-wise writes", s, 1));
      out.push_back(utf8_case(id + ".f", g.name + ", 1-byte fragments", s, 2));
    }
    ++i;
  }
  return out;
}

std::vector<Case> limits_cases() {
  std::vector<Case> out;
  auto big = [&](std::string id, std::string title, std::uint8_t op, Bytes msg, std::size_t frag, std::size_t chop) {
    Bytes wire_bytes = text_message_frames(msg, frag, op);
    out.push_back({std::move(id), std::move(title), [wire_bytes = std::move(wire_bytes), msg = std::move(msg), op, chop](std::uint16_t port) {
                     Expect e{{{op, msg}}, End::clean, {}, {}, false, 20000};
                     return run_simple(port, [&](WireConn& c) { chop == 0 ? c.write(wire_bytes) : c.write_chopped(wire_bytes, chop); }, e);
                   }});
  };
  const std::size_t sizes[] = {64u << 10, 256u << 10, 1u << 20, 4u << 20, 8u << 20, 16u << 20};
  const char* names[] = {"64 KiB", "256 KiB", "1 MiB", "4 MiB", "8 MiB", "16 MiB"};
  for (int k = 1; k <= 2; ++k) {
    const std::uint8_t op = k == 1 ? TEXT : BIN;
    const std::string kind = k == 1 ? "text" : "binary";
    for (int j = 0; j < 6; ++j) {
      Bytes m = k == 1 ? text_payload(sizes[j]) : binary_payload(sizes[j], static_cast<std::uint32_t>(j));
      big("9." + std::to_string(k) + "." + std::to_string(j + 1), kind + " message of " + names[j], op, std::move(m), sizes[j], 0);
    }
  }
  const std::size_t frags[] = {64, 256, 1024, 4096, 16384, 65536, 256u << 10, 1u << 20, 4u << 20};
  for (int k = 3; k <= 4; ++k) {
    const std::uint8_t op = k == 3 ? TEXT : BIN;
    const Bytes m = k == 3 ? text_payload(4u << 20) : binary_payload(4u << 20, 44);
    for (int j = 0; j < 9; ++j)
      big("9." + std::to_string(k) + "." + std::to_string(j + 1),
          std::string(k == 3 ? "text" : "binary") + " 4 MiB in fragments of " + std::to_string(frags[j]) + " bytes", op, m,
          frags[j], 0);
  }
  const std::size_t chops[] = {64, 128, 256, 512, 1024, 2048};
  for (int k = 5; k <= 6; ++k) {
    const std::uint8_t op = k == 5 ? TEXT : BIN;
    const Bytes m = k == 5 ? text_payload(1u << 20) : binary_payload(1u << 20, 55);
    for (int j = 0; j < 6; ++j)
      big("9." + std::to_string(k) + "." + std::to_string(j + 1),
          std::string(k == 5 ? "text" : "binary") + " 1 MiB in one frame, writes of " + std::to_string(chops[j]) + " bytes",
          op, m, m.size(), chops[j]);
  }
  // Many small messages sent back to back; every echo in order.
  auto many = [&](std::string id, std::uint8_t op, std::size_t count, std::size_t size) {
    out.push_back({id, std::to_string(count) + (op == TEXT ? " text" : " binary") + " messages of " + std::to_string(size) + " bytes",
                   [op, count, size](std::uint16_t port) {
                     Expect e{{}, End::clean, {}, {}, false, 20000};
                     Bytes all;
                     for (std::size_t i = 0; i < count; ++i) {
                       Bytes m = op == TEXT ? text_payload(size) : binary_payload(size, static_cast<std::uint32_t>(i));
                       if (size >= 4 && op == BIN) std::memcpy(m.data(), &i, 4);
                       const Bytes f = frame(op, m);
                       all.insert(all.end(), f.begin(), f.end());
                       e.events.push_back({op, std::move(m)});
                     }
                     return run_simple(port, [&](WireConn& c) { c.write(all); }, e);
                   }});
  };
  const std::size_t small[] = {0, 16, 64, 256, 1024, 4096};
  for (int j = 0; j < 6; ++j) many("9.7." + std::to_string(j + 1), TEXT, 1000, small[j]);
  for (int j = 0; j < 6; ++j) many("9.8." + std::to_string(j + 1), BIN, 1000, small[j]);
  many("9.9.1", BIN, 10000, 64);
  many("9.9.2", TEXT, 10000, 64);
  return out;
}

}  // namespace ringlink::conformance
