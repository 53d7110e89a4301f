#include "tools/load/report.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tools/load/handshake_report.hpp"
#include "tools/load/histogram_json.hpp"
#include "tools/load/json_writer.hpp"

namespace ringlink::load {
namespace {

constexpr std::size_t max_connection_lines = 20;

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1e3; }

const char* latency_title(Mode m) {
  switch (m) {
    case Mode::echo: return "latency (round trip)";
    case Mode::rate: return "latency (round trip from the intended send time, coordinated omission corrected)";
    case Mode::push: return "latency (one way from the intended send time)";
    case Mode::idle: return "latency (ping round trip)";
  }
  return "latency";
}

void print_histogram(std::FILE* out, const char* title, const Histogram& h) {
  std::fprintf(out, "  %s, %llu samples, us:\n   ", title, (unsigned long long)h.count());
  if (h.count() == 0) {
    std::fprintf(out, " (none)\n");
    return;
  }
  for (double p : standard_percentiles) std::fprintf(out, " p%g %.1f ", p, us(h.value_at_percentile(p)));
  std::fprintf(out, " max %.1f  mean %.1f\n", us(h.max()), h.mean() / 1e3);
}


}  // namespace

void print_map(std::FILE* out, const char* title, const std::map<int, std::uint64_t>& m, bool errno_names) {
  if (m.empty()) return;
  std::fprintf(out, "    %s:", title);
  for (const auto& [k, v] : m) {
    if (errno_names) {
      std::fprintf(out, " %s (%d) x%llu", std::strerror(k), k, (unsigned long long)v);
    } else {
      std::fprintf(out, " %d x%llu", k, (unsigned long long)v);
    }
  }
  std::fprintf(out, "\n");
}

