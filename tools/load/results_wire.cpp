#include "tools/load/results_wire.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

namespace ringlink::load {

namespace {

static_assert(std::is_trivially_copyable_v<ConnResult> && std::is_trivially_copyable_v<ThreadResult>);

// Same binary on both ends of the pipe (a fork), so plain native layout.
class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out_.insert(out_.end(), p, p + sizeof v);
  }
  template <class T>
  void pods(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    out_.insert(out_.end(), p, p + v.size() * sizeof(T));
  }
  void text(const std::string& s) {
    pod<std::uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_.insert(out_.end(), p, p + s.size());
  }
  void map(const std::map<int, std::uint64_t>& m) {
    pod<std::uint64_t>(m.size());
    for (const auto& [k, v] : m) {
      pod(k);
      pod(v);
    }
  }
  void histogram(const Histogram& h) {
    const auto counts = h.counts();
    std::uint64_t used = 0;
    for (std::uint64_t c : counts) used += c != 0 ? 1 : 0;
    pod(used);
    for (std::size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] == 0) continue;
      pod<std::uint64_t>(i);
      pod(counts[i]);
    }
    pod(h.totals());
  }

 private:
  std::vector<std::byte>& out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  bool ok() const noexcept { return ok_ && at_ == in_.size(); }
  template <class T>
  T pod() {
    T v{};
    if (!ok_ || in_.size() - at_ < sizeof v) {
      ok_ = false;
      return v;
    }
    std::memcpy(static_cast<void*>(&v), in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  template <class T>
  void pods(std::vector<T>& v) {
    const auto n = pod<std::uint64_t>();
    if (!ok_ || n > (in_.size() - at_) / sizeof(T)) {
      ok_ = false;
      return;
    }
    v.resize(n);
    std::memcpy(static_cast<void*>(v.data()), in_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
  }
  void text(std::string& s) {
    std::vector<char> chars;
    pods(chars);
    s.assign(chars.begin(), chars.end());
  }
  void map(std::map<int, std::uint64_t>& m) {
    const auto n = pod<std::uint64_t>();
    for (std::uint64_t i = 0; ok_ && i < n; ++i) {
      const int k = pod<int>();
      m[k] += pod<std::uint64_t>();
    }
  }
  void histogram(Histogram& h) {
    const auto n = pod<std::uint64_t>();
    for (std::uint64_t i = 0; ok_ && i < n; ++i) {
      const auto index = pod<std::uint64_t>();
      h.add_bucket(static_cast<std::size_t>(index), pod<std::uint64_t>());
    }
    h.add_totals(pod<Histogram::Totals>());
  }

 private:
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

// Every field of Results but the histograms, the maps, the vectors and the
// strings, in one order for both directions.
template <class F>
void each_number(Results& r, F&& f) {
  f(r.measured_s);
  f(r.ramp_s);
  f(r.msgs_sent);
  f(r.msgs_received);
  f(r.bytes_sent);
  f(r.bytes_received);
  f(r.total_sent);
  f(r.total_received);
  f(r.conns_requested);
  f(r.conns_opened);
  f(r.conns_open_at_end);
  f(r.connects_unfinished);
  f(r.corrupt);
  f(r.wrong_connection);
  f(r.wrong_opcode);
  f(r.never_sent);
  f(r.bad_pongs);
  f(r.send_failures);
  f(r.foreign);
  f(r.duplicates);
  f(r.reordered);
  f(r.lost);
  f(r.unanswered);
  f(r.pings);
  f(r.pongs_missing);
  f(r.backpressured_sends);
  f(r.blocked_ms);
  f(r.partial_writes);
  f(r.process_cpu_percent);
  f(r.fairness_min);
  f(r.fairness_median);
  f(r.fairness_max);
  f(r.self_saturated);
}

}  // namespace

void encode_results(const Results& r, std::vector<std::byte>& out) {
  Writer w(out);
  each_number(const_cast<Results&>(r), [&](auto& v) { w.pod(v); });
  w.text(r.deflate);
  w.histogram(r.latency);
  w.histogram(r.latency_uncorrected);
  w.histogram(r.send_lag);
  w.histogram(r.handshake);
  w.map(r.connect_errors);
  w.map(r.upgrade_failures);
  w.map(r.unexpected_closes);
  w.pods(r.conns);
  w.pods(r.threads);
  w.pod<std::uint64_t>(r.warnings.size());
  for (const std::string& s : r.warnings) w.text(s);
}

bool decode_results(std::span<const std::byte> in, Results& out) {
  Reader rd(in);
  each_number(out, [&](auto& v) { v = rd.pod<std::remove_reference_t<decltype(v)>>(); });
  rd.text(out.deflate);
  rd.histogram(out.latency);
  rd.histogram(out.latency_uncorrected);
  rd.histogram(out.send_lag);
  rd.histogram(out.handshake);
  rd.map(out.connect_errors);
  rd.map(out.upgrade_failures);
  rd.map(out.unexpected_closes);
  rd.pods(out.conns);
  rd.pods(out.threads);
  const auto n = rd.pod<std::uint64_t>();
  for (std::uint64_t i = 0; i < n && i < 4096; ++i) rd.text(out.warnings.emplace_back());
  return rd.ok();
}

void encode_progress(const ProgressSample& s, std::vector<std::byte>& out) {
  Writer w(out);
  w.pod(s.elapsed_s);
  w.pod(s.up);
  w.pod(s.msgs);
  w.pod(s.errors);
  w.pod(s.phase);
  w.pods(s.live);
}

bool decode_progress(std::span<const std::byte> in, ProgressSample& out) {
  Reader rd(in);
  out.elapsed_s = rd.pod<double>();
  out.up = rd.pod<std::uint64_t>();
  out.msgs = rd.pod<std::uint64_t>();
  out.errors = rd.pod<std::uint64_t>();
  out.phase = rd.pod<std::uint32_t>();
  rd.pods(out.live);
  return rd.ok();
}

void merge_results(Results& total, const Results& part) {
  const double measured = std::max(total.measured_s, part.measured_s);
  const double ramp = std::max(total.ramp_s, part.ramp_s);
  const bool saturated = total.self_saturated || part.self_saturated;
  const std::uint32_t offset = static_cast<std::uint32_t>(total.conns.size());
  // Everything else is a count, or a CPU share that adds up over processes.
  for (std::size_t i = 0; i < total.corrupt.size(); ++i) total.corrupt[i] += part.corrupt[i];
  auto add = [](auto& a, const auto& b) { a += b; };
  add(total.msgs_sent, part.msgs_sent);
  add(total.msgs_received, part.msgs_received);
  add(total.bytes_sent, part.bytes_sent);
  add(total.bytes_received, part.bytes_received);
  add(total.total_sent, part.total_sent);
  add(total.total_received, part.total_received);
  add(total.conns_requested, part.conns_requested);
  add(total.conns_opened, part.conns_opened);
  add(total.conns_open_at_end, part.conns_open_at_end);
  add(total.connects_unfinished, part.connects_unfinished);
  add(total.wrong_connection, part.wrong_connection);
  add(total.wrong_opcode, part.wrong_opcode);
  add(total.never_sent, part.never_sent);
  add(total.bad_pongs, part.bad_pongs);
  add(total.send_failures, part.send_failures);
  add(total.foreign, part.foreign);
  add(total.duplicates, part.duplicates);
  add(total.reordered, part.reordered);
  add(total.lost, part.lost);
  add(total.unanswered, part.unanswered);
  add(total.pings, part.pings);
  add(total.pongs_missing, part.pongs_missing);
  add(total.backpressured_sends, part.backpressured_sends);
  add(total.blocked_ms, part.blocked_ms);
  add(total.partial_writes, part.partial_writes);
  add(total.process_cpu_percent, part.process_cpu_percent);
  total.measured_s = measured;
  total.ramp_s = ramp;
  total.self_saturated = saturated;
  if (total.deflate.empty()) total.deflate = part.deflate;
  part.latency.merge_into(total.latency);
  part.latency_uncorrected.merge_into(total.latency_uncorrected);
  part.send_lag.merge_into(total.send_lag);
  part.handshake.merge_into(total.handshake);
  for (const auto& [k, v] : part.connect_errors) total.connect_errors[k] += v;
  for (const auto& [k, v] : part.upgrade_failures) total.upgrade_failures[k] += v;
  for (const auto& [k, v] : part.unexpected_closes) total.unexpected_closes[k] += v;
  for (ConnResult c : part.conns) {
    c.index += offset;
    total.conns.push_back(c);
  }
  total.threads.insert(total.threads.end(), part.threads.begin(), part.threads.end());
  total.warnings.insert(total.warnings.end(), part.warnings.begin(), part.warnings.end());
}

void finish_merge(Results& total) {
  std::vector<std::uint64_t> measured;
  for (const ConnResult& c : total.conns)
    if (c.opened) measured.push_back(c.measured);
  total.fairness_min = total.fairness_median = total.fairness_max = 0;
  if (measured.empty()) return;
  std::sort(measured.begin(), measured.end());
  total.fairness_min = measured.front();
  total.fairness_median = measured[measured.size() / 2];
  total.fairness_max = measured.back();
}

}  // namespace ringlink::load
