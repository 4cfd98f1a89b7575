// SPDX-License-Identifier: Apache-2.0
// Round-trip times without keeping every sample: a log-linear histogram of nanoseconds, so
// hundreds of thousands of round trips per transport cost a fixed 224 KiB, and the rounds of a
// run merge without losing anything.
//
// Bucket layout (kSubBits = 9: 512 linear sub-buckets per power of two):
//
//   buckets                    values                     bucket width
//   0 ..  1023                 0 .. 1023                  1        exact
//   1024 ..  1535              2^10 .. 2^11 - 1           2
//   1536 ..  2047              2^11 .. 2^12 - 1           4
//   ...
//   1024 + 512(k-10) .. +511   2^k  .. 2^(k+1) - 1        2^(k-9)
//   ...
//   28160 .. 28671             2^63 .. 2^64 - 1           2^54
//
// Precision: a value v below 1024 is kept exactly. Above, v lands in a bucket 2^(k-9) wide with
// v >= 2^k, so the bucket's highest value h satisfies v <= h <= v + v/512 (integer division;
// h - v <= 2^(k-9) - 1 < v/512): at most 0.2% over, e.g. 1 ns at 1 us, 2 us at 1 ms.
//
// percentile(permille) is the nearest-rank percentile: the sample of rank
// max(1, ceil(n * permille / 1000)) in sorted order, reported as the highest value its bucket
// stands for, clamped to the largest sample. So a percentile is never understated, keeps the
// bound above, and percentile(1000) == max().
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "benchmarks/suite/figure.hpp"

namespace bloccs::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 9;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBits;  // per power of two
  // Below this every nanosecond has its own bucket: up to here the sub-buckets would be
  // 1 ns wide anyway.
  static constexpr std::uint64_t kExactBelow = 2 * kSubBuckets;  // 1024
  static constexpr std::size_t kBuckets = kExactBelow + (64 - (kSubBits + 1)) * kSubBuckets;

  // The one allocation; a moved-from histogram has no buckets, so assign to it before reuse.
  LatencyHistogram() : counts_(kBuckets, 0) {}

  void record(std::uint64_t ns) noexcept {
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }

  void merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
  }

  // permille: 500 = p50, 999 = p99.9, 1000 = max (more counts as 1000). 0 when empty.
  std::uint64_t percentile(std::uint32_t permille) const noexcept {
    if (count_ == 0) return 0;
    // Clamping permille keeps n * permille in range up to 1.8e16 samples.
    const std::uint64_t n_times_permille = count_ * std::min<std::uint64_t>(permille, 1000);
    const std::uint64_t rank = std::max<std::uint64_t>((n_times_permille + 999) / 1000, 1);
    std::uint64_t seen = 0;
    for (std::size_t bucket = 0; bucket < kBuckets; ++bucket) {
      seen += counts_[bucket];
      if (seen >= rank) return std::min(highest_in(bucket), max_);
    }
    return max_;  // not reached: the buckets hold count_ samples
  }

  Percentiles summary() const noexcept {
    return {percentile(500), percentile(900), percentile(990), percentile(999), max()};
  }

  // The layout drawn above; public so the tests can check it bucket by bucket.
  static std::size_t bucket_of(std::uint64_t ns) noexcept {
    if (ns < kExactBelow) return static_cast<std::size_t>(ns);
    const auto octave = static_cast<unsigned>(std::bit_width(ns)) - 1;  // 2^octave <= ns
    const unsigned width_bits = octave - kSubBits;
    const std::uint64_t sub_bucket = (ns >> width_bits) - kSubBuckets;  // 0 .. 511
    return static_cast<std::size_t>(kExactBelow + (octave - (kSubBits + 1)) * kSubBuckets +
                                    sub_bucket);
  }
  static std::uint64_t lowest_in(std::size_t bucket) noexcept {
    if (bucket < kExactBelow) return bucket;
    const std::uint64_t past_exact = bucket - kExactBelow;
    return (kSubBuckets + past_exact % kSubBuckets) << width_bits_of(bucket);
  }
  static std::uint64_t highest_in(std::size_t bucket) noexcept {
    // Written as lowest + (width - 1) so the top bucket ends at 2^64 - 1 without overflowing.
    return lowest_in(bucket) + ((std::uint64_t{1} << width_bits_of(bucket)) - 1);
  }

 private:
  static unsigned width_bits_of(std::size_t bucket) noexcept {
    if (bucket < kExactBelow) return 0;
    return static_cast<unsigned>((bucket - kExactBelow) / kSubBuckets) + 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  // A uint64 sum wraps after two samples near 2^63; 128 bits hold 2^64 samples of any size.
  __extension__ unsigned __int128 sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;  // any sample lowers it; min() hides it while empty
  std::uint64_t max_ = 0;
};

}  // namespace bloccs::bench