void print_report(std::FILE* out, const Options& o, const Results& r) {
  if (o.handshakes) return print_handshake_report(out, o, r);
  std::fprintf(out, "ringlink-load: %s mode, %s, %u connections on ", to_string(o.mode), o.url.c_str(), o.conns);
  if (o.processes > 1) std::fprintf(out, "%u processes x ", o.processes);
  std::fprintf(out, "%u thread%s, ", o.threads, o.threads == 1 ? "" : "s");
  if (o.mode != Mode::idle) {
    if (o.size_min == o.size_max) std::fprintf(out, "%u B ", o.size_min); else std::fprintf(out, "%u-%u B ", o.size_min, o.size_max);
    std::fprintf(out, "%s", o.text ? "text" : "binary");
  }
  if (o.mode == Mode::echo) std::fprintf(out, ", %u in flight per connection", o.inflight);
  if (o.mode == Mode::rate || o.mode == Mode::push) std::fprintf(out, ", target %.0f msgs/s", o.rate);
  if (o.mode == Mode::idle) std::fprintf(out, "pings every %u ms", o.ping_interval_ms);
  std::fprintf(out, "\n");
  std::fprintf(out, "  connections: %u of %u opened in %.2f s; %u open at the end\n", r.conns_opened, r.conns_requested, r.ramp_s,
               r.conns_open_at_end);
  print_handshake_line(out, o, r);
  if (!r.deflate.empty()) std::fprintf(out, "  compression: %s; payload %s\n", r.deflate.c_str(), to_string(o.payload));
  const double s = r.measured_s > 0 ? r.measured_s : 1;
  std::fprintf(out, "  measured %.2f s: received %llu msgs (%.0f msgs/s, %.2f MB/s), sent %llu msgs (%.0f msgs/s, %.2f MB/s)\n",
               r.measured_s, (unsigned long long)r.msgs_received, static_cast<double>(r.msgs_received) / s,
               static_cast<double>(r.bytes_received) / s / 1e6, (unsigned long long)r.msgs_sent,
               static_cast<double>(r.msgs_sent) / s, static_cast<double>(r.bytes_sent) / s / 1e6);
  print_histogram(out, latency_title(o.mode), r.latency);
  if (o.mode == Mode::rate || (o.mode == Mode::push && o.rate > 0)) {
    print_histogram(out, "latency from the actual send (uncorrected)", r.latency_uncorrected);
    print_histogram(out, "send lag behind schedule (the tool's own)", r.send_lag);
  }
  if (o.mode == Mode::push && o.rate <= 0 && r.foreign > 0)
    std::fprintf(out, "  %llu messages without a ringlink-load header (counted, not checked)\n", (unsigned long long)r.foreign);
  std::fprintf(out, "  backpressure: %llu sends refused, %llu ms blocked in total, %llu partial writes\n",
               (unsigned long long)r.backpressured_sends, (unsigned long long)r.blocked_ms, (unsigned long long)r.partial_writes);
  std::fprintf(out, "  fairness, messages per connection: min %llu, median %llu, max %llu\n", (unsigned long long)r.fairness_min,
               (unsigned long long)r.fairness_median, (unsigned long long)r.fairness_max);
  std::fprintf(out, "  cpu:");
  for (std::size_t i = 0; i < r.threads.size(); ++i) {
    if (r.threads[i].cpu_percent < 0) {
      std::fprintf(out, " thread %zu -", i);
    } else if (r.threads[i].busiest_second_percent < 0) {  // the window was shorter than two samples
      std::fprintf(out, " thread %zu %.0f%%", i, r.threads[i].cpu_percent);
    } else {
      std::fprintf(out, " thread %zu %.0f%% (busiest second %.0f%%)", i, r.threads[i].cpu_percent,
                   r.threads[i].busiest_second_percent);
    }
  }
  std::fprintf(out, "; process %.0f%%\n", r.process_cpu_percent);

  std::fprintf(out, "  errors: %llu\n", (unsigned long long)r.errors());
  print_map(out, "connect errors", r.connect_errors, true);
  print_map(out, "upgrades refused (HTTP status)", r.upgrade_failures, false);
  print_map(out, "unexpected closes (code)", r.unexpected_closes, false);
  if (r.connects_unfinished) std::fprintf(out, "    connections neither opened nor failed: %llu\n", (unsigned long long)r.connects_unfinished);
  if (r.mismatches() || r.send_failures) {
    std::fprintf(out, "    mismatches:");
    for (std::size_t i = 1; i < r.corrupt.size(); ++i)
      if (r.corrupt[i]) std::fprintf(out, " %s %llu", to_string(static_cast<MessageCheck>(i)), (unsigned long long)r.corrupt[i]);
    if (r.wrong_connection) std::fprintf(out, " wrong_connection %llu", (unsigned long long)r.wrong_connection);
    if (r.wrong_opcode) std::fprintf(out, " wrong_opcode %llu", (unsigned long long)r.wrong_opcode);
    if (r.never_sent) std::fprintf(out, " never_sent %llu", (unsigned long long)r.never_sent);
    if (r.bad_pongs) std::fprintf(out, " bad_pong %llu", (unsigned long long)r.bad_pongs);
    if (r.send_failures) std::fprintf(out, " send_failures %llu", (unsigned long long)r.send_failures);
    std::fprintf(out, "\n");
  }
  if (r.lost || r.duplicates || r.reordered || r.unanswered || r.pongs_missing)
    std::fprintf(out, "    messages: lost %llu, duplicated %llu, reordered %llu, unanswered %llu, pongs missing %llu\n",
                 (unsigned long long)r.lost, (unsigned long long)r.duplicates, (unsigned long long)r.reordered,
                 (unsigned long long)r.unanswered, (unsigned long long)r.pongs_missing);
  std::size_t shown = 0, troubled = 0;
  for (const ConnResult& c : r.conns) {
    const bool bad = c.lost || c.duplicates || c.reordered || c.unanswered || c.mismatches || c.unexpected_close;
    if (!bad) continue;
    ++troubled;
    if (shown++ >= max_connection_lines) continue;
    std::fprintf(out, "    conn %u: lost %llu, duplicated %llu, reordered %llu, unanswered %llu, mismatches %llu", c.index,
                 (unsigned long long)c.lost, (unsigned long long)c.duplicates, (unsigned long long)c.reordered,
                 (unsigned long long)c.unanswered, (unsigned long long)c.mismatches);
    if (c.unexpected_close) std::fprintf(out, ", closed early with %u", c.unexpected_close);
    std::fprintf(out, "\n");
  }
  if (troubled > max_connection_lines)
    std::fprintf(out, "    ... %zu more connections with problems (see --json)\n", troubled - max_connection_lines);
  if (o.mode == Mode::idle) {
    std::fprintf(out, "  idle: %u of %u connections survived; %llu pings sent\n", r.conns_open_at_end, r.conns_requested,
                 (unsigned long long)r.pings);
  }
  for (const std::string& w : r.warnings) std::fprintf(out, "WARNING: %s\n", w.c_str());
}

