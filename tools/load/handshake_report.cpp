#include "tools/load/handshake_report.hpp"

#include <cstring>

#include "tools/load/histogram_json.hpp"
#include "tools/load/report.hpp"

namespace ringlink::load {
namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1e3; }

}  // namespace

double handshakes_per_s(const Options& o, const Results& r) noexcept {
  if (o.handshakes) return r.measured_s > 0 ? static_cast<double>(r.handshake.count()) / r.measured_s : 0;
  return r.ramp_s > 0 ? static_cast<double>(r.conns_opened) / r.ramp_s : 0;
}

void print_handshake_line(std::FILE* out, const Options& o, const Results& r) {
  const Histogram& h = r.handshake;
  std::fprintf(out, "  handshakes (connect() to upgrade%s): %.0f/s", o.target.tls ? ", TLS included" : "", handshakes_per_s(o, r));
  if (h.count() == 0) {
    std::fprintf(out, ", none completed\n");
    return;
  }
  std::fprintf(out, "; us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", us(h.value_at_percentile(50)),
               us(h.value_at_percentile(90)), us(h.value_at_percentile(99)), us(h.max()));
}

void print_handshake_report(std::FILE* out, const Options& o, const Results& r) {
  std::fprintf(out, "ringlink-load: handshakes, %s, %u concurrent connections on ", o.url.c_str(), o.conns);
  if (o.processes > 1) std::fprintf(out, "%u processes x ", o.processes);
  std::fprintf(out, "%u thread%s: connect, upgrade, close 1000, again\n", o.threads, o.threads == 1 ? "" : "s");
  std::fprintf(out, "  measured %.2f s: %llu handshakes completed; %u of %u connections completed at least one\n",
               r.measured_s, (unsigned long long)r.handshake.count(), r.conns_opened, r.conns_requested);
  print_handshake_line(out, o, r);
  const Histogram& h = r.handshake;
  if (h.count() > 0) {
    std::fprintf(out, "   ");
    for (double p : standard_percentiles) std::fprintf(out, " p%g %.1f ", p, us(h.value_at_percentile(p)));
    std::fprintf(out, " mean %.1f\n", h.mean() / 1e3);
  }
  std::fprintf(out, "  errors: %llu\n", (unsigned long long)r.errors());
  print_map(out, "connect errors", r.connect_errors, true);
  print_map(out, "upgrades refused (HTTP status)", r.upgrade_failures, false);
  print_map(out, "closes other than 1000 (code)", r.unexpected_closes, false);
  if (r.connects_unfinished)
    std::fprintf(out, "    connections still in a cycle at the end: %llu\n", (unsigned long long)r.connects_unfinished);
  for (const std::string& w : r.warnings) std::fprintf(out, "WARNING: %s\n", w.c_str());
}

void write_handshake_json(JsonWriter& j, const Options& o, const Results& r) {
  j.key("handshake");
  j.open('{');
  j.field("tls", o.target.tls);
  j.field("completed", r.handshake.count());
  j.field("per_s", handshakes_per_s(o, r));
  std::uint64_t failed = r.connects_unfinished;
  for (const auto& [k, v] : r.connect_errors) failed += v;
  for (const auto& [k, v] : r.upgrade_failures) failed += v;
  j.field("failed", failed);
  j.counts("failed_by_errno", r.connect_errors);
  j.counts("failed_by_status", r.upgrade_failures);
  j.counts("closes_by_code", r.unexpected_closes);
  write_histogram(j, "latency", r.handshake);
  j.close('}');
}

}  // namespace ringlink::load
