// Latency percentiles by the nearest-rank method.
//
// For n samples sorted ascending, the p-th percentile is the sample at 1-based rank
// ceil(p / 100 * n): the smallest sample that at least p% of all samples are less than or equal
// to. It is always a value that was measured (no interpolation), so for n = 1 every percentile
// is that sample, and p99.9 of fewer than 1000 samples is the max. Ranks are computed in
// integers (per mille), so p99.9 of 1000 samples is rank 999 exactly, not a float that rounds
// up to 1000.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace bloccs::bench {

struct Percentiles {
  std::uint64_t p50 = 0;
  std::uint64_t p90 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t max = 0;
};

// The sample at rank ceil(permille / 1000 * n) of `sorted` (ascending, not empty).
inline std::uint64_t nearest_rank(const std::vector<std::uint64_t>& sorted,
                                  std::uint64_t permille) {
  const std::uint64_t rank = (sorted.size() * permille + 999) / 1000;  // ceil, in integers
  return sorted[std::max<std::uint64_t>(rank, 1) - 1];
}

// Sorts its own copy of `samples` (pass std::move(v) to spare the copy). All zero if empty.
inline Percentiles percentiles(std::vector<std::uint64_t> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  return {nearest_rank(samples, 500), nearest_rank(samples, 900), nearest_rank(samples, 990),
          nearest_rank(samples, 999), samples.back()};
}

}  // namespace bloccs::bench