bool write_json(const std::string& path, const Options& o, const Results& r, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  JsonWriter j(f);
  j.open('{');
  j.key("options");
  j.open('{');
  j.field("url", o.url);
  j.field("mode", to_string(o.mode));
  j.field("conns", std::uint64_t{o.conns});
  j.field("connect_rate", o.connect_rate);
  j.field("threads", std::uint64_t{o.threads});
  j.field("processes", std::uint64_t{o.processes});
  j.field("source_ips", std::uint64_t{o.sources.size()});
  j.field("inflight", std::uint64_t{o.inflight});
  j.field("rate", o.rate);
  j.field("ping_interval_ms", std::uint64_t{o.ping_interval_ms});
  j.field("size_min", std::uint64_t{o.size_min});
  j.field("size_max", std::uint64_t{o.size_max});
  j.field("text", o.text);
  j.field("duration_s", o.duration_s);
  j.field("warmup_s", o.warmup_s);
  j.field("grace_s", o.grace_s);
  j.field("max_errors", o.max_errors);
  j.field("handshakes", o.handshakes);
  j.close('}');

  j.field("errors", r.errors());
  j.field("failed", r.errors() > o.max_errors);
  j.field("measured_s", r.measured_s);
  j.field("ramp_s", r.ramp_s);
  write_handshake_json(j, o, r);
  j.field("payload", to_string(o.payload));
  if (!r.deflate.empty()) j.field("deflate", r.deflate);
  j.key("connections");
  j.open('{');
  j.field("requested", std::uint64_t{r.conns_requested});
  j.field("opened", std::uint64_t{r.conns_opened});
  j.field("open_at_end", std::uint64_t{r.conns_open_at_end});
  j.field("unfinished", r.connects_unfinished);
  j.counts("connect_errors_by_errno", r.connect_errors);
  j.counts("upgrade_failures_by_status", r.upgrade_failures);
  j.counts("unexpected_closes_by_code", r.unexpected_closes);
  j.close('}');
  j.key("throughput");
  j.open('{');
  const double s = r.measured_s > 0 ? r.measured_s : 1;
  j.field("msgs_received", r.msgs_received);
  j.field("msgs_sent", r.msgs_sent);
  j.field("bytes_received", r.bytes_received);
  j.field("bytes_sent", r.bytes_sent);
  j.field("msgs_per_s", static_cast<double>(r.msgs_received) / s);
  j.field("sent_msgs_per_s", static_cast<double>(r.msgs_sent) / s);
  j.field("mb_per_s", static_cast<double>(r.bytes_received) / s / 1e6);
  j.field("sent_mb_per_s", static_cast<double>(r.bytes_sent) / s / 1e6);
  j.field("total_received", r.total_received);
  j.field("total_sent", r.total_sent);
  j.close('}');
  write_histogram(j, "latency", r.latency);
  if (o.mode == Mode::rate || o.mode == Mode::push) {
    write_histogram(j, "latency_uncorrected", r.latency_uncorrected);
    write_histogram(j, "send_lag", r.send_lag);
  }
  j.key("checks");
  j.open('{');
  for (std::size_t i = 1; i < r.corrupt.size(); ++i) j.field(to_string(static_cast<MessageCheck>(i)), r.corrupt[i]);
  j.field("wrong_connection", r.wrong_connection);
  j.field("wrong_opcode", r.wrong_opcode);
  j.field("never_sent", r.never_sent);
  j.field("bad_pongs", r.bad_pongs);
  j.field("send_failures", r.send_failures);
  j.field("foreign", r.foreign);
  j.field("lost", r.lost);
  j.field("duplicates", r.duplicates);
  j.field("reordered", r.reordered);
  j.field("unanswered", r.unanswered);
  j.field("pings", r.pings);
  j.field("pongs_missing", r.pongs_missing);
  j.close('}');
  j.key("backpressure");
  j.open('{');
  j.field("refused_sends", r.backpressured_sends);
  j.field("blocked_ms", r.blocked_ms);
  j.field("partial_writes", r.partial_writes);
  j.close('}');
  j.key("fairness");
  j.open('{');
  j.field("min", r.fairness_min);
  j.field("median", r.fairness_median);
  j.field("max", r.fairness_max);
  j.close('}');
  j.key("cpu");
  j.open('{');
  j.field("process_percent", r.process_cpu_percent);
  j.key("threads");
  j.open('[');
  for (const ThreadResult& t : r.threads) {
    j.open('{');
    j.field("percent", t.cpu_percent);
    j.field("busiest_second_percent", t.busiest_second_percent);
    j.close('}');
  }
  j.close(']');
  j.close('}');
  j.field("self_saturated", r.self_saturated);
  j.key("warnings");
  j.open('[');
  for (const std::string& w : r.warnings) j.value(w);
  j.close(']');
  j.key("per_connection");
  j.open('[');
  for (const ConnResult& c : r.conns) {
    j.open('{');
    j.field("index", std::uint64_t{c.index});
    j.field("opened", c.opened);
    j.field("open_at_end", c.open_at_end);
    j.field("unexpected_close", std::uint64_t{c.unexpected_close});
    j.field("sent", c.sent);
    j.field("received", c.received);
    j.field("measured", c.measured);
    j.field("lost", c.lost);
    j.field("duplicates", c.duplicates);
    j.field("reordered", c.reordered);
    j.field("unanswered", c.unanswered);
    j.field("mismatches", c.mismatches);
    if (o.mode == Mode::idle) {
      j.field("pings", c.pings);
      j.field("pongs", c.pongs);
    }
    j.close('}');
  }
  j.close(']');
  j.close('}');
  std::fputc('\n', f);
  const bool ok = std::ferror(f) == 0;
  if (std::fclose(f) != 0 || !ok) {
    error = "writing " + path + " failed";
    return false;
  }
  return true;
}

