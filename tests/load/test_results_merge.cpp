// ringlink-load --processes without processes: the split of the options and
// the exact merge of the children's Results after a trip through the wire format.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/load/options.hpp"
#include "tools/load/processes.hpp"
#include "tools/load/results_wire.hpp"

namespace ringlink::load {
namespace {

Results part(std::uint64_t base, std::uint32_t conns) {
  Results r;
  r.measured_s = 1.0 + static_cast<double>(base) / 100;
  r.ramp_s = 0.5;
  for (std::uint64_t v = 1; v <= 100 * base; ++v) r.latency.record(v * 1000);
  r.send_lag.record(base);
  for (std::uint64_t v = 1; v <= 10 * base; ++v) r.handshake.record(v * 7919 * base);
  r.msgs_sent = r.msgs_received = 10 * base;
  r.total_sent = r.total_received = 11 * base;
  r.conns_requested = r.conns_opened = conns;
  r.lost = base;
  r.unanswered = 2 * base;
  r.corrupt[1] = base;
  r.connect_errors[111] = base;
  r.unexpected_closes[1001] = 3;
  for (std::uint32_t i = 0; i < conns; ++i) {
    ConnResult c;
    c.index = i;
    c.opened = true;
    c.measured = base * 100 + i;
    r.conns.push_back(c);
  }
  r.threads.push_back(ThreadResult{10.0 * static_cast<double>(base), 20});
  r.process_cpu_percent = 5;
  // Appended, not "w" + to_string(): GCC 12 at -O3 warns falsely (-Wrestrict) on that operator+.
  std::string warning = std::to_string(base);
  warning.insert(warning.begin(), 'w');
  r.warnings.push_back(std::move(warning));
  return r;
}

Results round_trip(const Results& r) {
  std::vector<std::byte> bytes;
  encode_results(r, bytes);
  Results out;
  EXPECT_TRUE(decode_results(bytes, out));
  bytes.pop_back();
  Results truncated;
  EXPECT_FALSE(decode_results(bytes, truncated));
  return out;
}

// Proves: two parts merged after the wire add up exactly, histograms included.
TEST(ResultsMerge, CountsAndHistogramsAddUpExactly) {
  const Results a = part(1, 3), b = part(2, 4);
  Results total;
  merge_results(total, round_trip(a));
  merge_results(total, round_trip(b));
  finish_merge(total);

  EXPECT_EQ(total.msgs_sent, 30u);
  EXPECT_EQ(total.total_received, 33u);
  EXPECT_EQ(total.lost, 3u);
  EXPECT_EQ(total.unanswered, 6u);
  EXPECT_EQ(total.corrupt[1], 3u);
  EXPECT_EQ(total.connect_errors[111], 3u);
  EXPECT_EQ(total.unexpected_closes[1001], 6u);
  EXPECT_EQ(total.conns_opened, 7u);
  EXPECT_EQ(total.errors(), a.errors() + b.errors());
  EXPECT_DOUBLE_EQ(total.measured_s, b.measured_s);
  EXPECT_DOUBLE_EQ(total.process_cpu_percent, 10);
  ASSERT_EQ(total.conns.size(), 7u);
  for (std::uint32_t i = 0; i < 7; ++i) EXPECT_EQ(total.conns[i].index, i);
  EXPECT_EQ(total.fairness_min, 100u);
  EXPECT_EQ(total.fairness_max, 203u);
  EXPECT_EQ(total.threads.size(), 2u);
  EXPECT_EQ(total.warnings.size(), 2u);

  Histogram direct;
  a.latency.merge_into(direct);
  b.latency.merge_into(direct);
  EXPECT_EQ(total.latency.count(), direct.count());
  EXPECT_EQ(total.latency.min(), direct.min());
  EXPECT_EQ(total.latency.max(), direct.max());
  EXPECT_DOUBLE_EQ(total.latency.mean(), direct.mean());
  for (double p : {50.0, 90.0, 99.0, 99.9})
    EXPECT_EQ(total.latency.value_at_percentile(p), direct.value_at_percentile(p)) << p;
  EXPECT_EQ(total.send_lag.count(), 2u);

  Histogram handshakes;
  a.handshake.merge_into(handshakes);
  b.handshake.merge_into(handshakes);
  EXPECT_EQ(total.handshake.count(), 30u);
  EXPECT_EQ(total.handshake.min(), handshakes.min());
  EXPECT_EQ(total.handshake.max(), handshakes.max());
  EXPECT_DOUBLE_EQ(total.handshake.mean(), handshakes.mean());
  for (double p : {50.0, 90.0, 99.0})
    EXPECT_EQ(total.handshake.value_at_percentile(p), handshakes.value_at_percentile(p)) << p;
}

// Proves: the children's links and rates add up to what was asked.
TEST(ResultsMerge, ChildOptionsSplitTheRun) {
  Options o;
  std::string error;
  ASSERT_EQ(parse_options({"ws://127.0.0.1:9/", "--mode", "rate", "--rate", "410", "--conns", "41", "--processes", "3",
                           "--connect-rate", "300"},
                          o, error),
            ParseOutcome::run)
      << error;
  EXPECT_EQ(o.sources.size(), 8u);  // 127.0.0.1-127.0.0.8 by default
  std::uint32_t conns = 0;
  double rate = 0, connect_rate = 0;
  for (unsigned i = 0; i < 3; ++i) {
    const Options c = child_options(o, i, 3);
    EXPECT_EQ(c.processes, 1u);
    EXPECT_EQ(c.sources.size(), 8u);
    conns += c.conns;
    rate += c.rate;
    connect_rate += c.connect_rate;
  }
  EXPECT_EQ(conns, 41u);
  EXPECT_NEAR(rate, 410, 1e-9);
  EXPECT_NEAR(connect_rate, 300, 1e-9);
  EXPECT_EQ(parse_options({"ws://127.0.0.1:9/", "--conns", "2", "--processes", "3"}, o, error), ParseOutcome::error);
  EXPECT_EQ(parse_options({"ws://127.0.0.1:9/", "--mode", "push", "--conns", "4", "--processes", "2"}, o, error),
            ParseOutcome::error);
}

}  // namespace
}  // namespace ringlink::load
