// Round-trip times without keeping every sample: a log-linear histogram of nanoseconds, so a
// run of millions of round trips costs a fixed 256 KiB and rounds merge exactly.
//
// Buckets, for kSubBits = 9 (512 sub-buckets per power of two):
//   values 0 .. 1023                 one bucket per nanosecond (exact)
//   values 2^k .. 2^(k+1) - 1, k>=10  512 buckets of width 2^(k-9) each
// so a value above 1023 lands in a bucket at most 1/512 of it wide (0.2%: 1 ns at 500 ns,
// 2 us at 1 ms). Every uint64 value has a bucket.
//
// percentile(p) is the nearest-rank percentile: the sample at rank ceil(p/1000 * n), reported
// as the highest value its bucket stands for, but never more than the largest sample. So it is
// exact below 1024 ns, never understated, and at most 1/512 over above.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "benchmarks/suite/figure.hpp"

namespace bloccs::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 9;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;  // 512
  static constexpr std::uint64_t kExact = 2 * kSub;                     // 0 .. 1023 exact
  // 1024 exact buckets, then 512 per power of two from 2^10 to 2^63.
  static constexpr std::size_t kBuckets = kExact + (64 - (kSubBits + 1)) * kSub;

  LatencyHistogram() : counts_(kBuckets, 0) {}

  void record(std::uint64_t ns) noexcept {
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
  }

  void merge(const LatencyHistogram& other) {
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

  // permille in 1..1000 (500 = p50, 999 = p99.9, 1000 = max); 0 for an empty histogram.
  std::uint64_t percentile(std::uint32_t permille) const noexcept {
    if (count_ == 0) return 0;
    const std::uint64_t rank = std::max<std::uint64_t>((count_ * permille + 999) / 1000, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(highest_in(i), max_);
    }
    return max_;
  }

  Percentiles summary() const noexcept {
    return {percentile(500), percentile(900), percentile(990), percentile(999), max()};
  }

  // The bucket layout, public for the tests.
  static std::size_t bucket_of(std::uint64_t ns) noexcept {
    if (ns < kExact) return static_cast<std::size_t>(ns);
    const unsigned k = 63 - static_cast<unsigned>(std::countl_zero(ns));  // 2^k <= ns, k >= 10
    const unsigned shift = k - kSubBits;                                     // bucket width 2^shift
    const std::uint64_t sub = (ns >> shift) - kSub;                          // 0 .. 511
    return static_cast<std::size_t>(kExact + (k - (kSubBits + 1)) * kSub + sub);
  }
  static std::uint64_t highest_in(std::size_t bucket) noexcept {
    if (bucket < kExact) return bucket;
    const std::uint64_t past = bucket - kExact;
    const unsigned k = static_cast<unsigned>(past / kSub) + kSubBits + 1;
    const unsigned shift = k - kSubBits;
    const std::uint64_t lowest = (kSub + past % kSub) << shift;
    return lowest + ((std::uint64_t{1} << shift) - 1);  // 2^64 - 1 at the very top: no overflow
  }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  __extension__ unsigned __int128 sum_ = 0;  // a uint64 could overflow on huge samples
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace bloccs::bench
