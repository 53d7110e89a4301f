// permessage-deflate negotiation: the server's choice among offers, the
// answer it writes, and the client's check of that answer (RFC 7692 5, 7).
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "protocol/deflate_negotiation.hpp"

namespace ringlink {
namespace {

std::string answer(std::string_view offer, const DeflateServerOptions& opt = {}) {
  const auto agreed = negotiate_deflate(offer, opt);
  if (!agreed) return "declined";
  std::array<char, 128> out;
  const std::size_t n = write_deflate_response(out, *agreed);
  return std::string(out.data(), n);
}

TEST(DeflateNegotiation, PlainOfferIsAcceptedWithNoParameters) {
  EXPECT_EQ(answer("permessage-deflate"), "permessage-deflate");
  EXPECT_EQ(answer("PerMessage-Deflate"), "permessage-deflate");
}

TEST(DeflateNegotiation, BrowserOfferGetsClientWindowBack) {
  // What Chrome and Firefox send.
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits"),
            "permessage-deflate; client_max_window_bits=15");
  DeflateServerOptions opt;
  opt.client_max_window_bits = 10;
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits", opt),
            "permessage-deflate; client_max_window_bits=10");
}

TEST(DeflateNegotiation, OtherExtensionsAreSkipped) {
  EXPECT_EQ(answer("x-webkit-deflate-frame, permessage-deflate"), "permessage-deflate");
  EXPECT_EQ(answer("foo; bar=1"), "declined");
  EXPECT_EQ(answer(""), "declined");
  EXPECT_EQ(answer(" , ,"), "declined");
}

TEST(DeflateNegotiation, FirstAcceptableOfferWins) {
  // The first offer asks for a window zlib cannot make: declined, the
  // second is taken.
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=8, permessage-deflate; "
                   "server_no_context_takeover"),
            "permessage-deflate; server_no_context_takeover");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
            "permessage-deflate; server_max_window_bits=10");
}

TEST(DeflateNegotiation, InvalidOffersAreDeclined) {
  EXPECT_EQ(answer("permessage-deflate; foo"), "declined");
  EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            "declined");
  EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover=1"), "declined");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits"), "declined");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=16"), "declined");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=7"), "declined");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=010"), "declined");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=1a"), "declined");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"\""), "declined");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"9 \""), "declined");
  // Each alone is fine: only the repeat makes it invalid.
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits; client_max_window_bits=9"), "declined");
}

TEST(DeflateNegotiation, QuotedValuesAreUnescaped) {
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"10\""),
            "permessage-deflate; client_max_window_bits=10");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"1\\2\""),
            "permessage-deflate; client_max_window_bits=12");
  EXPECT_EQ(answer("permessage-deflate ;client_max_window_bits = \"9\" , foo"),
            "permessage-deflate; client_max_window_bits=9");
}

TEST(DeflateNegotiation, SyntaxErrorStopsTheField) {
  // Offers before the error count; nothing after it does.
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"9, permessage-deflate"), "declined");
  EXPECT_EQ(answer("foo;;, permessage-deflate"), "declined");
  EXPECT_EQ(answer("permessage-deflate, foo;=3"), "permessage-deflate");
  EXPECT_EQ(answer("permessage-deflate; a b"), "declined");
}

TEST(DeflateNegotiation, WindowEightForTheClientIsFine) {
  // zlib inflates with an 8-bit window; only compressing with one is out.
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=8"),
            "permessage-deflate; client_max_window_bits=8");
}

TEST(DeflateNegotiation, ServerOptionsShapeTheAnswer) {
  DeflateServerOptions opt;
  opt.server_no_context_takeover = true;
  opt.client_no_context_takeover = true;
  opt.server_max_window_bits = 11;
  EXPECT_EQ(answer("permessage-deflate", opt),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=13", opt),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=9", opt),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9");
  const auto p = negotiate_deflate("permessage-deflate; client_no_context_takeover", DeflateServerOptions{});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->client_no_context_takeover);
  EXPECT_FALSE(p->server_no_context_takeover);
  EXPECT_EQ(p->client_max_window_bits, 15);
}

TEST(DeflateNegotiation, ResponseNeedsRoom) {
  DeflateParams p;
  p.server_no_context_takeover = p.client_no_context_takeover = true;
  p.server_max_window_bits = 9;
  p.client_max_window_bits = 10;
  p.state_client_bits = true;
  std::array<char, 20> small;
  EXPECT_EQ(write_deflate_response(small, p), 0u);
  std::array<char, 128> enough;
  EXPECT_GT(write_deflate_response(enough, p), 0u);
}

