// The conformance case model: a case drives one fresh connection to the
// echo server and returns a verdict in the spirit of the Autobahn|Testsuite
// fuzzing client:
//   OK          exactly the expected frames, the expected close code, and the
//               TCP close right after the close handshake;
//   NON-STRICT  the right outcome reached late or loosely: the close code is
//               right but TCP closed only after our reply, a violation was
//               detected only once the whole message had arrived instead of at
//               the first bad byte, an echo of a message sent before the
//               violation is missing, a valid close code echoed as 1000;
//   FAILED      anything else (wrong frames or code, no close, a reply to a
//               frame sent after the violation, a masked server frame).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/wire_client.hpp"

namespace ringlink::conformance {

using wire::Bytes;

// How long the judge waits for something a conforming server sends at once:
// only a hang reaches it, so it is no judgment of speed.
inline constexpr int hang_ms = 10000;
// How long the judge gives the server to do something strictly (fail before
// the rest of a message arrives; end TCP without our close reply) before it
// lets the case go on loosely and calls it NON-STRICT. A strict server does it
// within microseconds; a loose one never does, however long we wait. The
// window is generous so that a busy machine does not turn a strict server into
// a NON-STRICT one: the suite fails on an unlisted NON-STRICT case.
inline constexpr int strict_window_ms = 2000;

enum class Verdict : std::uint8_t { ok, non_strict, failed };
const char* to_string(Verdict v);

struct Result {
  Verdict verdict = Verdict::failed;
  std::string note;
};

struct Case {
  std::string id;                                  // "6.4.1"
  std::string title;
  std::function<Result(std::uint16_t port)> run;
};

// One expected event: a control frame, or a whole data message (fragments
// joined: the server may fragment its echoes as it likes).
struct Want {
  std::uint8_t op = 0;
  Bytes payload;
};

enum class End : std::uint8_t {
  clean,        // still open afterwards: our close 1000 gets 1000 back, then TCP closes
  fail,         // the server fails the connection with one of `codes`
  close_reply,  // the case sent a close: the server answers with one of `codes`
};

struct Expect {
  std::vector<Want> events;
  End end = End::clean;
  std::vector<std::uint16_t> codes;        // 1005: a close frame without a code
  std::vector<std::uint16_t> loose_codes;  // close_reply: accepted as NON-STRICT
  bool events_optional = false;            // fail: a missing tail of `events` is NON-STRICT
  int timeout_ms = hang_ms;
};

// Judges what the connection received against `e` (see the verdicts above).
Result judge(wire::WireConn& c, const Expect& e);

// Writes `before`, gives the server `fast_ms` to fail the connection, then
// writes `after`. A failure seen only after `after` is NON-STRICT.
Result fail_fast(wire::WireConn& c, const Bytes& before, const Bytes& after, const Expect& e,
                 int fast_ms = strict_window_ms);

// Runs one case with a fresh connection: `send` writes, `e` judges.
Result run_simple(std::uint16_t port, const std::function<void(wire::WireConn&)>& send, const Expect& e);

// Case tables, one per section.
std::vector<Case> framing_cases();       // 1
std::vector<Case> ping_cases();          // 2
std::vector<Case> reserved_bits_cases(); // 3
std::vector<Case> opcode_cases();        // 4
std::vector<Case> fragmentation_cases(); // 5
std::vector<Case> utf8_cases();          // 6
std::vector<Case> close_cases();         // 7
std::vector<Case> limits_cases();        // 9
std::vector<Case> upgrade_cases();       // U
std::vector<Case> masking_cases();       // M

// Payload helpers.
Bytes text_payload(std::size_t n);                   // valid UTF-8, mixed 1-4 byte code points
Bytes binary_payload(std::size_t n, std::uint32_t seed);
Bytes hex(std::string_view h);
// Index of the first byte after which `s` can no longer become valid UTF-8;
// s.size() when it is only cut short at the end; npos when valid.
std::size_t utf8_first_bad(const Bytes& s);

}  // namespace ringlink::conformance
