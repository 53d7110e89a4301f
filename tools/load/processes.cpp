#include "tools/load/processes.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "tools/common/process_group.hpp"
#include "tools/load/histogram.hpp"
#include "tools/load/results_wire.hpp"
#include "tools/load/runner.hpp"

namespace ringlink::load {

namespace {

using ringlink::tools::Frame;
using ringlink::tools::ProcessGroup;

enum FrameType : std::uint32_t { frame_progress = 1, frame_results = 2, frame_error = 3 };

// The longest a child may take: its ramp, the handshake and close timeouts
// (tools/load/runner.cpp), the timeline, and a margin. Past it the child is
// killed: a hang must not outlive the test.
double child_budget_s(const Options& c) {
  const double ramp = c.connect_rate > 0 ? c.conns / c.connect_rate : 0;
  return ramp + 12 + c.warmup_s + c.duration_s + c.grace_s + 6 + 30;
}

}  // namespace

Options child_options(const Options& o, unsigned index, unsigned processes) {
  Options c = o;
  c.processes = 1;
  c.conns = o.conns / processes + (index < o.conns % processes ? 1 : 0);
  c.connect_rate = o.connect_rate / processes;
  if (o.mode == Mode::rate) c.rate = o.rate * c.conns / o.conns;  // the same rate per link as one process
  c.json_path.clear();
  c.plot_path.clear();
  return c;
}

bool run_load_processes(const Options& o, bool progress, Results& out, std::string& error) {
  const unsigned n = o.processes;
  std::vector<Options> plans;
  double budget = 0;
  for (unsigned i = 0; i < n; ++i) {
    plans.push_back(child_options(o, i, n));
    budget = std::max(budget, child_budget_s(plans.back()));
  }
  ProcessGroup group;
  const bool spawned = group.spawn(n, [&](unsigned i, int fd) {
    std::vector<std::byte> bytes;
    const ProgressSink sink = [&](const ProgressSample& s) {
      bytes.clear();
      encode_progress(s, bytes);
      (void)ringlink::tools::write_frame(fd, frame_progress, bytes);
    };
    Results r;
    std::string why;
    if (!run_load(plans[i], false, r, why, sink)) {
      (void)ringlink::tools::write_frame(fd, frame_error, std::as_bytes(std::span<const char>(why)));
      return 3;
    }
    bytes.clear();
    encode_results(r, bytes);
    return ringlink::tools::write_frame(fd, frame_results, bytes) ? 0 : 3;
  }, error);
  if (!spawned) return false;

  std::vector<ProgressSample> latest(n);
  std::vector<bool> have_results(n, false);
  std::vector<Results> parts(n);
  std::vector<std::string> errors(n);
  std::uint64_t last_msgs = 0;
  std::vector<std::uint64_t> last_live;
  const auto start = std::chrono::steady_clock::now();
  auto next_line = start + std::chrono::seconds(1);
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(budget));
  std::vector<Frame> frames;
  auto take = [&] {
    for (Frame& f : frames) {
      if (f.type == frame_progress) {
        ProgressSample s;
        if (decode_progress(f.payload, s)) latest[f.child] = std::move(s);
      } else if (f.type == frame_results) {
        have_results[f.child] = decode_results(f.payload, parts[f.child]);
        if (!have_results[f.child]) errors[f.child] = "malformed results";
      } else if (f.type == frame_error) {
        errors[f.child].assign(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
      }
    }
    frames.clear();
  };
  bool overran = false;
  for (;;) {
    group.poll(100, frames);
    take();
    (void)group.reap();
    bool done = true;
    for (unsigned i = 0; i < n; ++i) done = done && group.child(i).exited;
    if (done) break;
    const auto now = std::chrono::steady_clock::now();
    if (progress && now >= next_line) {
      next_line += std::chrono::seconds(1);
      ProgressSample whole;
      whole.phase = 2;
      for (const ProgressSample& s : latest) {
        whole.up += s.up;
        whole.msgs += s.msgs;
        whole.errors += s.errors;
        whole.phase = std::min(whole.phase, s.phase);  // the earliest phase any is in
        whole.live.resize(std::max(whole.live.size(), s.live.size()), 0);
        for (std::size_t b = 0; b < s.live.size(); ++b) whole.live[b] += s.live[b];
      }
      std::vector<std::uint64_t> diff(whole.live.size());
      for (std::size_t b = 0; b < whole.live.size(); ++b)
        diff[b] = whole.live[b] - std::min(whole.live[b], b < last_live.size() ? last_live[b] : 0);
      print_progress(stderr, std::chrono::duration<double>(now - start).count(), whole.up, o.conns,
                     whole.msgs - std::min(whole.msgs, last_msgs), diff, whole.errors, whole.phase);
      last_msgs = whole.msgs;
      last_live = std::move(whole.live);
    }
    if (now >= deadline) {
      overran = true;
      break;
    }
  }
  (void)group.wait_all(overran ? std::chrono::milliseconds(0) : std::chrono::milliseconds(5000), frames);
  take();

  bool ok = true;
  for (unsigned i = 0; i < n; ++i) {
    const auto& c = group.child(i);
    if (have_results[i]) {
      merge_results(out, parts[i]);
      continue;
    }
    ok = false;
    const std::string status = c.killed ? "killed: it ran past its time" : ProcessGroup::describe(c.status);
    error += (error.empty() ? "" : "; ") + std::string("load process ") + std::to_string(i) + " (pid " +
             std::to_string(c.pid) + ") " + (errors[i].empty() ? status : errors[i]);
  }
  finish_merge(out);
  return ok;
}

}  // namespace ringlink::load
