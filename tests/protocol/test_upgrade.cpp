// The whole opening handshake without a socket: the client's request, built
// by write_upgrade_request, through the server's parser; the server's answer
// (write_accept_response, write_refusal or append_http_response) through the
// client's parser. Every exchange is fed whole and a byte at a time on both
// sides, and both must agree. Hand-written requests and responses, each
// parser check on its own and the writers' exact bytes are test_handshake.cpp's.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/handshake_client.hpp"
#include "protocol/handshake_server.hpp"
#include "protocol/http_parse.hpp"

namespace ringlink {

// Readable failures: "complete", not "1-byte object <01>".
void PrintTo(ParseStatus s, std::ostream* os) {
  constexpr const char* names[] = {"incomplete", "complete", "error"};
  *os << names[static_cast<int>(s)];
}
void PrintTo(ClientHandshakeError e, std::ostream* os) { *os << to_string(e); }

namespace {

using E = ClientHandshakeError;

// A frame the peer may send right behind its head, in the same read.
constexpr std::string_view kFrame = "\x81\x02hi";

ClientKey key_from(std::uint8_t seed) {
  std::array<std::byte, 16> nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i) nonce[i] = std::byte(seed + i * 13);
  return make_client_key(nonce);
}

std::string request_for(const ClientKey& key, const UpgradeRequestSpec& spec) {
  std::array<char, 1024> out{};
  const std::size_t n = write_upgrade_request(out, spec, key);
  EXPECT_GT(n, 0u) << spec.host << spec.path;
  return std::string(out.data(), n);
}

// Feeds `text` whole to `whole` and every prefix in turn to `bytewise`. The
// bytewise parser must say incomplete until its answer and then keep it, and
// end with the whole parser's answer.
template <class Parser>
ParseStatus parse_both_ways(Parser& whole, Parser& bytewise, std::string_view text) {
  const ParseStatus answer = whole.parse(text);
  std::optional<ParseStatus> first;
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    const ParseStatus s = bytewise.parse(text.substr(0, cut));
    if (first) {
      EXPECT_EQ(s, *first) << "a final answer must not change, cut " << cut;
    } else if (s != ParseStatus::incomplete) {
      first = s;
    }
  }
  EXPECT_EQ(first.value_or(ParseStatus::incomplete), answer);
  return answer;
}

// What the server side made of a request, and what it answers: the 101 with
// `chosen` when the request is accepted, else the refusal for its status.
struct Served {
  ParseStatus status = ParseStatus::incomplete;
  std::uint16_t error_status = 0;
  std::size_t head_length = 0;
  std::string protocols;  // as offered, from the request
  std::string response;
};

Served serve(std::string_view request, std::string_view chosen = {}) {
  UpgradeRequestParser whole, bytewise;
  Served s;
  s.status = parse_both_ways(whole, bytewise, request);
  s.error_status = whole.error_status();
  s.head_length = whole.head_length();
  EXPECT_EQ(bytewise.error_status(), s.error_status);
  EXPECT_EQ(bytewise.head_length(), s.head_length);
  std::array<char, 1024> out{};
  std::size_t n = 0;
  if (s.status == ParseStatus::complete) {
    s.protocols = whole.protocols();
    EXPECT_EQ(bytewise.key(), whole.key());
    n = write_accept_response(out, whole.key(), chosen);
  } else if (s.status == ParseStatus::error) {
    n = write_refusal(out, s.error_status);
  }
  EXPECT_GT(n, 0u);
  s.response.assign(out.data(), n);
  return s;
}

