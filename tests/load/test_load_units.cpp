// Unit tests of ringlink-load's pieces: option parsing, the latency
// histogram against a sorted reference, the message format, the sequence
// tracker and the JSON writer.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ringlink_config.hpp"
#include "tools/load/histogram.hpp"
#include "tools/load/histogram_json.hpp"
#include "tools/load/json_writer.hpp"
#include "tools/load/message.hpp"
#include "tools/load/options.hpp"
#include "tools/load/report.hpp"
#include "tools/load/sequence.hpp"

namespace rl = ringlink::load;

namespace {

rl::ParseOutcome parse(const std::vector<std::string>& words, rl::Options& o, std::string& error) {
  std::vector<std::string_view> args(words.begin(), words.end());
  return rl::parse_options(args, o, error);
}

// ---------------------------------------------------------------------------
// Options

struct GoodCase {
  std::vector<std::string> args;
  void (*check)(const rl::Options&);
};

TEST(LoadOptions, GoodInputs) {
  const GoodCase cases[] = {
      {{"ws://127.0.0.1:9001/"},
       [](const rl::Options& o) {
         EXPECT_EQ(o.mode, rl::Mode::echo);
         EXPECT_EQ(o.conns, 1u);
         EXPECT_EQ(o.threads, 1u);
         EXPECT_EQ(o.target.port, 9001);
         EXPECT_EQ(o.target.path, "/");
         EXPECT_EQ(o.target.host_header, "127.0.0.1:9001");
         EXPECT_EQ(o.size_min, 64u);
         EXPECT_FALSE(o.text);
         EXPECT_DOUBLE_EQ(o.duration_s, 10.0);
       }},
      {{"ws://[::1]:80/chat?room=1", "--conns", "100", "--threads", "2", "--inflight", "8", "--size", "40-4096"},
       [](const rl::Options& o) {
         EXPECT_EQ(o.target.host, "::1");
         EXPECT_EQ(o.target.address.storage.ss_family, AF_INET6);
         EXPECT_EQ(o.target.path, "/chat?room=1");
         EXPECT_EQ(o.conns, 100u);
         EXPECT_EQ(o.threads, 2u);
         EXPECT_EQ(o.inflight, 8u);
         EXPECT_EQ(o.size_min, 40u);
         EXPECT_EQ(o.size_max, 4096u);
       }},
      {{"ws://localhost", "--mode", "rate", "--rate", "2500.5", "--duration", "1500ms", "--warmup", "2s", "--text"},
       [](const rl::Options& o) {
         EXPECT_EQ(o.mode, rl::Mode::rate);
         EXPECT_DOUBLE_EQ(o.rate, 2500.5);
         EXPECT_DOUBLE_EQ(o.duration_s, 1.5);
         EXPECT_DOUBLE_EQ(o.warmup_s, 2.0);
         EXPECT_TRUE(o.text);
         EXPECT_EQ(o.target.port, 80);
         EXPECT_EQ(o.target.host_header, "localhost");
         EXPECT_FALSE(o.deflate);
         EXPECT_EQ(o.payload, rl::FillerKind::random);
       }},
      {{"ws://127.0.0.1/", "--deflate", "--payload", "json"},
       [](const rl::Options& o) {
         EXPECT_TRUE(o.deflate);
         EXPECT_EQ(o.payload, rl::FillerKind::json);
       }},
      {{"--mode", "idle", "ws://127.0.0.1:1/", "--ping-interval", "250ms", "--duration", "1m"},
       [](const rl::Options& o) {
         EXPECT_EQ(o.mode, rl::Mode::idle);
         EXPECT_EQ(o.ping_interval_ms, 250u);
         EXPECT_DOUBLE_EQ(o.duration_s, 60.0);
       }},
      {{"ws://127.0.0.1:1/", "--mode", "push", "--rate", "0", "--json", "out.json", "--plot", "p.png", "--max-errors", "5"},
       [](const rl::Options& o) {
         EXPECT_EQ(o.mode, rl::Mode::push);
         EXPECT_EQ(o.rate, 0.0);
         EXPECT_EQ(o.json_path, "out.json");
         EXPECT_EQ(o.plot_path, "p.png");
         EXPECT_EQ(o.max_errors, 5u);
       }},
      {{"ws://127.0.0.1:1/", "--source-ips", "127.0.0.1-127.0.0.40", "--connect-rate", "500"},
       [](const rl::Options& o) {
         ASSERT_EQ(o.sources.size(), 40u);
         const auto* last = reinterpret_cast<const sockaddr_in*>(&o.sources.back().storage);
         EXPECT_EQ(ntohl(last->sin_addr.s_addr), 0x7F000028u);
         EXPECT_EQ(last->sin_port, 0);
         EXPECT_DOUBLE_EQ(o.connect_rate, 500.0);
       }},
  };
  for (const GoodCase& c : cases) {
    rl::Options o;
    std::string error;
    ASSERT_EQ(parse(c.args, o, error), rl::ParseOutcome::run) << c.args[0] << ": " << error;
    c.check(o);
  }
}

// Proves: wss:// URLs parse (default port 443) with --ca and --insecure, in a build with TLS;
// without it they are refused with a reason.
TEST(LoadOptions, WssUrlsTakeTlsOptions) {
  rl::Options o;
  std::string error;
  const auto outcome = parse({"wss://127.0.0.1/chat", "--ca", "/tmp/ca.pem", "--insecure"}, o, error);
  if constexpr (!ringlink::config::tls) {
    EXPECT_EQ(outcome, rl::ParseOutcome::error);
    EXPECT_NE(error.find("TLS"), std::string::npos) << error;
    return;
  }
  ASSERT_EQ(outcome, rl::ParseOutcome::run) << error;
  EXPECT_TRUE(o.target.tls);
  EXPECT_EQ(o.target.port, 443);
  EXPECT_EQ(o.target.path, "/chat");
  EXPECT_EQ(o.ca_file, "/tmp/ca.pem");
  EXPECT_TRUE(o.insecure);
  rl::Options plain;
  ASSERT_EQ(parse({"ws://127.0.0.1:9001/"}, plain, error), rl::ParseOutcome::run) << error;
  EXPECT_FALSE(plain.target.tls);
}

struct BadCase {
  std::vector<std::string> args;
  const char* message_part;
};

TEST(LoadOptions, BadInputsAreRefusedWithAReason) {
  const BadCase cases[] = {
      {{}, "missing the ws:// URL"},
      {{"http://127.0.0.1/"}, "must start with ws://"},
      {{"wss://"}, ringlink::config::tls ? "no host" : "TLS"},
      {{"ws://127.0.0.1/", "--insecure"}, "wss:// only"},
      {{"ws://127.0.0.1/", "--ca", "ca.pem"}, "wss:// only"},
      {{"ws://"}, "no host"},
      {{"ws://example.com/"}, "no DNS"},
      {{"ws://::1:80/"}, "brackets"},
      {{"ws://127.0.0.1:0/"}, "bad port"},
      {{"ws://127.0.0.1:70000/"}, "bad port"},
      {{"ws://127.0.0.1:/"}, "empty port"},
      {{"ws://[::1/"}, "unterminated"},
      {{"ws://127.0.0.1/", "ws://127.0.0.1/"}, "unexpected argument"},
      {{"ws://127.0.0.1/", "--conns"}, "needs a value"},
      {{"ws://127.0.0.1/", "--conns", "0"}, "--conns"},
      {{"ws://127.0.0.1/", "--conns", "12x"}, "--conns"},
      {{"ws://127.0.0.1/", "--conns", "-3"}, "--conns"},
      {{"ws://127.0.0.1/", "--threads", "257"}, "--threads"},
      {{"ws://127.0.0.1/", "--mode", "flood"}, "--mode"},
      {{"ws://127.0.0.1/", "--payload", "lorem"}, "--payload"},
      {{"ws://127.0.0.1/", "--mode", "rate"}, "needs --rate"},
      {{"ws://127.0.0.1/", "--rate", "100"}, "--rate applies"},
      {{"ws://127.0.0.1/", "--mode", "rate", "--rate", "100", "--inflight", "2"}, "--inflight applies"},
      {{"ws://127.0.0.1/", "--ping-interval", "1s"}, "--ping-interval applies"},
      {{"ws://127.0.0.1/", "--mode", "idle", "--size", "100"}, "--size does not apply"},
      {{"ws://127.0.0.1/", "--size", "39"}, "at least 40"},
      {{"ws://127.0.0.1/", "--size", "50", "--text"}, "at least 54"},
      {{"ws://127.0.0.1/", "--size", "100-50"}, "--size"},
      {{"ws://127.0.0.1/", "--size", "100-"}, "--size"},
      {{"ws://127.0.0.1/", "--size", "999999999"}, "largest message"},
      {{"ws://127.0.0.1/", "--duration", "0"}, "--duration"},
      {{"ws://127.0.0.1/", "--duration", "5h"}, "--duration"},
      {{"ws://127.0.0.1/", "--duration", "nan"}, "--duration"},
      {{"ws://127.0.0.1/", "--source-ips", "127.0.0.9-127.0.0.1"}, "ends before it starts"},
      {{"ws://127.0.0.1/", "--source-ips", "10.0.0.1-::1"}, "two IPv4"},
      {{"ws://127.0.0.1/", "--source-ips", "10.0.0.0-10.1.0.0"}, "65536"},
      {{"ws://127.0.0.1/", "--source-ips", "::1"}, "different families"},
      {{"ws://127.0.0.1/", "--frobnicate", "1"}, "unknown option"},
  };
  for (const BadCase& c : cases) {
    rl::Options o;
    std::string error;
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(parse(c.args, o, error), rl::ParseOutcome::error) << joined;
    EXPECT_NE(error.find(c.message_part), std::string::npos) << joined << " -> " << error;
  }
}

TEST(LoadOptions, HelpIsNotAnError) {
  rl::Options o;
  std::string error;
  EXPECT_EQ(parse({"--help"}, o, error), rl::ParseOutcome::help);
  EXPECT_EQ(parse({"ws://127.0.0.1/", "-h"}, o, error), rl::ParseOutcome::help);
}

// ---------------------------------------------------------------------------
// Histogram

TEST(LoadHistogram, LayoutIsContiguousAndExact) {
  using L = rl::PreciseLayout;
  for (std::size_t i = 0; i + 1 < L::bucket_count; ++i) {
    ASSERT_EQ(L::highest_of(i) + 1, L::lowest_of(i + 1)) << i;
    ASSERT_EQ(L::index_of(L::lowest_of(i)), i);
    ASSERT_EQ(L::index_of(L::highest_of(i)), i);
    // Three significant digits: a bucket is at most 1/1024 of its values wide.
    ASSERT_LE(L::highest_of(i) - L::lowest_of(i), L::lowest_of(i) / 1024) << i;
  }
  EXPECT_EQ(L::index_of(rl::histogram_max_ns), L::bucket_count - 1);
  EXPECT_EQ(L::index_of(UINT64_MAX), L::bucket_count - 1);
  EXPECT_LT(L::bucket_count, 30'000u);  // fixed memory: under 240 KB of counters
}

TEST(LoadHistogram, PercentilesMatchASortedReference) {
  std::mt19937_64 rng(12345);
  std::lognormal_distribution<double> dist(std::log(50'000.0), 1.5);  // ~50 us, long tail
  for (int round = 0; round < 3; ++round) {
    rl::Histogram h;
    std::vector<std::uint64_t> ref;
    const int n = 100'000 + round * 777;
    for (int i = 0; i < n; ++i) {
      const auto v = static_cast<std::uint64_t>(std::min(dist(rng), 5e10)) + 1000;
      h.record(v);
      ref.push_back(v);
    }
    std::sort(ref.begin(), ref.end());
    EXPECT_EQ(h.count(), ref.size());
    EXPECT_EQ(h.min(), ref.front());
    EXPECT_EQ(h.max(), ref.back());
    for (double p : {1.0, 10.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0}) {
      const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(ref.size()) - 1e-6));
      const std::uint64_t exact = ref[std::max<std::size_t>(rank, 1) - 1];
      const std::uint64_t got = h.value_at_percentile(p);
      EXPECT_GE(got, exact) << "p" << p;
      EXPECT_LE(got - exact, exact / 1000) << "p" << p << " exact " << exact << " got " << got;
    }
  }
}

TEST(LoadHistogram, MergeEqualsRecordingEverythingInOne) {
  rl::Histogram a, b, all, merged;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20'000; ++i) {
    const std::uint64_t v = rng() % 10'000'000'000ULL;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge_into(merged);
  b.merge_into(merged);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  for (double p : {50.0, 99.0, 99.99}) EXPECT_EQ(merged.value_at_percentile(p), all.value_at_percentile(p));
  EXPECT_TRUE(std::equal(merged.counts().begin(), merged.counts().end(), all.counts().begin()));
}

TEST(LoadHistogram, SaturatesAtSixtySecondsAndHandlesEmpty) {
  rl::Histogram h;
  EXPECT_EQ(h.value_at_percentile(99), 0u);
  EXPECT_EQ(h.min(), 0u);
  h.record(120'000'000'000ULL);
  EXPECT_EQ(h.saturated(), 1u);
  EXPECT_EQ(h.max(), rl::histogram_max_ns);
  EXPECT_EQ(h.value_at_percentile(50), rl::histogram_max_ns);
}

TEST(LoadHistogram, LiveSnapshotsDiffToOneSecond) {
  rl::LiveHistogram live;
  std::vector<std::uint64_t> first, second;
  for (int i = 0; i < 100; ++i) live.record(1'000'000);
  live.add_snapshot(first);
  for (int i = 0; i < 100; ++i) live.record(9'000'000);
  live.add_snapshot(second);
  std::vector<std::uint64_t> diff(second.size());
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < diff.size(); ++i) total += diff[i] = second[i] - first[i];
  EXPECT_EQ(total, 100u);
  const std::uint64_t p99 = rl::percentile_of<rl::CoarseLayout>(diff, total, 99.0);
  EXPECT_GE(p99, 9'000'000u);
  EXPECT_LE(p99, 9'000'000u + 9'000'000u / 16);  // coarse: ~3 %
}

TEST(LoadHistogram, DistributionPercentilesHalveTowardsTheTail) {
  const std::vector<double> p = rl::distribution_percentiles();
  ASSERT_GE(p.size(), 90u);
  EXPECT_EQ(p.front(), 0.0);
  EXPECT_EQ(p.back(), 100.0);
  EXPECT_NEAR(p[5], 50.0, 1e-9);
  EXPECT_NEAR(p[10], 75.0, 1e-9);
  EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
}

// ---------------------------------------------------------------------------
// Message format

TEST(LoadMessage, RoundTripsBinaryAndText) {
  for (bool text : {false, true}) {
    for (std::size_t size : {rl::min_message_size(text), std::size_t{64}, std::size_t{67}, std::size_t{4096}}) {
      std::vector<std::byte> buf(size);
      const rl::MessageStamp s{123456, 0x0102030405060708ULL, 111'222'333'444ULL, 111'222'333'999ULL};
      rl::write_message(buf, s, text);
      if (text) {
        for (std::byte b : buf) ASSERT_LT(static_cast<unsigned>(b), 0x80u);  // ASCII: valid UTF-8
      }
      rl::MessageStamp back;
      ASSERT_EQ(rl::read_message(buf, text, back), rl::MessageCheck::ok) << text << " " << size;
      EXPECT_EQ(back.conn, s.conn);
      EXPECT_EQ(back.seq, s.seq);
      EXPECT_EQ(back.intended_ns, s.intended_ns);
      EXPECT_EQ(back.sent_ns, s.sent_ns);
    }
  }
}

// --payload json and zeros: fixed fillers, still checked byte for byte, and
// text stays ASCII.
TEST(LoadMessage, FixedFillersRoundTripAndCatchChanges) {
  for (rl::FillerKind kind : {rl::FillerKind::json, rl::FillerKind::zeros}) {
    for (bool text : {false, true}) {
      std::vector<std::byte> buf(300);
      const rl::MessageStamp s{5, 77, 1000, 2000};
      rl::write_message(buf, s, text, kind);
      if (text) {
        for (std::byte b : buf) ASSERT_LT(static_cast<unsigned>(b), 0x80u);
      }
      if (kind == rl::FillerKind::json) {
        const std::string tail(reinterpret_cast<const char*>(buf.data()) + rl::min_message_size(text), 10);
        EXPECT_EQ(tail, R"({"id":1042)");
      }
      rl::MessageStamp back;
      ASSERT_EQ(rl::read_message(buf, text, back, kind), rl::MessageCheck::ok);
      EXPECT_EQ(back.seq, 77u);
      // Read as another kind, or with one filler byte changed: bad_filler.
      EXPECT_EQ(rl::read_message(buf, text, back, rl::FillerKind::random), rl::MessageCheck::bad_filler);
      std::vector<std::byte> bad = buf;
      bad[250] ^= std::byte{0x01};
      EXPECT_EQ(rl::read_message(bad, text, back, kind), rl::MessageCheck::bad_filler);
    }
  }
}

TEST(LoadMessage, EveryChangedByteIsFound) {
  for (bool text : {false, true}) {
    std::vector<std::byte> buf(100);
    const rl::MessageStamp s{3, 9, 1000, 2000};
    rl::write_message(buf, s, text);
    const std::size_t header = rl::min_message_size(text);
    for (std::size_t i = 0; i < buf.size(); ++i) {
      std::vector<std::byte> bad = buf;
      bad[i] = text ? (bad[i] == std::byte{'A'} ? std::byte{'B'} : std::byte{'A'}) : (bad[i] ^ std::byte{0x10});
      rl::MessageStamp back;
      const rl::MessageCheck want = i < header ? rl::MessageCheck::bad_header : rl::MessageCheck::bad_filler;
      EXPECT_EQ(rl::read_message(bad, text, back), want) << "text " << text << " byte " << i;
    }
    rl::MessageStamp back;
    EXPECT_EQ(rl::read_message(std::span(buf).first(header - 1), text, back), rl::MessageCheck::too_short);
    EXPECT_EQ(rl::read_message(std::span(buf).first(99), text, back), rl::MessageCheck::bad_header);  // size field
  }
}

TEST(LoadMessage, DifferentMessagesHaveDifferentFiller) {
  std::vector<std::byte> a(256), b(256);
  rl::write_message(a, {1, 1, 0, 0}, false);
  rl::write_message(b, {1, 2, 0, 0}, false);
  EXPECT_FALSE(std::equal(a.begin() + 40, a.end(), b.begin() + 40));
}

// ---------------------------------------------------------------------------
// JSON writer

// What `write` puts in a file, as a string.
template <class Write>
std::string json_of(Write write) {
  std::FILE* f = std::tmpfile();
  if (f == nullptr) return "(no temporary file)";
  rl::JsonWriter j(f);
  write(j);
  std::string out(static_cast<std::size_t>(std::ftell(f)), '\0');
  std::rewind(f);
  out.resize(std::fread(out.data(), 1, out.size(), f));
  std::fclose(f);
  return out;
}

TEST(LoadJson, CommasNestingAndNumberFormats) {
  const std::string s = json_of([](rl::JsonWriter& j) {
    j.open('{');
    j.field("n", std::numeric_limits<std::uint64_t>::max());
    j.field("x", 1234567.0);
    j.field("small", 0.000123456789);
    j.field("nan", std::nan(""));
    j.field("inf", HUGE_VAL);
    j.field("yes", true);
    j.field("mode", "echo");
    j.counts("by_code", {{1011, 1}, {1006, 3}});
    j.counts("none", {});
    j.key("list");
    j.open('[');
    j.value(std::uint64_t{1});
    j.open('{');
    j.close('}');
    j.value(std::string("two"));
    j.close(']');
    j.close('}');
  });
  EXPECT_EQ(s,
            "{\"n\":18446744073709551615,\"x\":1.23457e+06,\"small\":0.000123457,\"nan\":null,\"inf\":null,"
            "\"yes\":true,\"mode\":\"echo\",\"by_code\":{\"1006\":3,\"1011\":1},\"none\":{},"
            "\"list\":[1,{},\"two\"]}");
}

TEST(LoadJson, StringsAreEscaped) {
  const std::string s = json_of([](rl::JsonWriter& j) { j.value(std::string("a\"b\\c\n\x01\x7f\xc3\xa9")); });
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\u000a\\u0001\x7f\xc3\xa9\"");
}

// ---------------------------------------------------------------------------
// Sequence tracking

TEST(LoadSequence, CountsDuplicatesReorderingAndGaps) {
  using A = rl::SequenceTracker::Arrival;
  struct Step {
    std::uint64_t seq;
    A want;
  };
  const Step steps[] = {{0, A::in_order}, {1, A::in_order}, {3, A::ahead},     {2, A::late},   {3, A::duplicate},
                        {6, A::ahead},    {4, A::late},     {1, A::duplicate}, {7, A::in_order}};
  rl::SequenceTracker t;
  for (const Step& s : steps) EXPECT_EQ(t.on_receive(s.seq), s.want) << s.seq;
  EXPECT_EQ(t.unique(), 7u);      // 0 1 2 3 4 6 7
  EXPECT_EQ(t.duplicates(), 2u);
  EXPECT_EQ(t.reordered(), 2u);
  EXPECT_EQ(t.missing(), 1u);     // 5
  EXPECT_EQ(t.next_expected(), 8u);
}

TEST(LoadSequence, FarJumpsForgetTheWindow) {
  using A = rl::SequenceTracker::Arrival;
  rl::SequenceTracker t;
  EXPECT_EQ(t.on_receive(0), A::in_order);
  EXPECT_EQ(t.on_receive(5000), A::ahead);
  EXPECT_EQ(t.on_receive(4999), A::late);
  EXPECT_EQ(t.on_receive(10), A::too_old);
  EXPECT_EQ(t.on_receive(5000), A::duplicate);
  EXPECT_EQ(t.missing(), 5001u - 4u);
}

}  // namespace
