// A latency histogram in the --json reports of ringlink-load and raw_load
// (bench/peers/raw), written in one place so that both tools keep the same
// keys: count, min/mean/max, p50 ... p99.99 and the whole distribution, all
// in microseconds.
//
//   write_histogram(j, "latency", h);  // "latency":{"count":..,"p99_us":..,"distribution":[..]}
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "tools/load/histogram.hpp"
#include "tools/load/json_writer.hpp"

namespace ringlink::load {

// The percentiles every report names: p50 ... p99.99.
inline constexpr double standard_percentiles[] = {50, 90, 99, 99.9, 99.99};

// The percentiles the JSON distribution and the plot use: 0, 50, 75, 87.5...
// (halving the distance to 100 in 5 steps each time) up to 99.9999, then 100.
inline std::vector<double> distribution_percentiles() {
  std::vector<double> out;
  for (int k = 0;; ++k) {
    const double p = 100.0 * (1.0 - std::pow(0.5, k / 5.0));
    if (p > 99.9999) break;
    out.push_back(p);
  }
  out.push_back(100.0);
  return out;
}

inline void write_histogram(JsonWriter& j, const char* key, const Histogram& h) {
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  j.key(key);
  j.open('{');
  j.field("count", h.count());
  j.field("min_us", us(h.min()));
  j.field("mean_us", h.mean() / 1e3);
  j.field("max_us", us(h.max()));
  j.field("saturated", h.saturated());
  for (double p : standard_percentiles) {
    char name[32];
    std::snprintf(name, sizeof name, "p%g_us", p);  // p50_us ... p99.9_us, p99.99_us
    j.field(name, us(h.value_at_percentile(p)));
  }
  j.key("distribution");
  j.open('[');
  for (double p : distribution_percentiles()) {
    j.open('{');
    j.field("percentile", p);
    j.field("value_us", us(h.value_at_percentile(p)));
    j.close('}');
  }
  j.close(']');
  j.close('}');
}

}  // namespace ringlink::load
