// Results across a pipe and their merge: how ringlink-load --processes turns
// its children's runs into one report.
//
//   std::vector<std::byte> bytes;
//   encode_results(r, bytes);                   // child
//   Results part;
//   if (!decode_results(bytes, part)) ...       // parent: malformed
//   merge_results(total, part);                 // for each child, then
//   finish_merge(total);                        // the per-connection figures
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "tools/load/results.hpp"
#include "tools/load/runner.hpp"

namespace ringlink::load {

void encode_results(const Results& r, std::vector<std::byte>& out);
bool decode_results(std::span<const std::byte> in, Results& out);

void encode_progress(const ProgressSample& s, std::vector<std::byte>& out);
bool decode_progress(std::span<const std::byte> in, ProgressSample& out);

// Adds `part` into `total`: counts, errors and histograms sum exactly; the
// windows (measured_s, ramp_s) are the longest; connection indices continue
// after those already in `total`; threads and warnings are appended.
void merge_results(Results& total, const Results& part);
// Fairness from the merged connections, once every part is in.
void finish_merge(Results& total);

}  // namespace ringlink::load
