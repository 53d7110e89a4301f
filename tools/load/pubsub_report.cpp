// ringlink-load --pubsub: its flags, its checks of the rest of the command
// line, its text report and its --json.
#include <charconv>
#include <cmath>

#include "tools/load/histogram_json.hpp"
#include "tools/load/json_writer.hpp"
#include "tools/load/pubsub.hpp"
#include "tools/load/pubsub_options.hpp"

namespace ringlink::load {
namespace {

bool parse_count(std::string_view s, std::uint32_t& out, std::uint32_t max) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > max) return false;
  out = v;
  return true;
}

constexpr std::uint32_t max_links = 1'000'000;
constexpr std::uint32_t max_topics = 100'000;      // ServerConfig::max_topics' default
constexpr std::uint64_t max_streams = 10'000'000;  // 48 bytes each: 480 MB

}  // namespace

PubsubParse parse_pubsub_option(std::string_view flag, std::string_view value, PubsubOptions& out, std::string& error) {
  auto bad = [&](const char* what) {
    error = "bad value '" + std::string(value) + "' for " + std::string(flag) + ": " + what;
    return PubsubParse::error;
  };
  if (flag == "--subs") {
    if (!parse_count(value, out.subscribers, max_links)) return bad("1 to 1000000");
  } else if (flag == "--pubs") {
    if (!parse_count(value, out.publishers, max_links)) return bad("1 to 1000000");
  } else if (flag == "--topics") {
    if (!parse_count(value, out.topics, max_topics)) return bad("1 to 100000");
  } else if (flag == "--sub-topics") {
    if (!parse_count(value, out.topics_per_sub, 1024)) return bad("1 to 1024 (max_topics_per_link)");
  } else if (flag == "--pub-nodes") {
    if (!parse_count(value, out.pub_nodes, 1024)) return bad("1 to the URLs given - 1");
  } else if (flag == "--subscribe-with") {
    if (value == "path") out.subscribe_with = SubscribeWith::path;
    else if (value == "message") out.subscribe_with = SubscribeWith::message;
    else return bad("path or message");
  } else if (flag == "--confirm-timeout") {
    if (!parse_duration(value, out.confirm_timeout_s) || out.confirm_timeout_s <= 0 || out.confirm_timeout_s > 600)
      return bad("a duration > 0, up to 10m");
  } else {
    return PubsubParse::not_mine;
  }
  out.flags_seen = true;
  return PubsubParse::ok;
}

const char* pubsub_usage_text() noexcept {
  return "pubsub (against ringlink-echo --pubsub, docs/pubsub.md):\n"
         "  ringlink-load --pubsub ws://NODE1/ [ws://NODE2/ ...] --rate M [options]\n"
         "  --pubsub             S subscribers and P publishers over T topics (t0, t1, ...), links\n"
         "                       spread round robin over the URLs; --rate M publications/s in total\n"
         "  --subs S             subscribers (default 1); subscriber i is on URL i % N\n"
         "  --pubs P             publishers (default 1); publisher j is on URL j % N and\n"
         "                       publishes round robin over every topic\n"
         "  --topics T           topics (default 1)\n"
         "  --sub-topics K       topics per subscriber: (i*K + k) % T (default 1)\n"
         "  --pub-nodes K        publishers on the last K URLs only, subscribers on the others:\n"
         "                       every delivery crosses nodes (default: both round robin over all)\n"
         "  --subscribe-with H   path (default: /?sub=t1,t2) or message (SUB <topic>)\n"
         "  --confirm-timeout D  wait this long for a warm-up publication on every stream\n"
         "                       before publishing (default 10s)\n"
         "  --grace D            the drain: wait up to D for deliveries in flight, then count\n"
         "                       every missing one as lost\n"
         "  Reports publish-to-receive latency, deliveries/s, and the deliveries expected, lost,\n"
         "  duplicated and reordered, tracked per subscriber per publisher per topic.\n"
         "  Also: --duration, --threads, --connect-rate, --json, --max-errors, --progress, --ca, --insecure.\n"
         "  Not with --processes (refused: the latency needs one clock and the streams one owner).\n";
}

bool check_pubsub_options(const Options& o, std::string& error) {
  const PubsubOptions& p = o.pubsub;
  if (!p.enabled) {
    if (p.flags_seen) error = "--subs, --pubs, --topics, --sub-topics, --pub-nodes, --subscribe-with and --confirm-timeout need --pubsub";
    else if (!p.urls.empty() && p.urls.size() > 1) error = "unexpected argument '" + p.urls[1] + "' (several URLs need --pubsub)";
    return error.empty();
  }
  if (o.processes > 1) {
    error = "--processes does not apply to --pubsub (publish-to-receive latency needs one clock, and each stream one counter)";
    return false;
  }
  if (o.mode != Mode::echo || o.conns != 1) {
    error = "--pubsub is a mode of its own: drop --mode and --conns (use --subs and --pubs)";
    return false;
  }
  if (!o.plot_path.empty() || o.warmup_s > 0 || o.deflate || !o.sources.empty()) {
    error = "--plot, --warmup, --deflate and --source-ips do not apply to --pubsub";
    return false;
  }
  if (o.rate <= 0) {
    error = "--pubsub needs --rate M (publications per second in total, > 0)";
    return false;
  }
  if (p.pub_nodes >= p.urls.size() && p.pub_nodes > 0) {
    error = "--pub-nodes must leave at least one URL for the subscribers";
    return false;
  }
  if (p.topics_per_sub > p.topics) {
    error = "--sub-topics above --topics";
    return false;
  }
  if (static_cast<std::uint64_t>(p.subscribers) * p.publishers * p.topics_per_sub > max_streams) {
    error = "--subs x --pubs x --sub-topics above 10000000 streams (48 bytes each)";
    return false;
  }
  for (const std::string& url : p.urls) {
    Target t;
    if (!parse_url(url, t, error)) return false;
    if (t.tls != o.target.tls) {
      error = "mixed ws:// and wss:// URLs";
      return false;
    }
  }
  return true;
}

