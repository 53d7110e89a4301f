// ringlink-echo --processes N --metrics-endpoint: every process answers
// GET /metrics with the counters of all of them, whichever one the kernel
// handed the connection.
//
//   SharedMetrics shared;
//   shared.create(processes, reactors_per_process);   // in the parent, before the fork
//   shared.publish(index, server);                      // each child, from its main loop
//   shared.write(body);                                 // any child: the Prometheus text
//
// The table is one anonymous MAP_SHARED mapping made before the fork, so the
// children inherit it: one ReactorMetrics copy per reactor of each process,
// written by that process only (a single writer per counter, as in the
// engine). A process's copy is as fresh as its last publish (its main loop
// runs ten times a second); the process answering refreshes its own first.
// Each reactor keeps its own series: reactor="i" counts across processes,
// process p's reactors after process p-1's, so summing over the label gives
// the whole server and a high-water mark's maximum is the server's. The
// server-level topic and broker series are not in this view (they are per
// process); the summary at exit merges everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "engine/metrics.hpp"
#include "engine/server.hpp"

namespace echo_metrics {

class SharedMetrics {
 public:
  SharedMetrics() = default;
  ~SharedMetrics();
  SharedMetrics(const SharedMetrics&) = delete;
  SharedMetrics& operator=(const SharedMetrics&) = delete;

  // Parent, before forking. False (errno set) when the mapping failed.
  bool create(unsigned processes, unsigned reactors_per_process);
  bool active() const noexcept { return base_ != nullptr; }

  // Process `index`: copies its reactors' counters into its rows (at most
  // reactors_per_process of them). Serialised inside the process.
  void publish(unsigned index, ringlink::Server& server);
  // The Prometheus text of every published reactor of every process.
  void write(std::string& out) const;

 private:
  ringlink::ReactorMetrics* row(unsigned process, unsigned reactor) const noexcept;

  void* base_ = nullptr;
  std::size_t bytes_ = 0;
  unsigned processes_ = 0, per_process_ = 0;
  mutable std::mutex publishing_;  // the main loop and a /metrics request in one process
};

}  // namespace echo_metrics
