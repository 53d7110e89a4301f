// The opening handshake, both halves. Every request is fed whole, one byte at
// a time and at random split points, and must give the same answer and the
// same views each way; refusals are checked for their exact status and
// reason; the parsers also run with their input against a PROT_NONE page, so
// a read one byte past the end crashes the test.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/handshake_client.hpp"
#include "protocol/handshake_server.hpp"

#include "tests/alloc_counter.hpp"

namespace {
auto& g_allocations = ringlink::test::total_allocations;
}  // namespace

namespace ringlink {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::string_view kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// The request of RFC 6455 section 1.2, plus the version field it omits there.
const std::string kBaseRequest =
    "GET /chat?room=1 HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";
constexpr std::size_t kBaseFields = 8;

// Readable failures: "complete", not "1-byte object <01>".
}  // namespace
void PrintTo(ParseStatus s, std::ostream* os) {
  constexpr const char* names[] = {"incomplete", "complete", "error"};
  *os << names[static_cast<int>(s)];
}
void PrintTo(ClientHandshakeError e, std::ostream* os) { *os << to_string(e); }
namespace {

// kBaseRequest with the line starting with `name` replaced by `line` (empty:
// removed). `line` carries its own terminator.
std::string with_line(std::string_view name, std::string_view line) {
  std::string r = kBaseRequest;
  const std::size_t at = r.find(std::string(name));
  EXPECT_NE(at, std::string::npos) << name;
  const std::size_t end = r.find('\n', at) + 1;
  r.replace(at, end - at, line);
  return r;
}

// kBaseRequest with `lines` added right before the empty line.
std::string with_extra(std::string_view lines) {
  std::string r = kBaseRequest;
  r.insert(r.size() - 2, lines);
  return r;
}

// What a parse gave: the status and every view as an offset into the buffer,
// so that runs over different buffers can be compared.
struct Offsets {
  std::ptrdiff_t offset = -1;
  std::size_t size = 0;
  bool operator==(const Offsets&) const = default;
};

Offsets offsets(std::string_view v, std::string_view buffer) {
  if (v.empty()) return {};
  EXPECT_GE(v.data(), buffer.data());
  EXPECT_LE(v.data() + v.size(), buffer.data() + buffer.size());
  return {v.data() - buffer.data(), v.size()};
}

struct ServerOutcome {
  ParseStatus status = ParseStatus::incomplete;
  std::uint16_t error_status = 0;
  std::string reason;
  std::size_t head_length = 0;
  std::vector<Offsets> views;
  bool operator==(const ServerOutcome&) const = default;
};

ServerOutcome outcome(const UpgradeRequestParser& p, ParseStatus s, std::string_view buffer) {
  ServerOutcome o{s, p.error_status(), p.error_reason(), p.head_length(), {}};
  if (s == ParseStatus::complete) {
    for (std::string_view v : {p.method(), p.target(), p.path(), p.query(), p.host(), p.origin(),
                               p.key(), p.protocols(), p.extensions()}) {
      o.views.push_back(offsets(v, buffer));
    }
    for (const HeaderField& f : p.headers()) {
      o.views.push_back(offsets(f.name, buffer));
      o.views.push_back(offsets(f.value, buffer));
    }
  }
  return o;
}

// Feeds growing prefixes of `text` ending at each cut (ascending, the last
// one text.size()); before the last cut the parser may only say incomplete,
// or stop early with a final answer that every later call repeats.
ServerOutcome feed_server(std::string_view text, const std::vector<std::size_t>& cuts,
                          std::size_t max_bytes = config::max_header_bytes,
                          std::size_t max_fields = config::max_headers) {
  UpgradeRequestParser p{max_bytes, max_fields};
  ParseStatus s = ParseStatus::incomplete;
  std::optional<ParseStatus> first_final;
  for (std::size_t cut : cuts) {
    s = p.parse(text.substr(0, cut));
    if (first_final) {
      EXPECT_EQ(s, *first_final) << "a final answer must not change, cut " << cut;
    } else if (s != ParseStatus::incomplete) {
      first_final = s;
    }
  }
  return outcome(p, s, text);
}

std::vector<std::size_t> whole(std::string_view text) { return {text.size()}; }

std::vector<std::size_t> bytewise(std::string_view text) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i <= text.size(); ++i) cuts.push_back(i);
  return cuts;
}

std::vector<std::size_t> random_cuts(std::string_view text, std::mt19937& rng) {
  std::vector<std::size_t> cuts;
  std::size_t at = 0;
  while (at < text.size()) {
    at += std::uniform_int_distribution<std::size_t>{1, 40}(rng);
    cuts.push_back(std::min(at, text.size()));
  }
  return cuts;
}

// An mmap'd region whose usable bytes end exactly at a PROT_NONE page.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(std::size_t capacity) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    usable_ = (capacity + page_ - 1) / page_ * page_;
    void* m = mmap(nullptr, usable_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    EXPECT_NE(m, MAP_FAILED);
    base_ = static_cast<char*>(m);
    EXPECT_EQ(mprotect(base_ + usable_, page_, PROT_NONE), 0);
  }
  ~GuardedBuffer() { munmap(base_, usable_ + page_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  // Copies `bytes` so that their last byte is the last readable one.
  std::string_view place(std::string_view bytes) {
    char* at = base_ + usable_ - bytes.size();
    std::memcpy(at, bytes.data(), bytes.size());
    return {at, bytes.size()};
  }

 private:
  char* base_ = nullptr;
  std::size_t page_ = 0;
  std::size_t usable_ = 0;
};

// Every prefix, each placed against the guard page (so at a new address
// each time: this also exercises the views following a moved buffer).
ServerOutcome feed_server_guarded(std::string_view text) {
  GuardedBuffer g{text.size()};
  UpgradeRequestParser p;
  ParseStatus s = ParseStatus::incomplete;
  std::string_view placed;
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    placed = g.place(text.substr(0, cut));
    s = p.parse(placed);
  }
  return outcome(p, s, placed);
}