std::string offer(const DeflateClientOptions& opt) {
  std::array<char, 128> out;
  return std::string(out.data(), write_deflate_offer(out, opt));
}

TEST(DeflateClient, OfferCarriesTheOptions) {
  EXPECT_EQ(offer({}), "permessage-deflate; client_max_window_bits");
  DeflateClientOptions opt;
  opt.server_no_context_takeover = opt.client_no_context_takeover = true;
  opt.server_max_window_bits = 10;
  opt.client_max_window_bits = 11;
  EXPECT_EQ(offer(opt),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=11");
}

DeflateAnswer check(std::initializer_list<std::string_view> fields, const DeflateClientOptions& opt = {},
                    DeflateParams* out = nullptr) {
  DeflateAnswerChecker c(opt);
  for (auto f : fields) c.add(f);
  if (out != nullptr) *out = c.params();
  return c.finish();
}

TEST(DeflateClient, AcceptsWhatWasOffered) {
  DeflateParams p;
  EXPECT_EQ(check({}), DeflateAnswer::none);
  EXPECT_EQ(check({"permessage-deflate"}, {}, &p), DeflateAnswer::accepted);
  EXPECT_EQ(p, DeflateParams{});
  EXPECT_EQ(check({"permessage-deflate; client_max_window_bits=9; server_no_context_takeover"}, {}, &p),
            DeflateAnswer::accepted);
  EXPECT_EQ(p.client_max_window_bits, 9);
  EXPECT_TRUE(p.server_no_context_takeover);
  // A server may always ask us for no context takeover, and pick its window.
  EXPECT_EQ(check({"permessage-deflate; client_no_context_takeover; server_max_window_bits=10"}, {}, &p),
            DeflateAnswer::accepted);
  EXPECT_TRUE(p.client_no_context_takeover);
  EXPECT_EQ(p.server_max_window_bits, 10);
  // Window 8 for our compressor: accepted (we then send uncompressed).
  EXPECT_EQ(check({"permessage-deflate; client_max_window_bits=8"}, {}, &p), DeflateAnswer::accepted);
  EXPECT_EQ(p.client_max_window_bits, 8);
}

TEST(DeflateClient, FailsOnWhatWasNotOffered) {
  EXPECT_EQ(check({"x-foo"}), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; foo"}), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate, permessage-deflate"}), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate", "permessage-deflate"}), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; client_max_window_bits"}), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; server_max_window_bits=16"}), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; \"x\""}), DeflateAnswer::fail);
  DeflateClientOptions opt;
  opt.server_max_window_bits = 10;
  opt.client_max_window_bits = 10;
  // An offered server_max_window_bits must be answered, with no more.
  EXPECT_EQ(check({"permessage-deflate"}, opt), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; server_max_window_bits=11"}, opt), DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; server_max_window_bits=10; client_max_window_bits=11"}, opt),
            DeflateAnswer::fail);
  EXPECT_EQ(check({"permessage-deflate; server_max_window_bits=9; client_max_window_bits=10"}, opt),
            DeflateAnswer::accepted);
}

// What the server answers, the client accepts, for every combination.
TEST(DeflateRoundTrip, ServerAnswersPassTheClientCheck) {
  for (int mask = 0; mask < 4; ++mask) {
    for (std::uint8_t sb = 9; sb <= 15; ++sb) {
      for (std::uint8_t cb = 9; cb <= 15; ++cb) {
        DeflateClientOptions c;
        c.server_no_context_takeover = (mask & 1) != 0;
        c.client_no_context_takeover = (mask & 2) != 0;
        c.server_max_window_bits = sb;
        c.client_max_window_bits = cb;
        const auto agreed = negotiate_deflate(offer(c), DeflateServerOptions{});
        ASSERT_TRUE(agreed);
        std::array<char, 128> out;
        const std::string resp(out.data(), write_deflate_response(out, *agreed));
        DeflateParams p;
        ASSERT_EQ(check({resp}, c, &p), DeflateAnswer::accepted) << resp;
        EXPECT_EQ(p.server_no_context_takeover, c.server_no_context_takeover);
        EXPECT_EQ(p.client_no_context_takeover, c.client_no_context_takeover);
        EXPECT_EQ(p.server_max_window_bits, sb);
        EXPECT_EQ(p.client_max_window_bits, cb);
      }
    }
  }
}

}  // namespace
}  // namespace ringlink