bool write_plot(const std::string& png_path, const Options& o, const Results& r, std::string& message) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    message = "--plot needs gnuplot, which is not installed (e.g. apt-get install gnuplot-nox); the figures are in the report" +
              std::string(o.json_path.empty() ? "" : " and in " + o.json_path);
    return false;
  }
  if (r.latency.count() == 0) {
    message = "no latency samples to plot";
    return false;
  }
  char data_path[] = "/tmp/ringlink-load-plot-XXXXXX";
  const int fd = ::mkstemp(data_path);
  if (fd < 0) {
    message = std::string("cannot create a temporary file: ") + std::strerror(errno);
    return false;
  }
  std::FILE* data = ::fdopen(fd, "w");
  // x is 1/(1-p), so the tail gets the room: 90 % at 10, 99.9 % at 1000.
  auto series = [&](const Histogram& h) {
    for (double p : distribution_percentiles()) {
      if (p >= 100.0) continue;
      std::fprintf(data, "%.6f %.3f\n", 1.0 / (1.0 - p / 100.0), us(h.value_at_percentile(p)));
    }
    std::fprintf(data, "\n\n");
  };
  series(r.latency);
  const bool two = (o.mode == Mode::rate || o.mode == Mode::push) && r.latency_uncorrected.count() > 0;
  if (two) series(r.latency_uncorrected);
  std::fclose(data);

  std::string quoted_png;
  for (char c : png_path) {
    if (c == '"' || c == '\\') quoted_png += '\\';
    quoted_png += c;
  }
  std::FILE* gp = ::popen("gnuplot", "w");
  if (gp == nullptr) {
    ::unlink(data_path);
    message = "cannot run gnuplot";
    return false;
  }
  std::fprintf(gp,
               "set terminal png size 1000,600\n"
               "set output \"%s\"\n"
               "set title \"ringlink-load %s: latency by percentile\"\n"
               "set logscale x\n"
               // Tic labels are gnuplot format strings: a literal % is %% there.
               "set xtics (\"0%%%%\" 1, \"90%%%%\" 10, \"99%%%%\" 100, \"99.9%%%%\" 1000, \"99.99%%%%\" 10000, \"99.999%%%%\" 100000)\n"
               "set xlabel \"percentile\"\n"
               "set ylabel \"latency (us)\"\n"
               "set grid\n"
               "set key top left\n",
               quoted_png.c_str(), to_string(o.mode));
  if (two) {
    std::fprintf(gp, "plot \"%s\" index 0 with lines lw 2 title \"corrected\", \"%s\" index 1 with lines lw 2 title \"uncorrected\"\n",
                 data_path, data_path);
  } else {
    std::fprintf(gp, "plot \"%s\" index 0 with lines lw 2 title \"latency\"\n", data_path);
  }
  const int status = ::pclose(gp);
  ::unlink(data_path);
  if (status != 0) {
    message = "gnuplot failed to draw " + png_path;
    return false;
  }
  message = "plot written to " + png_path;
  return true;
}

}  // namespace ringlink::load