void print_pubsub_report(std::FILE* out, const Options& o, const PubsubResults& r) {
  const PubsubOptions& p = o.pubsub;
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  std::fprintf(out, "pubsub: %u nodes, %u/%u subscribers up, %u/%u publishers up, %u topics, %u per subscriber\n", r.nodes,
               r.subscribers_opened, p.subscribers, r.publishers_opened, p.publishers, p.topics, p.topics_per_sub);
  for (std::size_t i = 0; i < p.urls.size(); ++i)
    std::fprintf(out, "  node %s%s\n", p.urls[i].c_str(),
                 p.pub_nodes == 0 ? "" : i + p.pub_nodes >= p.urls.size() ? " (publishers)" : " (subscribers)");
  std::fprintf(out, "confirmed:   %llu/%llu streams in %.2f s\n", (unsigned long long)r.streams_confirmed,
               (unsigned long long)r.streams, r.confirm_s);
  std::fprintf(out, "published:   %llu in %.2f s (%.1f/s, asked %.1f/s), skipped for backpressure %llu\n",
               (unsigned long long)r.published, r.publish_s, r.publish_s > 0 ? static_cast<double>(r.published) / r.publish_s : 0.0,
               o.rate, (unsigned long long)r.publish_backpressured);
  std::fprintf(out, "deliveries:  expected %llu, delivered %llu (%.1f/s), drain %.2f s\n", (unsigned long long)r.expected,
               (unsigned long long)r.delivered, r.publish_s > 0 ? static_cast<double>(r.delivered) / r.publish_s : 0.0, r.drain_s);
  std::fprintf(out, "lost %llu  duplicated %llu  reordered %llu  malformed %llu  other messages %llu\n",
               (unsigned long long)r.lost, (unsigned long long)r.duplicates, (unsigned long long)r.reordered,
               (unsigned long long)r.malformed, (unsigned long long)r.foreign);
  std::fprintf(out, "publish-to-receive (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%llu samples)\n",
               us(r.latency.value_at_percentile(50)), us(r.latency.value_at_percentile(90)),
               us(r.latency.value_at_percentile(99)), us(r.latency.value_at_percentile(99.9)), us(r.latency.max()),
               (unsigned long long)r.latency.count());
  for (const auto& [what, m] : {std::pair{"connect errors (errno)", &r.connect_errors},
                                std::pair{"upgrade refused (HTTP status)", &r.upgrade_failures},
                                std::pair{"closed early (close code)", &r.unexpected_closes}}) {
    if (m->empty()) continue;
    std::fprintf(out, "%s:", what);
    for (const auto& [k, v] : *m) std::fprintf(out, " %d x%llu", k, (unsigned long long)v);
    std::fputc('\n', out);
  }
  if (r.connects_unfinished > 0) std::fprintf(out, "connections unfinished: %llu\n", (unsigned long long)r.connects_unfinished);
  for (const std::string& w : r.warnings) std::fprintf(out, "warning: %s\n", w.c_str());
  std::fprintf(out, "errors: %llu\n", (unsigned long long)r.errors());
}

bool write_pubsub_json(const std::string& path, const Options& o, const PubsubResults& r, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    error = "cannot write " + path;
    return false;
  }
  const PubsubOptions& p = o.pubsub;
  JsonWriter j(f);
  j.open('{');
  j.field("mode", "pubsub");
  j.key("nodes");
  j.open('[');
  for (const std::string& url : p.urls) j.value(url);
  j.close(']');
  j.field("subscribers", std::uint64_t{p.subscribers});
  j.field("subscribers_opened", std::uint64_t{r.subscribers_opened});
  j.field("publishers", std::uint64_t{p.publishers});
  j.field("publishers_opened", std::uint64_t{r.publishers_opened});
  j.field("topics", std::uint64_t{p.topics});
  j.field("topics_per_subscriber", std::uint64_t{p.topics_per_sub});
  j.field("pub_nodes", std::uint64_t{p.pub_nodes});
  j.field("rate_asked", o.rate);
  j.field("streams", r.streams);
  j.field("streams_confirmed", r.streams_confirmed);
  j.field("confirm_s", r.confirm_s);
  j.field("publish_s", r.publish_s);
  j.field("drain_s", r.drain_s);
  j.field("published", r.published);
  j.field("publish_backpressured", r.publish_backpressured);
  j.field("expected", r.expected);
  j.field("delivered", r.delivered);
  j.field("deliveries_per_s", r.publish_s > 0 ? static_cast<double>(r.delivered) / r.publish_s : 0.0);
  j.field("lost", r.lost);
  j.field("duplicates", r.duplicates);
  j.field("reordered", r.reordered);
  j.field("malformed", r.malformed);
  j.field("other_messages", r.foreign);
  j.field("connects_unfinished", r.connects_unfinished);
  j.counts("connect_errors", r.connect_errors);
  j.counts("upgrade_failures", r.upgrade_failures);
  j.counts("unexpected_closes", r.unexpected_closes);
  j.field("errors", r.errors());
  write_histogram(j, "latency", r.latency);
  j.key("warnings");
  j.open('[');
  for (const std::string& w : r.warnings) j.value(w);
  j.close(']');
  j.close('}');
  std::fputc('\n', f);
  const bool ok = std::fclose(f) == 0;
  if (!ok) error = "cannot write " + path;
  return ok;
}

}  // namespace ringlink::load
