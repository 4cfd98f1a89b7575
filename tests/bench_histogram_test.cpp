// SPDX-License-Identifier: Apache-2.0
// The benchmark suite's latency histogram against nearest-rank percentiles computed exactly,
// from every sample sorted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/suite/histogram.hpp"

namespace {

using bloccs::bench::LatencyHistogram;

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();
const std::vector<std::uint32_t> kReportedPermilles = {1, 500, 900, 990, 999, 1000};

std::vector<std::uint32_t> every_permille() {
  std::vector<std::uint32_t> all(1000);
  for (std::uint32_t i = 0; i < 1000; ++i) all[i] = i + 1;
  return all;
}

// The definition, independently of any bucket: the sample of rank max(1, ceil(n * permille /
// 1000)) in sorted order.
std::uint64_t nearest_rank(const std::vector<std::uint64_t>& sorted, std::uint32_t permille) {
  const std::uint64_t rank = std::max<std::uint64_t>((sorted.size() * permille + 999) / 1000, 1);
  return sorted[rank - 1];
}

LatencyHistogram histogram_of(const std::vector<std::uint64_t>& samples) {
  LatencyHistogram h;
  for (std::uint64_t s : samples) h.record(s);
  return h;
}

// The header's guarantee: exact below kExactBelow; above it never under and at most exact/512
// over, in integer division with no +1: a bucket starting at 2^k or later is 2^(k-9) wide, so
// it overshoots any of its values by at most 2^(k-9) - 1 < exact/512. And never above max.
// Written as got - exact so values near 2^64 cannot wrap the bound.
void expect_within_bound(std::vector<std::uint64_t> samples,
                         const std::vector<std::uint32_t>& permilles = kReportedPermilles) {
  const LatencyHistogram h = histogram_of(samples);
  std::sort(samples.begin(), samples.end());
  for (std::uint32_t permille : permilles) {
    const std::uint64_t exact = nearest_rank(samples, permille);
    const std::uint64_t got = h.percentile(permille);
    SCOPED_TRACE("permille " + std::to_string(permille) + ", exact " + std::to_string(exact));
    if (exact < LatencyHistogram::kExactBelow) {
      ASSERT_EQ(got, exact);
    } else {
      ASSERT_GE(got, exact);
      ASSERT_LE(got - exact, exact / 512);
      ASSERT_LE(got, h.max());
    }
  }
}

// Sample counts that are not multiples of 1000, so ceil(n * permille / 1000) really rounds.
TEST(LatencyHistogram, MatchesExactPercentilesOnSmallUniformValues) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> ns(0, 1500);  // either side of the exact limit
  std::vector<std::uint64_t> samples(100'003);
  for (auto& s : samples) s = ns(rng);
  expect_within_bound(samples);
}

TEST(LatencyHistogram, MatchesExactPercentilesOnALogNormalSpreadFrom50nsTo10ms) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> ns(std::log(2'000.0), 2.0);  // p50 2 us, p99.9 ~ 1 ms
  std::vector<std::uint64_t> samples(200'001);
  for (auto& s : samples) s = static_cast<std::uint64_t>(std::clamp(ns(rng), 50.0, 1e7));
  expect_within_bound(samples);
}

TEST(LatencyHistogram, MatchesExactPercentilesOnABimodalSpreadWithRareHugeOutliers) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> fast(300, 20);
  std::uniform_int_distribution<std::uint64_t> outlier(10'000'000, 2'000'000'000);
  std::vector<std::uint64_t> samples;
  for (int i = 0; i < 100'000; ++i)
    samples.push_back(static_cast<std::uint64_t>(std::max(1.0, fast(rng))));
  // 0.15% outliers: p99 stays in the fast mode, p99.9 and max land among the outliers.
  for (int i = 0; i < 150; ++i) samples.push_back(outlier(rng));
  expect_within_bound(samples);
}

TEST(LatencyHistogram, MatchesExactPercentilesAroundTheExactLimitAndPowersOfTwo) {
  std::vector<std::uint64_t> samples;
  for (unsigned k = 8; k < 64; ++k) {
    const std::uint64_t power = std::uint64_t{1} << k;
    for (std::uint64_t d = 0; d <= 2; ++d) {
      samples.push_back(power - 1 - d);
      samples.push_back(power + d);
    }
  }
  samples.push_back(kMaxU64);
  // Few samples, so check every permille: each sample is some percentile.
  expect_within_bound(samples, every_permille());
}

TEST(LatencyHistogram, EmptyHasZeroCountAndZeroPercentiles) {
  const LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  for (std::uint32_t permille : kReportedPermilles) EXPECT_EQ(h.percentile(permille), 0u);
  const auto s = h.summary();
  EXPECT_EQ(s.p50 + s.p90 + s.p99 + s.p999 + s.max, 0u);
}

TEST(LatencyHistogram, OneSampleIsEveryPercentile) {
  LatencyHistogram h;
  h.record(123'456);  // inside a 128 ns wide bucket, so only the clamp to max() makes it exact
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.min(), 123'456u);
  EXPECT_EQ(h.max(), 123'456u);
  EXPECT_EQ(h.mean(), 123'456.0);
  for (std::uint32_t permille : every_permille()) ASSERT_EQ(h.percentile(permille), 123'456u);
}

TEST(LatencyHistogram, NearestRankOnOneToAThousand) {
  LatencyHistogram h;
  for (std::uint64_t ns = 1; ns <= 1000; ++ns) h.record(ns);
  EXPECT_EQ(h.percentile(1), 1u);
  EXPECT_EQ(h.percentile(500), 500u);
  EXPECT_EQ(h.percentile(990), 990u);
  EXPECT_EQ(h.percentile(999), 999u);
  EXPECT_EQ(h.percentile(1000), 1000u);
  EXPECT_EQ(h.mean(), 500.5);
}

TEST(LatencyHistogram, NearestRankRoundsTheRankUp) {
  LatencyHistogram h;
  for (std::uint64_t ns = 1; ns <= 10; ++ns) h.record(ns);
  EXPECT_EQ(h.percentile(0), 1u);    // rank 0 would be no sample: at least rank 1
  EXPECT_EQ(h.percentile(1), 1u);    // ceil(0.01) = 1
  EXPECT_EQ(h.percentile(500), 5u);  // exactly rank 5
  EXPECT_EQ(h.percentile(501), 6u);  // ceil(5.01) = 6
  EXPECT_EQ(h.percentile(999), 10u);
  EXPECT_EQ(h.percentile(5000), 10u);  // past 1000 is max, not past the end
}

TEST(LatencyHistogram, HugeValuesStayWithinTheBoundAndNeverAboveMax) {
  const std::vector<std::uint64_t> huge = {
      1'000'000'000'000, 1'000'000'000'001, (1ull << 63) - 1, 1ull << 63,
      (1ull << 63) + 1,  kMaxU64 - 1,       kMaxU64};
  expect_within_bound(huge, every_permille());
  for (std::uint64_t ns : huge) {
    LatencyHistogram h;
    h.record(1);
    h.record(ns);
    EXPECT_EQ(h.min(), 1u);
    EXPECT_EQ(h.max(), ns);
    EXPECT_EQ(h.percentile(500), 1u);
    EXPECT_EQ(h.percentile(1000), ns);
  }
}

TEST(LatencyHistogram, MeanDoesNotOverflowOnHugeSamples) {
  LatencyHistogram h;
  h.record(1);
  h.record(kMaxU64);  // the sum is 2^64: one past what a uint64 holds
  EXPECT_EQ(h.mean(), 9'223'372'036'854'775'808.0);  // 2^63
  h.record(kMaxU64);
  h.record(kMaxU64);
  EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(kMaxU64) * 3 / 4);
}

void expect_same(const LatencyHistogram& a, const LatencyHistogram& b) {
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  EXPECT_EQ(a.mean(), b.mean());
  for (std::uint32_t permille : every_permille())
    ASSERT_EQ(a.percentile(permille), b.percentile(permille)) << "permille " << permille;
}

TEST(LatencyHistogram, MergingEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(4);
  std::lognormal_distribution<double> ns(std::log(500.0), 1.5);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 50'000; ++i) {
    const auto sample = static_cast<std::uint64_t>(std::min(ns(rng), 1e12));
    (i % 3 == 0 ? b : a).record(sample);
    all.record(sample);
  }
  b.record(0);  // only b holds the minimum
  all.record(0);
  a.merge(b);
  expect_same(a, all);
}

TEST(LatencyHistogram, MergingWithAnEmptyHistogramChangesNothing) {
  LatencyHistogram recorded;
  for (std::uint64_t ns : {700u, 1'500u, 90'000u}) recorded.record(ns);
  const LatencyHistogram empty;

  LatencyHistogram into_empty;
  into_empty.merge(recorded);
  expect_same(into_empty, recorded);

  LatencyHistogram from_empty = recorded;
  from_empty.merge(empty);  // the empty one's min must not leak in
  expect_same(from_empty, recorded);
}

TEST(LatencyHistogram, SummaryIsTheFivePercentiles) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<std::uint64_t> ns(100, 100'000);
  LatencyHistogram h;
  for (int i = 0; i < 10'007; ++i) h.record(ns(rng));
  const auto s = h.summary();
  EXPECT_EQ(s.p50, h.percentile(500));
  EXPECT_EQ(s.p90, h.percentile(900));
  EXPECT_EQ(s.p99, h.percentile(990));
  EXPECT_EQ(s.p999, h.percentile(999));
  EXPECT_EQ(s.max, h.percentile(1000));
  EXPECT_EQ(s.max, h.max());
}

// The layout itself: the buckets tile 0 .. 2^64 - 1 without gaps or overlaps, each one at most
// 1/512 of its lowest value wide (1 ns below the exact limit), in a few hundred KiB.
TEST(LatencyHistogram, BucketsTileEveryUint64WithinThePrecisionBound) {
  using H = LatencyHistogram;
  EXPECT_LE(H::kBuckets * sizeof(std::uint64_t), 256u * 1024);
  EXPECT_EQ(H::lowest_in(0), 0u);
  EXPECT_EQ(H::highest_in(H::kBuckets - 1), kMaxU64);
  EXPECT_EQ(H::bucket_of(kMaxU64), H::kBuckets - 1);
  for (std::size_t b = 0; b < H::kBuckets; ++b) {
    const std::uint64_t lowest = H::lowest_in(b);
    const std::uint64_t highest = H::highest_in(b);
    ASSERT_EQ(H::bucket_of(lowest), b);
    ASSERT_EQ(H::bucket_of(highest), b);
    if (lowest < H::kExactBelow) {
      ASSERT_EQ(highest, lowest) << "bucket " << b;
    } else {
      ASSERT_LE(highest - lowest, lowest / 512) << "bucket " << b;
    }
    if (b + 1 < H::kBuckets) {
      ASSERT_EQ(H::lowest_in(b + 1), highest + 1) << "bucket " << b;
    }
  }
}

}  // namespace
