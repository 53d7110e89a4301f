// Latency histograms for ringlink-load: log-linear buckets (HdrHistogram's
// layout), fixed memory, no allocation or lock on record, mergeable.
//
//   Histogram h;                       // 1 ns resolution below 2 us, then 3 significant digits
//   h.record(latency_ns);              // values above 60 s count as 60 s (and as saturated)
//   other_thread_histogram.merge_into(h);
//   std::uint64_t p99 = h.value_at_percentile(99.0);
//
//   LiveHistogram live;                // coarse (~3 %), single writer, readable by any thread
//   live.record(ns);                   // reactor thread
//   live.snapshot(counts);             // progress thread: cumulative counts; diff two snapshots
//
// Values are nanoseconds. A value v below 2^SubBits has its own bucket; above,
// each power of two is split into 2^(SubBits-1) equal buckets, so a bucket is
// at most v / 2^(SubBits-1) wide: with SubBits = 11 that is 1/1024 of the
// value, i.e. three significant decimal digits, from 1 us to 60 s.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ringlink::load {

inline constexpr std::uint64_t histogram_max_ns = 60'000'000'000ULL;  // 60 s

template <unsigned SubBits>
struct LogLinearLayout {
  static_assert(SubBits >= 2 && SubBits <= 20);
  static constexpr std::uint64_t sub_count = 1ULL << SubBits;
  static constexpr std::uint64_t half = sub_count / 2;

  static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    if (v > histogram_max_ns) v = histogram_max_ns;
    if (v < sub_count) return static_cast<std::size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - SubBits;  // v >> shift in [half, sub_count)
    return static_cast<std::size_t>(shift * half + (v >> shift));
  }
  static constexpr std::uint64_t lowest_of(std::size_t i) noexcept {
    if (i < sub_count) return i;
    const std::uint64_t shift = i / half - 1;
    return (i - shift * half) << shift;
  }
  // The largest value that lands in bucket i (what a percentile reports).
  static constexpr std::uint64_t highest_of(std::size_t i) noexcept {
    if (i < sub_count) return i;
    const std::uint64_t shift = i / half - 1;
    return lowest_of(i) + (1ULL << shift) - 1;
  }
  static constexpr std::size_t bucket_count = index_of(histogram_max_ns) + 1;
};

using PreciseLayout = LogLinearLayout<11>;
using CoarseLayout = LogLinearLayout<6>;

// The value at `percentile` (0..100) of a bucket array: the highest value of
// the first bucket whose cumulative count reaches ceil(p * total), as
// HdrHistogram reports it. 0 for an empty array.
template <class Layout>
std::uint64_t percentile_of(std::span<const std::uint64_t> counts, std::uint64_t total, double percentile) noexcept {
  if (total == 0) return 0;
  const double p = std::clamp(percentile, 0.0, 100.0);
  // The rank is ceil(p * total): the smallest count that covers p percent.
  // The tolerance keeps 99 % of 1000 at rank 990 despite 0.99 * 1000 = 990.0000001.
  const double exact = p / 100.0 * static_cast<double>(total);
  auto rank = static_cast<std::uint64_t>(exact);
  if (static_cast<double>(rank) < exact - 1e-6) ++rank;
  rank = std::clamp<std::uint64_t>(rank, 1, total);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) return Layout::highest_of(i);
  }
  return Layout::highest_of(counts.size() - 1);
}

// Full-resolution histogram owned by one thread; merged after the run.
class Histogram {
 public:
  using Layout = PreciseLayout;

  Histogram() : counts_(Layout::bucket_count, 0) {}

  void record(std::uint64_t ns) noexcept {
    ++counts_[Layout::index_of(ns)];
    ++total_;
    if (ns > histogram_max_ns) {
      ++saturated_;
      ns = histogram_max_ns;
    }
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }
  void merge_into(Histogram& to) const noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) to.counts_[i] += counts_[i];
    to.total_ += total_;
    to.saturated_ += saturated_;
    to.sum_ += sum_;
    to.min_ = std::min(to.min_, min_);
    to.max_ = std::max(to.max_, max_);
  }
  void reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = saturated_ = sum_ = max_ = 0;
    min_ = UINT64_MAX;
  }

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t saturated() const noexcept { return saturated_; }
  std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }
  // Never above the exact maximum (the last bucket's highest value may be).
  std::uint64_t value_at_percentile(double percentile) const noexcept {
    if (percentile >= 100.0) return max();
    return std::min(percentile_of<Layout>(counts_, total_, percentile), max_);
  }
  std::span<const std::uint64_t> counts() const noexcept { return counts_; }

  // The state besides the buckets, so a histogram can cross a pipe
  // (ringlink-load --processes) and be merged on the other side.
  struct Totals {
    std::uint64_t total = 0, saturated = 0, sum = 0, min = UINT64_MAX, max = 0;
  };
  Totals totals() const noexcept { return Totals{total_, saturated_, sum_, min_, max_}; }
  // Adds one bucket's count; add_totals then adds the rest, as merge_into does.
  void add_bucket(std::size_t index, std::uint64_t count) noexcept {
    if (index < counts_.size()) counts_[index] += count;
  }
  void add_totals(const Totals& t) noexcept {
    total_ += t.total;
    saturated_ += t.saturated;
    sum_ += t.sum;
    min_ = std::min(min_, t.min);
    max_ = std::max(max_, t.max);
  }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t saturated_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

// Coarse cumulative histogram for the live progress line: one writer thread,
// any number of readers. Counters are atomics written with plain load+store
// (no read-modify-write: there is a single writer), so recording costs what
// a non-atomic increment does on x86.
class LiveHistogram {
 public:
  using Layout = CoarseLayout;

  LiveHistogram() : counts_(Layout::bucket_count) {}

  void record(std::uint64_t ns) noexcept {
    auto& c = counts_[Layout::index_of(ns)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // Adds the current cumulative counts to `out` (sized bucket_count).
  void add_snapshot(std::vector<std::uint64_t>& out) const noexcept {
    out.resize(Layout::bucket_count, 0);
    for (std::size_t i = 0; i < counts_.size(); ++i) out[i] += counts_[i].load(std::memory_order_relaxed);
  }

 private:
  std::vector<std::atomic<std::uint64_t>> counts_;
};

}  // namespace ringlink::load