// ---------------------------------------------------------------- accept key

TEST(AcceptKey, RfcVector) {
  const std::array<char, 28> a = compute_accept_key(kRfcKey);
  EXPECT_EQ(std::string_view(a.data(), a.size()), kRfcAccept);
}

TEST(AcceptKey, ClientKeyFromRfcNonce) {
  // RFC 6455 section 1.3: the key is base64 of the 16 bytes "the sample nonce".
  constexpr std::string_view nonce_text = "the sample nonce";
  std::array<std::byte, 16> nonce{};
  std::memcpy(nonce.data(), nonce_text.data(), 16);
  const ClientKey k = make_client_key(nonce);
  EXPECT_EQ(k.key_view(), kRfcKey);
  EXPECT_EQ(k.accept_view(), kRfcAccept);
}

// ------------------------------------------------------------ valid requests

struct ValidRow {
  const char* name;
  std::string request;
  std::string_view path, query, host, origin, protocols, extensions;
  std::size_t trailing = 0;  // bytes after the head
};

std::vector<ValidRow> valid_rows() {
  const std::string frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s;
  return {
      {"rfc_example", kBaseRequest, "/chat", "room=1", "server.example.com", "http://example.com",
       "chat, superchat", "permessage-deflate"},
      {"minimal",
       "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
       "/", "", "h", "", "", ""},
      {"token_lists_any_case",
       with_line("Connection", "Connection: keep-alive, Upgrade\r\n"), "/chat", "room=1",
       "server.example.com", "http://example.com", "chat, superchat", "permessage-deflate"},
      {"names_and_tokens_upper_case",
       "GET /x? HTTP/1.1\r\nHOST: a:1\r\nUPGRADE: WebSocket\r\nCONNECTION: UPGRADE\r\n"
       "SEC-WEBSOCKET-VERSION: 13\r\nSEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
       "/x", "", "a:1", "", "", ""},
      {"connection_token_in_second_field",
       with_line("Connection", "Connection: keep-alive\r\nconnection: ,Upgrade ,\r\n"), "/chat",
       "room=1", "server.example.com", "http://example.com", "chat, superchat",
       "permessage-deflate"},
      {"upgrade_list", with_line("Upgrade", "Upgrade: h2c,  websocket\r\n"), "/chat", "room=1",
       "server.example.com", "http://example.com", "chat, superchat", "permessage-deflate"},
      {"ows_around_values", with_line("Host", "Host:\t  server.example.com \t\r\n"), "/chat",
       "room=1", "server.example.com", "http://example.com", "chat, superchat",
       "permessage-deflate"},
      {"bare_lf",
       "GET /a?b=c&d HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n",
       "/a", "b=c&d", "h", "", "", ""},
      {"mixed_line_ends",
       "GET / HTTP/1.1\r\nHost: h\nUpgrade: websocket\r\nConnection: Upgrade\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\n\r\n",
       "/", "", "h", "", "", ""},
      {"content_length_zero", with_extra("Content-Length: 0\r\n"), "/chat", "room=1",
       "server.example.com", "http://example.com", "chat, superchat", "permessage-deflate"},
      {"later_version", "GET / HTTP/1.9\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n",
       "/", "", "h", "", "", ""},
      {"first_frame_follows", kBaseRequest + frame, "/chat", "room=1", "server.example.com",
       "http://example.com", "chat, superchat", "permessage-deflate", frame.size()},
      {"two_requests_worth", kBaseRequest + kBaseRequest, "/chat", "room=1", "server.example.com",
       "http://example.com", "chat, superchat", "permessage-deflate", kBaseRequest.size()},
      {"empty_and_obs_text_values", with_extra("X-Empty:\r\nX-Latin: caf\xe9\r\n"), "/chat",
       "room=1", "server.example.com", "http://example.com", "chat, superchat",
       "permessage-deflate"},
  };
}

class ValidRequest : public ::testing::TestWithParam<ValidRow> {};

TEST_P(ValidRequest, CompleteWithViews) {
  const ValidRow& row = GetParam();
  UpgradeRequestParser p;
  ASSERT_EQ(p.parse(row.request), ParseStatus::complete) << p.error_reason();
  EXPECT_EQ(p.error_status(), 0);
  EXPECT_EQ(p.head_length(), row.request.size() - row.trailing);
  EXPECT_EQ(p.method(), "GET");
  EXPECT_EQ(p.path(), row.path);
  EXPECT_EQ(p.query(), row.query);
  EXPECT_EQ(p.host(), row.host);
  EXPECT_EQ(p.origin(), row.origin);
  EXPECT_EQ(p.protocols(), row.protocols);
  EXPECT_EQ(p.extensions(), row.extensions);
  EXPECT_TRUE(p.key() == kRfcKey || p.key() == "AAAAAAAAAAAAAAAAAAAAAA==");
  // Parsing again changes nothing.
  EXPECT_EQ(p.parse(row.request), ParseStatus::complete);
}

TEST_P(ValidRequest, SameAnswerHoweverSplit) {
  const ValidRow& row = GetParam();
  const ServerOutcome expected = feed_server(row.request, whole(row.request));
  ASSERT_EQ(expected.status, ParseStatus::complete);
  EXPECT_EQ(feed_server(row.request, bytewise(row.request)), expected);
  std::mt19937 rng{12345};
  for (int round = 0; round < 50; ++round) {
    EXPECT_EQ(feed_server(row.request, random_cuts(row.request, rng)), expected)
        << "round " << round;
  }
}

TEST_P(ValidRequest, NoReadPastTheEnd) {
  const ValidRow& row = GetParam();
  EXPECT_EQ(feed_server_guarded(row.request), feed_server(row.request, whole(row.request)));
}