// What the client made of a response.
struct Verdict {
  ParseStatus status = ParseStatus::incomplete;
  ClientHandshakeError error = E::none;
  std::uint16_t http_status = 0;
  std::size_t head_length = 0;
  std::string protocol;
  bool operator==(const Verdict&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Verdict& v) {
  PrintTo(v.status, &os);
  return os << " " << to_string(v.error) << " " << v.http_status << " head " << v.head_length
            << " protocol '" << v.protocol << "'";
}

Verdict verdict(const UpgradeResponseParser& p, ParseStatus s) {
  return {s, p.error(), p.status(), p.head_length(), std::string(p.protocol())};
}

Verdict client_reads(const ClientKey& key, std::string_view offered, std::string_view response,
                     std::size_t max_bytes = config::max_header_bytes,
                     std::size_t max_fields = config::max_headers) {
  UpgradeResponseParser whole{key, offered, max_bytes, max_fields};
  UpgradeResponseParser bytewise{key, offered, max_bytes, max_fields};
  const ParseStatus s = parse_both_ways(whole, bytewise, response);
  EXPECT_EQ(verdict(bytewise, s), verdict(whole, s));
  return verdict(whole, s);
}

// `text` without the line that starts with `prefix`.
std::string without_line(std::string text, std::string_view prefix) {
  const std::size_t at = text.find(prefix);
  EXPECT_NE(at, std::string::npos) << prefix;
  if (at == std::string::npos) return text;
  return text.erase(at, text.find('\n', at) + 1 - at);
}

// ------------------------------------------------------------------ accepted

TEST(UpgradePath, AcceptedWithAFrameBehindEachHead) {
  const ClientKey key = key_from(1);
  const UpgradeRequestSpec specs[] = {
      {.host = "h"},
      {.host = "example.com:8080", .path = "/live?x=1&y", .origin = "https://example.com"},
      {.host = "[::1]:9001", .path = "/", .extra_headers = "Cookie: a=1\r\nUser-Agent: t/1\r\n"},
  };
  for (const UpgradeRequestSpec& spec : specs) {
    SCOPED_TRACE(spec.host);
    const std::string head = request_for(key, spec);
    const Served s = serve(head + std::string(kFrame));
    ASSERT_EQ(s.status, ParseStatus::complete);
    EXPECT_EQ(s.head_length, head.size());
    const Verdict v = client_reads(key, {}, s.response + std::string(kFrame));
    EXPECT_EQ(v, (Verdict{ParseStatus::complete, E::none, 101, s.response.size(), ""}));
  }
}

// ------------------------------------------------------------- subprotocols

struct ProtocolRow {
  const char* name;
  std::string_view offered;   // the client's Sec-WebSocket-Protocol, or empty
  std::string_view chosen;    // what the server answers with, or empty
  ClientHandshakeError error;
};

class Subprotocols : public ::testing::TestWithParam<ProtocolRow> {};

TEST_P(Subprotocols, ClientChecksTheServersChoice) {
  const ProtocolRow& row = GetParam();
  const ClientKey key = key_from(2);
  const Served s = serve(request_for(key, {.host = "h", .protocols = row.offered}), row.chosen);
  ASSERT_EQ(s.status, ParseStatus::complete);
  EXPECT_EQ(s.protocols, row.offered);
  const Verdict v = client_reads(key, row.offered, s.response);
  if (row.error == E::none) {
    EXPECT_EQ(v, (Verdict{ParseStatus::complete, E::none, 101, s.response.size(),
                          std::string(row.chosen)}));
  } else {
    EXPECT_EQ(v, (Verdict{ParseStatus::error, row.error, 101, s.response.size(), ""}));
  }
}

const ProtocolRow kProtocolRows[] = {
    {"picks_second_offered", "chat, superchat", "superchat", E::none},
    {"picks_first_offered", "chat,superchat", "chat", E::none},
    {"picks_none_of_the_offered", "chat", "", E::none},
    {"none_offered_none_picked", "", "", E::none},
    {"picks_one_not_offered", "chat", "mqtt", E::unexpected_protocol},
    {"picks_one_when_none_offered", "", "chat", E::unexpected_protocol},
    {"picks_a_prefix_of_one_offered", "superchat", "super", E::unexpected_protocol},
};

INSTANTIATE_TEST_SUITE_P(UpgradePath, Subprotocols, ::testing::ValuesIn(kProtocolRows),
                         [](const auto& info) { return std::string(info.param.name); });

// ----------------------------------------------------------------- refusals

// What the engine sends instead of a 101, from the handshake (write_refusal)
// or for plain HTTP (append_http_response), reaches the client as a refusal
// with its status, and the head ends where the body starts.
TEST(UpgradePath, RefusalsReadAsRefusedWithTheirStatus) {
  const ClientKey key = key_from(3);
  for (std::uint16_t status : {400, 403, 404, 426, 429, 500}) {
    for (std::string_view body : {std::string_view{}, std::string_view{"go away\n"}}) {
      SCOPED_TRACE(testing::Message() << status << " body " << body.size());
      std::array<char, 512> out{};
      const std::string refusal(out.data(), write_refusal(out, status, body));
      std::string plain;
      append_http_response(plain, status, "text/html", body);
      for (const std::string& response : {refusal, plain}) {
        const std::size_t head = response.size() - body.size();
        EXPECT_EQ(client_reads(key, "chat", response),
                  (Verdict{ParseStatus::error, E::not_101, status, head, ""}));
        UpgradeResponseParser p{key};
        p.parse(response);
        EXPECT_EQ(p.header("Content-Length"), std::to_string(body.size()));
        EXPECT_TRUE(http::fields_have_token(p.headers(), "Connection", "close"));
      }
    }
  }
  std::string metrics;
  append_http_response(metrics, 200, "text/plain; version=0.0.4", "links 1\n");
  EXPECT_EQ(client_reads(key, {}, metrics),
            (Verdict{ParseStatus::error, E::not_101, 200, metrics.size() - 8, ""}));
}

// The request the server refuses, built by the client and then changed.
struct RefusedRow {
  const char* name;
  std::string request;
  std::uint16_t status;
};

std::vector<RefusedRow> refused_rows() {
  const ClientKey key = key_from(4);
  const std::string base = request_for(key, {.host = "h"});
  std::string post = base;
  post.replace(0, 3, "POST");
  std::string version_8 = without_line(base, "Sec-WebSocket-Version:");
  version_8.insert(version_8.size() - 2, "Sec-WebSocket-Version: 8\r\n");
  return {
      {"version_8", version_8, 426},
      {"version_missing", without_line(base, "Sec-WebSocket-Version:"), 426},
      {"version_twice",
       request_for(key, {.host = "h", .extra_headers = "Sec-WebSocket-Version: 13\r\n"}), 426},
      {"host_twice", request_for(key, {.host = "h", .extra_headers = "Host: i\r\n"}), 400},
      {"key_missing", without_line(base, "Sec-WebSocket-Key:"), 400},
      {"post", post, 405},
  };
}

class ServerRefuses : public ::testing::TestWithParam<RefusedRow> {};

TEST_P(ServerRefuses, ClientSeesTheStatus) {
  const RefusedRow& row = GetParam();
  const Served s = serve(row.request);
  ASSERT_EQ(s.status, ParseStatus::error);
  EXPECT_EQ(s.error_status, row.status);
  EXPECT_EQ(client_reads(key_from(4), {}, s.response),
            (Verdict{ParseStatus::error, E::not_101, row.status, s.response.size(), ""}));
}

INSTANTIATE_TEST_SUITE_P(UpgradePath, ServerRefuses, ::testing::ValuesIn(refused_rows()),
                         [](const auto& info) { return std::string(info.param.name); });

// RFC 9110 section 15.5.22 (a 426 sends Upgrade, and so Connection: upgrade,
// section 7.8) and RFC 6455 section 4.4 (the version to retry with): what the
// client gets from a version refusal and from the default plain-HTTP 426.
TEST(UpgradePath, Refusal426TellsTheClientWhatToUpgradeTo) {
  const ClientKey key = key_from(5);
  const Served version_refused =
      serve(without_line(request_for(key, {.host = "h"}), "Sec-WebSocket-Version:"));
  std::string plain;
  append_http_response(plain, 426, "text/plain", "WebSocket upgrade required\n");
  for (const std::string& response : {version_refused.response, plain}) {
    UpgradeResponseParser p{key};
    ASSERT_EQ(p.parse(response), ParseStatus::error);
    EXPECT_EQ(p.status(), 426);
    std::size_t upgrades = 0, connections = 0;
    for (const HeaderField& f : p.headers()) {
      if (http::iequals(f.name, "Upgrade")) ++upgrades;
      if (http::iequals(f.name, "Connection")) ++connections;
    }
    EXPECT_EQ(upgrades, 1u);
    EXPECT_EQ(connections, 1u);
    EXPECT_EQ(p.header("Upgrade"), "websocket");
    EXPECT_TRUE(http::fields_have_token(p.headers(), "Connection", "upgrade"));
    EXPECT_TRUE(http::fields_have_token(p.headers(), "Connection", "close"));
    EXPECT_EQ(p.header("Sec-WebSocket-Version"), "13");
  }
}

// No other status carries the 426's fields.
TEST(UpgradePath, OnlyThe426SaysUpgrade) {
  for (std::uint16_t status : {400, 403, 404, 405, 429, 431, 500, 503}) {
    std::array<char, 512> out{};
    const std::string_view r(out.data(), write_refusal(out, status));
    UpgradeResponseParser p{key_from(6)};
    ASSERT_EQ(p.parse(r), ParseStatus::error) << status;
    EXPECT_FALSE(p.header("Upgrade").has_value()) << status;
    EXPECT_FALSE(p.header("Sec-WebSocket-Version").has_value()) << status;
    EXPECT_EQ(p.header("Connection"), "close") << status;
  }
}

// ------------------------------------------------------- client refuses a 101

TEST(UpgradePath, ClientRejectsAnAnswerToAnotherKey) {
  const ClientKey mine = key_from(7);
  const ClientKey theirs = key_from(8);
  const Served s = serve(request_for(theirs, {.host = "h"}));
  ASSERT_EQ(s.status, ParseStatus::complete);
  EXPECT_EQ(client_reads(mine, {}, s.response),
            (Verdict{ParseStatus::error, E::bad_accept, 101, s.response.size(), ""}));
}

TEST(UpgradePath, ClientRejectsAServers101WithAPartMissing) {
  const ClientKey key = key_from(9);
  const Served s = serve(request_for(key, {.host = "h", .protocols = "chat"}), "chat");
  ASSERT_EQ(s.status, ParseStatus::complete);
  std::string as_200 = s.response;
  as_200.replace(0, as_200.find('\r'), "HTTP/1.1 200 OK");
  const struct {
    std::string response;
    ClientHandshakeError error;
    std::uint16_t status;
  } rows[] = {
      {without_line(s.response, "Upgrade:"), E::bad_upgrade, 101},
      {without_line(s.response, "Connection:"), E::bad_connection, 101},
      {without_line(s.response, "Sec-WebSocket-Accept:"), E::bad_accept, 101},
      {as_200, E::not_101, 200},
  };
  for (const auto& row : rows) {
    EXPECT_EQ(client_reads(key, "chat", row.response),
              (Verdict{ParseStatus::error, row.error, row.status, row.response.size(), ""}))
        << row.response;
  }
}

// The client's own limits, on a real 101: at the limit it passes, one byte or
// one field fewer and the head is too large.
TEST(UpgradePath, ClientHeadLimits) {
  const ClientKey key = key_from(10);
  const Served s = serve(request_for(key, {.host = "h", .protocols = "chat"}), "chat");
  ASSERT_EQ(s.status, ParseStatus::complete);
  const std::size_t bytes = s.response.size();
  const std::size_t fields = 4;  // Upgrade, Connection, Sec-WebSocket-Accept, -Protocol
  const std::string with_frame = s.response + std::string(kFrame);
  EXPECT_EQ(client_reads(key, "chat", with_frame, bytes, fields),
            (Verdict{ParseStatus::complete, E::none, 101, bytes, "chat"}));
  EXPECT_EQ(client_reads(key, "chat", with_frame, bytes - 1, fields),
            (Verdict{ParseStatus::error, E::too_large, 101, 0, ""}));
  EXPECT_EQ(client_reads(key, "chat", with_frame, bytes, fields - 1),
            (Verdict{ParseStatus::error, E::too_large, 101, 0, ""}));
}

}  // namespace
}  // namespace ringlink
