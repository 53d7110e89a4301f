// ringlink-echo's metrics summary (SIGUSR1 and at exit), and how the
// summaries of several server processes add up to one.
#pragma once

#include <cstdint>
#include <cstdio>

#include "engine/metrics.hpp"

namespace echo_report {

void print_metrics(const ringlink::MetricsSnapshot& m, std::uint64_t send_retries, std::FILE* out);

// Adds `from` into `to`: counters and gauges sum (the whole server's links,
// bytes, queued bytes), histogram buckets sum; the queue high-water mark is
// the largest of the processes', since their peaks need not coincide.
void merge_metrics(ringlink::MetricsSnapshot& to, const ringlink::MetricsSnapshot& from) noexcept;

}  // namespace echo_report