TEST_P(ValidRequest, NoAllocation) {
  if (!ringlink::test::kAllocationsCounted) GTEST_SKIP() << "under a sanitizer the runtime owns operator new; counted in the normal builds";
  const ValidRow& row = GetParam();
  UpgradeRequestParser p;
  const std::size_t before = g_allocations.load();
  for (std::size_t cut = 0; cut <= row.request.size(); ++cut) {
    p.parse(std::string_view(row.request).substr(0, cut));
  }
  std::array<char, 256> out{};
  const std::size_t n = write_accept_response(out, p.key(), "chat");
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(n, 0u);
}

INSTANTIATE_TEST_SUITE_P(Handshake, ValidRequest, ::testing::ValuesIn(valid_rows()),
                         [](const auto& info) { return std::string(info.param.name); });

// ------------------------------------------------------------------ refusals

struct RefusalRow {
  const char* name;
  std::string request;
  std::uint16_t status;
  const char* reason;
};

std::string many_fields(std::size_t n) {
  std::string lines;
  for (std::size_t i = 0; i < n; ++i) lines += "X-F" + std::to_string(i) + ": v\r\n";
  return lines;
}

std::vector<RefusalRow> refusal_rows() {
  namespace r = refusal_reason;
  const std::string after_line = kBaseRequest.substr(kBaseRequest.find('\n') + 1);
  auto line = [&](std::string_view request_line) { return std::string(request_line) + after_line; };
  const std::string too_many = with_extra(many_fields(config::max_headers - kBaseFields + 1));
  const std::string too_big =
      with_extra("X-Pad: " + std::string(config::max_header_bytes, 'a') + "\r\n");
  return {
      {"post", line("POST /chat HTTP/1.1\r\n"), 405, r::method_not_get},
      {"lower_case_get", line("get /chat HTTP/1.1\r\n"), 405, r::method_not_get},
      {"connect", line("CONNECT /chat HTTP/1.1\r\n"), 405, r::method_not_get},
      {"http_1_0", line("GET /chat HTTP/1.0\r\n"), 400, r::http_version},
      {"http_0_9", line("GET /chat HTTP/0.9\r\n"), 400, r::http_version},
      {"no_version", line("GET /chat\r\n"), 400, r::malformed_request_line},
      {"only_method", line("GET\r\n"), 400, r::malformed_request_line},
      {"double_space", line("GET  /chat HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"trailing_space", line("GET /chat HTTP/1.1 \r\n"), 400, r::malformed_request_line},
      {"lower_case_http", line("GET /chat http/1.1\r\n"), 400, r::malformed_request_line},
      {"version_letters", line("GET /chat HTTP/1.x\r\n"), 400, r::malformed_request_line},
      {"version_long", line("GET /chat HTTP/1.11\r\n"), 400, r::malformed_request_line},
      {"relative_target", line("GET chat HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"asterisk_target", line("GET * HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"absolute_target", line("GET ws://h/chat HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"control_in_target", line("GET /c\x01hat HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"nul_in_target", line("GET /c\0hat HTTP/1.1\r\n"s), 400, r::malformed_request_line},
      {"utf8_in_target", line("GET /caf\xc3\xa9 HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"leading_empty_line", "\r\n" + kBaseRequest, 400, r::malformed_request_line},
      {"bare_cr_request_line", line("GET /chat HTTP/1.1\r\r\n"), 400, r::malformed_request_line},
      {"empty_method", line(" /chat HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"method_with_slash", line("G/T /chat HTTP/1.1\r\n"), 400, r::malformed_request_line},
      {"missing_upgrade", with_line("Upgrade", ""), 400, r::missing_upgrade},
      {"wrong_upgrade", with_line("Upgrade", "Upgrade: h2c\r\n"), 400, r::missing_upgrade},
      {"upgrade_with_version", with_line("Upgrade", "Upgrade: websocket/13\r\n"), 400,
       r::missing_upgrade},
      {"missing_connection", with_line("Connection", ""), 400, r::missing_connection},
      {"wrong_connection", with_line("Connection", "Connection: keep-alive\r\n"), 400,
       r::missing_connection},
      {"connection_token_substring", with_line("Connection", "Connection: upgraded\r\n"), 400,
       r::missing_connection},
      {"missing_host", with_line("Host", ""), 400, r::missing_host},
      {"empty_host", with_line("Host", "Host:  \r\n"), 400, r::missing_host},
      {"duplicate_host", with_extra("Host: other\r\n"), 400, r::duplicate_host},
      {"version_8", with_line("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"), 426,
       r::bad_version},
      {"version_list", with_line("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8\r\n"),
       426, r::bad_version},
      {"version_twice", with_extra("Sec-WebSocket-Version: 13\r\n"), 426, r::bad_version},
      {"version_missing", with_line("Sec-WebSocket-Version", ""), 426, r::bad_version},
      {"version_013", with_line("Sec-WebSocket-Version", "Sec-WebSocket-Version: 013\r\n"), 426,
       r::bad_version},
      {"missing_key", with_line("Sec-WebSocket-Key", ""), 400, r::missing_key},
      {"duplicate_key", with_extra("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), 400,
       r::duplicate_key},
      {"key_empty", with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key:\r\n"), 400,
       r::malformed_key},
      {"key_short", with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n"),
       400, r::malformed_key},
      {"key_unpadded",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"), 400,
       r::malformed_key},
      {"key_17_bytes",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\n"), 400,
       r::malformed_key},
      {"key_15_bytes",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n"), 400,
       r::malformed_key},
      {"key_noncanonical_bits",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n"), 400,
       r::malformed_key},
      {"key_bad_char",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n"), 400,
       r::malformed_key},
      {"key_inner_space",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ==\r\n"), 400,
       r::malformed_key},
      {"key_url_alphabet",
       with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j_Q==\r\n"), 400,
       r::malformed_key},
      {"obs_fold", with_extra("X-Long: a\r\n b\r\n"), 400, r::obs_fold},
      {"obs_fold_tab", with_extra("X-Long: a\r\n\tb\r\n"), 400, r::obs_fold},
      {"space_before_first_field", line("GET /chat HTTP/1.1\r\n Host: h\r\n"), 400, r::obs_fold},
      {"space_before_colon", with_line("Host", "Host : server.example.com\r\n"), 400,
       r::malformed_field},
      {"no_colon", with_extra("X-NoColon\r\n"), 400, r::malformed_field},
      {"empty_name", with_extra(": value\r\n"), 400, r::malformed_field},
      {"name_with_space", with_extra("X Y: value\r\n"), 400, r::malformed_field},
      {"bare_cr_in_value", with_extra("X-A: a\rb\r\n"), 400, r::malformed_field},
      {"nul_in_value", with_extra("X-A: a\0b\r\n"s), 400, r::malformed_field},
      {"del_in_value", with_extra("X-A: a\x7f\r\n"), 400, r::malformed_field},
      {"bare_cr_line_end", with_extra("X-A: a\r\r\n"), 400, r::malformed_field},
      {"content_length", with_extra("Content-Length: 5\r\n") + "hello", 400, r::has_body},
      {"transfer_encoding", with_extra("Transfer-Encoding: chunked\r\n"), 400, r::has_body},
      {"too_many_fields", too_many, 431, r::too_many_fields},
      {"too_many_bytes", too_big, 431, r::head_too_large},
      {"too_many_bytes_unterminated", std::string(config::max_header_bytes + 1, 'G'), 431,
       r::head_too_large},
      {"bad_line_wins_over_size", "POST / HTTP/1.1\r\n" + std::string(config::max_header_bytes, 'a'),
       405, r::method_not_get},
  };
}

class Refusal : public ::testing::TestWithParam<RefusalRow> {};

TEST_P(Refusal, ExactStatusAndReason) {
  const RefusalRow& row = GetParam();
  UpgradeRequestParser p;
  ASSERT_EQ(p.parse(row.request), ParseStatus::error);
  EXPECT_EQ(p.error_status(), row.status);
  EXPECT_STREQ(p.error_reason(), row.reason);
  // An error is final.
  EXPECT_EQ(p.parse(row.request), ParseStatus::error);
  EXPECT_EQ(p.error_status(), row.status);
}

TEST_P(Refusal, SameAnswerHoweverSplit) {
  const RefusalRow& row = GetParam();
  const ServerOutcome expected = feed_server(row.request, whole(row.request));
  EXPECT_EQ(feed_server(row.request, bytewise(row.request)), expected);
  std::mt19937 rng{777};
  for (int round = 0; round < 20; ++round) {
    EXPECT_EQ(feed_server(row.request, random_cuts(row.request, rng)), expected);
  }
}

TEST_P(Refusal, NoReadPastTheEnd) {
  const RefusalRow& row = GetParam();
  EXPECT_EQ(feed_server_guarded(row.request), feed_server(row.request, whole(row.request)));
}

INSTANTIATE_TEST_SUITE_P(Handshake, Refusal, ::testing::ValuesIn(refusal_rows()),
                         [](const auto& info) { return std::string(info.param.name); });

// -------------------------------------------------------------------- limits

std::string request_of_size(std::size_t size) {
  // Pads kBaseRequest with one field so that the head is exactly `size`.
  const std::string empty_pad = with_extra("X-Pad: \r\n");
  EXPECT_GE(size, empty_pad.size());
  return with_extra("X-Pad: " + std::string(size - empty_pad.size(), 'p') + "\r\n");
}

TEST(Limits, HeadBytesAtTheLimitPass) {
  const std::string r = request_of_size(config::max_header_bytes);
  ASSERT_EQ(r.size(), config::max_header_bytes);
  UpgradeRequestParser p;
  EXPECT_EQ(p.parse(r), ParseStatus::complete) << p.error_reason();
  // Frames after a head at the limit are no reason to refuse.
  UpgradeRequestParser q;
  EXPECT_EQ(q.parse(r + "\x81\x80xxxx"), ParseStatus::complete);
  EXPECT_EQ(q.head_length(), config::max_header_bytes);
}

TEST(Limits, HeadBytesOverTheLimit431) {
  const std::string r = request_of_size(config::max_header_bytes + 1);
  UpgradeRequestParser p;
  EXPECT_EQ(p.parse(r), ParseStatus::error);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(Limits, IncompleteHeadRefusedAsSoonAsOverTheLimit) {
  const std::string r = request_of_size(2 * config::max_header_bytes);
  UpgradeRequestParser p;
  for (std::size_t cut = 0; cut <= config::max_header_bytes; ++cut) {
    ASSERT_EQ(p.parse(std::string_view(r).substr(0, cut)), ParseStatus::incomplete) << cut;
  }
  EXPECT_EQ(p.parse(std::string_view(r).substr(0, config::max_header_bytes + 1)),
            ParseStatus::error);
  EXPECT_EQ(p.error_status(), 431);
  EXPECT_STREQ(p.error_reason(), refusal_reason::head_too_large);
}

TEST(Limits, SmallerByteLimit) {
  UpgradeRequestParser p{kBaseRequest.size()};
  EXPECT_EQ(p.parse(kBaseRequest), ParseStatus::complete);
  UpgradeRequestParser q{kBaseRequest.size() - 1};
  EXPECT_EQ(q.parse(kBaseRequest), ParseStatus::error);
  EXPECT_EQ(q.error_status(), 431);
}

TEST(Limits, FieldCount) {
  for (std::size_t max_fields : {kBaseFields, std::size_t{12}, config::max_headers}) {
    const std::string at_limit = with_extra(many_fields(max_fields - kBaseFields));
    UpgradeRequestParser p{config::max_header_bytes, max_fields};
    EXPECT_EQ(p.parse(at_limit), ParseStatus::complete) << max_fields;
    EXPECT_EQ(p.headers().size(), max_fields);
    const std::string over = with_extra(many_fields(max_fields - kBaseFields + 1));
    UpgradeRequestParser q{config::max_header_bytes, max_fields};
    EXPECT_EQ(q.parse(over), ParseStatus::error) << max_fields;
    EXPECT_EQ(q.error_status(), 431);
    EXPECT_STREQ(q.error_reason(), refusal_reason::too_many_fields);
  }
}

TEST(Limits, FieldCountClampedToStorage) {
  UpgradeRequestParser p{config::max_header_bytes, config::max_headers * 4};
  EXPECT_EQ(p.parse(with_extra(many_fields(config::max_headers))), ParseStatus::error);
  EXPECT_EQ(p.error_status(), 431);
}

// ------------------------------------------------------------ parser details

TEST(RequestParser, HeaderLookup) {
  UpgradeRequestParser p;
  const std::string r = with_extra("Cookie: a=1\r\ncookie: b=2\r\nX-List: Foo , BAR\r\n");
  ASSERT_EQ(p.parse(r), ParseStatus::complete);
  EXPECT_EQ(p.header("COOKIE"), "a=1");
  EXPECT_EQ(p.header("sec-websocket-key"), kRfcKey);
  EXPECT_EQ(p.header("Cookie2"), std::nullopt);
  EXPECT_TRUE(p.header_has_token("x-list", "bar"));
  EXPECT_TRUE(p.header_has_token("X-LIST", "foo"));
  EXPECT_FALSE(p.header_has_token("X-List", "fo"));
  EXPECT_TRUE(p.header_has_token("sec-websocket-protocol", "superchat"));
  EXPECT_FALSE(p.header_has_token("Cookie", "b"));
  ASSERT_EQ(p.headers().size(), kBaseFields + 3);
  EXPECT_EQ(p.headers()[0].name, "Host");
  EXPECT_EQ(p.headers()[kBaseFields + 1].name, "cookie");
  EXPECT_EQ(p.headers()[kBaseFields + 1].value, "b=2");
}

TEST(RequestParser, ViewsFollowAMovedBuffer) {
  std::string first = kBaseRequest.substr(0, 100);
  UpgradeRequestParser p;
  ASSERT_EQ(p.parse(first), ParseStatus::incomplete);
  std::string second = kBaseRequest;  // same bytes, other address
  first.assign(first.size(), '#');    // the old bytes are gone
  ASSERT_EQ(p.parse(second), ParseStatus::complete);
  EXPECT_EQ(p.method(), "GET");
  EXPECT_EQ(p.path(), "/chat");
  EXPECT_EQ(p.host(), "server.example.com");
  EXPECT_EQ(p.headers()[0].name, "Host");
  EXPECT_EQ(p.headers()[0].name.data(), second.data() + second.find("Host"));
  std::string third = second;
  second.assign(second.size(), '#');
  ASSERT_EQ(p.parse(third), ParseStatus::complete);
  EXPECT_EQ(p.origin(), "http://example.com");
  EXPECT_EQ(p.key().data(), third.data() + third.find(kRfcKey));
}

TEST(RequestParser, ShrunkenBufferIsACallerError) {
  UpgradeRequestParser p;
  ASSERT_EQ(p.parse(std::string_view(kBaseRequest).substr(0, 50)), ParseStatus::incomplete);
  EXPECT_EQ(p.parse(std::string_view(kBaseRequest).substr(0, 40)), ParseStatus::error);
  EXPECT_EQ(p.error_status(), 500);
  EXPECT_STREQ(p.error_reason(), refusal_reason::buffer_shrank);
}

TEST(RequestParser, ResetAllowsReuse) {
  UpgradeRequestParser p{512, 12};
  ASSERT_EQ(p.parse("POST / HTTP/1.1\r\n"), ParseStatus::error);
  p.reset();
  EXPECT_EQ(p.error_status(), 0);
  EXPECT_EQ(p.parse(kBaseRequest), ParseStatus::complete);
  p.reset();
  // The limits survive a reset.
  EXPECT_EQ(p.parse(with_extra(many_fields(12 - kBaseFields + 1))), ParseStatus::error);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(RequestParser, EmptyInputIsIncomplete) {
  UpgradeRequestParser p;
  EXPECT_EQ(p.parse({}), ParseStatus::incomplete);
  EXPECT_EQ(p.parse("GET / HTTP/1.1\r\nHost: h\r\n"), ParseStatus::incomplete);
  EXPECT_EQ(p.head_length(), 0u);
}

// ----------------------------------------------------------------- responses

TEST(Responses, AcceptExactBytes) {
  std::array<char, 256> out{};
  std::size_t n = write_accept_response(out, kRfcKey);
  EXPECT_EQ(std::string_view(out.data(), n),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  n = write_accept_response(out, kRfcKey, "chat");
  EXPECT_EQ(std::string_view(out.data(), n),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: chat\r\n\r\n");
  for (std::size_t small = 0; small < n; ++small) {
    EXPECT_EQ(write_accept_response(std::span<char>(out.data(), small), kRfcKey, "chat"), 0u);
  }
  EXPECT_EQ(write_accept_response(std::span<char>(out.data(), n), kRfcKey, "chat"), n);
}

TEST(Responses, AcceptRefusesInjectedSubprotocol) {
  std::array<char, 256> out{};
  EXPECT_EQ(write_accept_response(out, kRfcKey, "chat\r\nSet-Cookie: x"), 0u);
  EXPECT_EQ(write_accept_response(out, kRfcKey, "chat, superchat"), 0u);
}

TEST(Responses, RefusalExactBytes) {
  std::array<char, 512> out{};
  std::size_t n = write_refusal(out, 400);
  EXPECT_EQ(std::string_view(out.data(), n),
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  n = write_refusal(out, 403, "origin not allowed");
  EXPECT_EQ(std::string_view(out.data(), n),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 18\r\nConnection: close\r\n\r\n"
            "origin not allowed");
  n = write_refusal(out, 405);
  EXPECT_EQ(std::string_view(out.data(), n),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n"
            "Allow: GET\r\n\r\n");
  for (std::size_t small = 0; small < n; ++small) {
    EXPECT_EQ(write_refusal(std::span<char>(out.data(), small), 405), 0u);
  }
  EXPECT_EQ(write_refusal(out, 101), 0u);
  EXPECT_EQ(write_refusal(out, 200), 0u);
  EXPECT_EQ(write_refusal(out, 600), 0u);
}

// RFC 9110 section 15.5.22 and RFC 6455 section 4.4: a 426 says what to
// upgrade to, with the "upgrade" connection option, and which version.
TEST(Responses, Refusal426CarriesUpgradeAndVersion) {
  std::array<char, 256> out{};
  const std::size_t n = write_refusal(out, 426);
  const std::string_view r(out.data(), n);
  EXPECT_EQ(r,
            "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n"
            "Connection: close, Upgrade\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n");
  for (std::size_t small = 0; small < n; ++small) {
    EXPECT_EQ(write_refusal(std::span<char>(out.data(), small), 426), 0u);
  }
  // And the client parser reads it as such.
  std::array<std::byte, 16> nonce{};
  UpgradeResponseParser c{make_client_key(nonce)};
  EXPECT_EQ(c.parse(r), ParseStatus::error);
  EXPECT_EQ(c.error(), ClientHandshakeError::not_101);
  EXPECT_EQ(c.status(), 426);
  EXPECT_EQ(c.header("sec-websocket-version"), "13");
  EXPECT_EQ(c.header("upgrade"), "websocket");
}

TEST(Responses, HttpResponseExactBytes) {
  std::string out = "kept";
  append_http_response(out, 200, "text/plain; version=0.0.4", "up 1\n");
  EXPECT_EQ(out,
            "keptHTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            "Content-Length: 5\r\nConnection: close\r\n\r\nup 1\n");
  out.clear();
  append_http_response(out, 404, "text/html", {});
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n");
  out.clear();
  append_http_response(out, 200, {}, {});
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(Responses, HttpResponse426CarriesUpgradeAndVersion) {
  std::string out;
  append_http_response(out, 426, "text/plain", "WebSocket upgrade required\n");
  EXPECT_EQ(out,
            "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\n"
            "Content-Length: 27\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\nWebSocket upgrade required\n");
}

TEST(Responses, RefusalIsTheHttpResponseWithTextBody) {
  std::array<char, 512> out{};
  for (std::uint16_t status : {300, 400, 403, 404, 405, 426, 429, 431, 500, 503, 599}) {
    for (std::string_view body : {""sv, "no\n"sv}) {
      std::string want;
      append_http_response(want, status, body.empty() ? "" : "text/plain; charset=utf-8", body);
      EXPECT_EQ(std::string_view(out.data(), write_refusal(out, status, body)), want) << status;
    }
  }
}

TEST(Responses, RefusalForEveryParserStatus) {
  std::array<char, 256> out{};
  for (std::uint16_t status : {400, 405, 426, 431, 500}) {
    const std::size_t n = write_refusal(out, status);
    ASSERT_GT(n, 0u) << status;
    const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status);
    EXPECT_EQ(std::string_view(out.data(), n).substr(0, head.size()), head);
    EXPECT_NE(std::string_view(status_text(status)), "Unknown");
  }
  EXPECT_STREQ(status_text(431), "Request Header Fields Too Large");
  EXPECT_STREQ(status_text(299), "Unknown");
}

// -------------------------------------------------------------------- client

ClientKey test_key(std::uint8_t seed) {
  std::array<std::byte, 16> nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i) nonce[i] = std::byte(seed + i * 7);
  return make_client_key(nonce);
}

TEST(Client, RequestExactBytes) {
  const ClientKey key = make_client_key(std::as_bytes(std::span<const char, 16>("the sample nonce", 16)));
  std::array<char, 512> out{};
  const std::size_t n =
      write_upgrade_request(out,
                            {.host = "server.example.com",
                             .path = "/chat",
                             .origin = "http://example.com",
                             .protocols = "chat, superchat",
                             .extra_headers = "Cookie: a=1\r\n"},
                            key);
  EXPECT_EQ(std::string_view(out.data(), n),
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n"
            "Sec-WebSocket-Protocol: chat, superchat\r\nCookie: a=1\r\n\r\n");
  for (std::size_t small = 0; small < n; ++small) {
    EXPECT_EQ(write_upgrade_request(std::span<char>(out.data(), small),
                                    {.host = "server.example.com",
                                     .path = "/chat",
                                     .origin = "http://example.com",
                                     .protocols = "chat, superchat",
                                     .extra_headers = "Cookie: a=1\r\n"},
                                    key),
              0u);
  }
  const std::size_t m = write_upgrade_request(out, {.host = "h:1"}, key);
  EXPECT_EQ(std::string_view(out.data(), m),
            "GET / HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
}

TEST(Client, RequestRefusesInjection) {
  const ClientKey key = test_key(1);
  std::array<char, 512> out{};
  const UpgradeRequestSpec bad[] = {
      {.host = ""},
      {.host = "h\r\nX: y"},
      {.host = "h", .path = "chat"},
      {.host = "h", .path = "/a b"},
      {.host = "h", .path = ""},
      {.host = "h", .origin = "http://o\r\n"},
      {.host = "h", .protocols = "chat\r\nX: y"},
      {.host = "h", .protocols = "a b"},
      {.host = "h", .protocols = " , "},
      {.host = "h", .extra_headers = "Cookie: a"},
      {.host = "h", .extra_headers = "Cookie: a\n"},
      {.host = "h", .extra_headers = "\r\n"},
      {.host = "h", .extra_headers = " folded: x\r\n"},
  };
  for (const UpgradeRequestSpec& spec : bad) {
    EXPECT_EQ(write_upgrade_request(out, spec, key), 0u) << spec.host << spec.path;
  }
}

TEST(Client, RoundTripThroughBothParsers) {
  const ClientKey key = test_key(42);
  std::array<char, 512> request{};
  const std::size_t n = write_upgrade_request(request,
                                              {.host = "127.0.0.1:9001",
                                               .path = "/echo?x=1",
                                               .origin = "http://localhost",
                                               .protocols = "chat,superchat",
                                               .extra_headers = "Authorization: Bearer t\r\n"},
                                              key);
  ASSERT_GT(n, 0u);
  const std::string_view req(request.data(), n);
  UpgradeRequestParser server;
  ASSERT_EQ(server.parse(req), ParseStatus::complete) << server.error_reason();
  EXPECT_EQ(server.head_length(), n);
  EXPECT_EQ(server.path(), "/echo");
  EXPECT_EQ(server.query(), "x=1");
  EXPECT_EQ(server.host(), "127.0.0.1:9001");
  EXPECT_EQ(server.origin(), "http://localhost");
  EXPECT_EQ(server.key(), key.key_view());
  EXPECT_EQ(server.protocols(), "chat,superchat");
  EXPECT_EQ(server.header("authorization"), "Bearer t");
  EXPECT_TRUE(server.header_has_token("Sec-WebSocket-Protocol", "superchat"));
  EXPECT_EQ(feed_server(req, bytewise(req)), feed_server(req, whole(req)));

  std::array<char, 256> response{};
  const std::size_t m = write_accept_response(response, server.key(), "superchat");
  ASSERT_GT(m, 0u);
  const std::string with_frame = std::string(response.data(), m) + "\x81\x02hi";

  UpgradeResponseParser client{key, "chat,superchat"};
  for (std::size_t cut = 0; cut < m; ++cut) {
    ASSERT_EQ(client.parse(std::string_view(with_frame).substr(0, cut)), ParseStatus::incomplete);
  }
  ASSERT_EQ(client.parse(with_frame), ParseStatus::complete) << to_string(client.error());
  EXPECT_EQ(client.error(), ClientHandshakeError::none);
  EXPECT_EQ(client.status(), 101);
  EXPECT_EQ(client.head_length(), m);
  EXPECT_EQ(client.protocol(), "superchat");
  EXPECT_EQ(client.header("SEC-WEBSOCKET-ACCEPT"), key.accept_view());
}

TEST(Client, NoAllocation) {
  if (!ringlink::test::kAllocationsCounted) GTEST_SKIP() << "under a sanitizer the runtime owns operator new; counted in the normal builds";
  const ClientKey key = test_key(3);
  std::array<char, 512> request{};
  std::array<char, 256> response{};
  const std::size_t before = g_allocations.load();
  const std::size_t n = write_upgrade_request(request, {.host = "h"}, key);
  const std::size_t m = write_accept_response(response, key.key_view());
  UpgradeResponseParser client{key};
  for (std::size_t cut = 0; cut <= m; ++cut) client.parse({response.data(), cut});
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(n, 0u);
  EXPECT_EQ(client.error(), ClientHandshakeError::none);
}

struct ClientRow {
  const char* name;
  std::string response;
  ClientHandshakeError error;
  std::uint16_t status;
};

std::string response_101(std::string_view accept, std::string_view extra = {},
                         std::string_view upgrade = "Upgrade: websocket\r\n",
                         std::string_view connection = "Connection: Upgrade\r\n") {
  std::string r = "HTTP/1.1 101 Switching Protocols\r\n";
  r += upgrade;
  r += connection;
  if (!accept.empty()) r += "Sec-WebSocket-Accept: " + std::string(accept) + "\r\n";
  r += extra;
  r += "\r\n";
  return r;
}

std::vector<ClientRow> client_rows() {
  using E = ClientHandshakeError;
  const std::string a(test_key(9).accept_view());
  std::string lower = a;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string fields;
  for (std::size_t i = 0; i < config::max_headers; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  return {
      {"ok", response_101(a), E::none, 101},
      {"ok_bare_lf", "HTTP/1.1 101 Switching Protocols\nUpgrade: WebSocket\nConnection: upgrade\n"
                     "Sec-WebSocket-Accept: " + a + "\n\n", E::none, 101},
      {"ok_no_reason", "HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                       "Sec-WebSocket-Accept: " + a + "\r\n\r\n", E::none, 101},
      {"ok_offered_protocol", response_101(a, "Sec-WebSocket-Protocol: chat\r\n"), E::none, 101},
      {"status_200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", E::not_101, 200},
      {"status_404_malformed_after", "HTTP/1.1 404 Not Found\r\n bad fold\r\n\r\n", E::not_101, 404},
      {"status_503_too_large", "HTTP/1.1 503 Busy\r\nX: " + std::string(config::max_header_bytes, 'x'),
       E::not_101, 503},
      {"http_1_0", "HTTP/1.0 101 Switching Protocols\r\n\r\n", E::malformed, 0},
      {"not_http", "ICY 101 OK\r\n\r\n", E::malformed, 0},
      {"status_letters", "HTTP/1.1 1O1 Switching\r\n\r\n", E::malformed, 0},
      {"status_two_digits", "HTTP/1.1 10 x\r\n\r\n", E::malformed, 0},
      {"status_four_digits", "HTTP/1.1 1010 x\r\n\r\n", E::malformed, 0},
      {"status_below_100", "HTTP/1.1 099 x\r\n\r\n", E::malformed, 0},
      {"control_in_reason", "HTTP/1.1 101 Swit\x01ching\r\n\r\n", E::malformed, 0},
      {"obs_fold_in_101", response_101(a, "X-A: a\r\n b\r\n"), E::malformed, 101},
      {"bad_field_in_101", response_101(a, "X-A : a\r\n"), E::malformed, 101},
      {"missing_upgrade", response_101(a, {}, ""), E::bad_upgrade, 101},
      {"wrong_upgrade", response_101(a, {}, "Upgrade: h2c\r\n"), E::bad_upgrade, 101},
      {"missing_connection", response_101(a, {}, "Upgrade: websocket\r\n", ""), E::bad_connection,
       101},
      {"wrong_connection", response_101(a, {}, "Upgrade: websocket\r\n", "Connection: close\r\n"),
       E::bad_connection, 101},
      {"missing_accept", response_101(""), E::bad_accept, 101},
      {"wrong_accept", response_101(kRfcAccept), E::bad_accept, 101},
      {"accept_wrong_case", response_101(lower), E::bad_accept, 101},
      {"accept_twice", response_101(a, "Sec-WebSocket-Accept: " + a + "\r\n"), E::bad_accept, 101},
      {"protocol_not_offered", response_101(a, "Sec-WebSocket-Protocol: mqtt\r\n"),
       E::unexpected_protocol, 101},
      {"protocol_case_differs", response_101(a, "Sec-WebSocket-Protocol: Chat\r\n"),
       E::unexpected_protocol, 101},
      {"protocol_list", response_101(a, "Sec-WebSocket-Protocol: chat, superchat\r\n"),
       E::unexpected_protocol, 101},
      {"protocol_empty", response_101(a, "Sec-WebSocket-Protocol:\r\n"), E::unexpected_protocol,
       101},
      {"protocol_twice",
       response_101(a, "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n"),
       E::unexpected_protocol, 101},
      {"extension", response_101(a, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
       E::unexpected_extension, 101},
      {"too_many_fields", response_101(a, fields), E::too_large, 101},
      {"too_many_bytes", response_101(a, "X: " + std::string(config::max_header_bytes, 'x') + "\r\n"),
       E::too_large, 101},
  };
}

class ClientResponse : public ::testing::TestWithParam<ClientRow> {};

TEST_P(ClientResponse, ExactError) {
  const ClientRow& row = GetParam();
  const ClientKey key = test_key(9);
  const std::string_view text = row.response;
  const ParseStatus want =
      row.error == ClientHandshakeError::none ? ParseStatus::complete : ParseStatus::error;
  // Whole, byte by byte, and byte by byte against a guard page.
  UpgradeResponseParser whole_parser{key, "chat, superchat"};
  EXPECT_EQ(whole_parser.parse(text), want);
  EXPECT_EQ(whole_parser.error(), row.error) << to_string(whole_parser.error());
  EXPECT_EQ(whole_parser.status(), row.status);

  UpgradeResponseParser split{key, "chat, superchat"};
  ParseStatus s = ParseStatus::incomplete;
  for (std::size_t cut = 0; cut <= text.size(); ++cut) s = split.parse(text.substr(0, cut));
  EXPECT_EQ(s, want);
  EXPECT_EQ(split.error(), row.error);
  EXPECT_EQ(split.status(), row.status);
  EXPECT_EQ(split.head_length(), whole_parser.head_length());

  GuardedBuffer g{text.size()};
  UpgradeResponseParser guarded{key, "chat, superchat"};
  for (std::size_t cut = 0; cut <= text.size(); ++cut) s = guarded.parse(g.place(text.substr(0, cut)));
  EXPECT_EQ(s, want);
  EXPECT_EQ(guarded.error(), row.error);
  EXPECT_EQ(guarded.protocol(), whole_parser.protocol());
}

INSTANTIATE_TEST_SUITE_P(Handshake, ClientResponse, ::testing::ValuesIn(client_rows()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Client, ProtocolWithNothingOffered) {
  const ClientKey key = test_key(9);
  UpgradeResponseParser p{key};
  EXPECT_EQ(p.parse(response_101(key.accept_view(), "Sec-WebSocket-Protocol: chat\r\n")),
            ParseStatus::error);
  EXPECT_EQ(p.error(), ClientHandshakeError::unexpected_protocol);
}

TEST(Client, ErrorNamesAreDistinct) {
  using E = ClientHandshakeError;
  const E all[] = {E::none,           E::malformed,    E::too_large,
                   E::not_101,        E::bad_upgrade,  E::bad_connection,
                   E::bad_accept,     E::unexpected_protocol, E::unexpected_extension};
  for (E a : all) {
    ASSERT_NE(to_string(a), nullptr);
    EXPECT_GT(std::strlen(to_string(a)), 0u);
    for (E b : all) {
      if (a != b) {
        EXPECT_STRNE(to_string(a), to_string(b));
      }
    }
  }
}

TEST(Client, IncompleteUntilTheEmptyLine) {
  const ClientKey key = test_key(5);
  UpgradeResponseParser p{key};
  EXPECT_EQ(p.parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"),
            ParseStatus::incomplete);
  EXPECT_EQ(p.error(), ClientHandshakeError::none);
  EXPECT_EQ(p.status(), 101);
}

}  // namespace
}  // namespace ringlink

namespace ringlink {
namespace {

// With an offer made, the answer's extensions are the caller's to judge.
TEST(Client, ExtensionsAllowedWhenOffered) {
  const ClientKey key = make_client_key(std::array<std::byte, 16>{});
  const std::string a(key.accept_view());
  const std::string resp = response_101(a, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  UpgradeResponseParser refused{key};
  EXPECT_EQ(refused.parse(resp), ParseStatus::error);
  EXPECT_EQ(refused.error(), ClientHandshakeError::unexpected_extension);
  UpgradeResponseParser allowed{key};
  allowed.allow_extensions();
  ASSERT_EQ(allowed.parse(resp), ParseStatus::complete);
  EXPECT_EQ(allowed.header("Sec-WebSocket-Extensions").value_or(""), "permessage-deflate");
}

}  // namespace
}  // namespace ringlink
