// The benchmark suite's latency histogram against exact nearest-rank percentiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

#include "benchmarks/suite/histogram.hpp"

namespace {

using bloccs::bench::LatencyHistogram;

// The sample at rank ceil(permille / 1000 * n), from a sorted copy.
std::uint64_t exact(std::vector<std::uint64_t> v, std::uint32_t permille) {
  std::sort(v.begin(), v.end());
  const std::uint64_t rank = std::max<std::uint64_t>((v.size() * permille + 999) / 1000, 1);
  return v[rank - 1];
}

LatencyHistogram of(const std::vector<std::uint64_t>& samples) {
  LatencyHistogram h;
  for (std::uint64_t s : samples) h.record(s);
  return h;
}

// Exact below 1024 ns; above, never under and at most 1/512 over.
void expect_close(const std::vector<std::uint64_t>& samples, const char* what) {
  const LatencyHistogram h = of(samples);
  for (std::uint32_t permille : {1u, 500u, 900u, 990u, 999u, 1000u}) {
    const std::uint64_t want = exact(samples, permille);
    const std::uint64_t got = h.percentile(permille);
    SCOPED_TRACE(std::string(what) + " permille " + std::to_string(permille));
    if (want < LatencyHistogram::kExact) {
      EXPECT_EQ(got, want);
    } else {
      EXPECT_GE(got, want);
      EXPECT_LE(got, want + want / 512);
    }
  }
}

TEST(LatencyHistogram, MatchesExactPercentilesOnSmallUniformValues) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> d(0, 1500);
  std::vector<std::uint64_t> v(100'000);
  for (auto& x : v) x = d(rng);
  expect_close(v, "uniform 0..1500");
}

TEST(LatencyHistogram, MatchesExactPercentilesOnAWideLogNormalSpread) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> d(std::log(2'000.0), 2.0);  // ~50 ns .. ~10 ms
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v) x = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(d(rng)), 50, 10'000'000);
  expect_close(v, "log-normal");
}

TEST(LatencyHistogram, MatchesExactPercentilesWithRareHugeOutliers) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> fast(300, 20);
  std::vector<std::uint64_t> v;
  for (int i = 0; i < 100'000; ++i) v.push_back(static_cast<std::uint64_t>(std::max(1.0, fast(rng))));
  for (int i = 0; i < 150; ++i) v.push_back(40'000'000 + 1'000 * i);  // 0.15%: shows from p99.9
  expect_close(v, "bimodal");
}

TEST(LatencyHistogram, MatchesExactPercentilesAroundBucketBoundaries) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t edge : {1023ull, 1024ull, 2047ull, 2048ull, 4095ull, 4096ull, 1ull << 20, 1ull << 40})
    for (std::uint64_t d = 0; d < 5; ++d) {
      v.push_back(edge + d);
      v.push_back(edge - d);
    }
  expect_close(v, "boundaries");
}

TEST(LatencyHistogram, EmptyGivesZeros) {
  const LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  for (std::uint32_t p : {1u, 500u, 999u, 1000u}) EXPECT_EQ(h.percentile(p), 0u);
}

TEST(LatencyHistogram, OneSampleIsEveryPercentile) {
  LatencyHistogram h;
  h.record(123'456);
  for (std::uint32_t p : {1u, 500u, 990u, 999u, 1000u}) EXPECT_EQ(h.percentile(p), 123'456u);
}

TEST(LatencyHistogram, NearestRankOnOneToAThousand) {
  LatencyHistogram h;
  for (std::uint64_t i = 1; i <= 1000; ++i) h.record(i);
  EXPECT_EQ(h.percentile(500), 500u);
  EXPECT_EQ(h.percentile(990), 990u);
  EXPECT_EQ(h.percentile(999), 999u);
  EXPECT_EQ(h.percentile(1000), 1000u);
  EXPECT_DOUBLE_EQ(h.mean(), 500.5);
}

TEST(LatencyHistogram, HugeValuesStayWithinTheBoundAndNeverAboveMax) {
  for (std::uint64_t v : std::initializer_list<std::uint64_t>{1'000'000'000'000, 1ull << 63, UINT64_MAX}) {
    LatencyHistogram h;
    h.record(1);
    h.record(v);
    EXPECT_EQ(h.max(), v);
    EXPECT_EQ(h.percentile(1000), v);
    EXPECT_EQ(h.percentile(500), 1u);
    const std::uint64_t highest = LatencyHistogram::highest_in(LatencyHistogram::bucket_of(v));
    EXPECT_GE(highest, v);
    EXPECT_LE(highest - v, v / 512);
  }
}

TEST(LatencyHistogram, MergingEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(4);
  std::lognormal_distribution<double> d(std::log(500.0), 1.5);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 50'000; ++i) {
    const auto x = static_cast<std::uint64_t>(d(rng));
    (i % 3 ? a : b).record(x);
    all.record(x);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (std::uint32_t p = 1; p <= 1000; ++p) ASSERT_EQ(a.percentile(p), all.percentile(p)) << p;
}

TEST(LatencyHistogram, SummaryIsTheFivePercentiles) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<std::uint64_t> d(100, 100'000);
  LatencyHistogram h;
  for (int i = 0; i < 10'000; ++i) h.record(d(rng));
  const auto s = h.summary();
  EXPECT_EQ(s.p50, h.percentile(500));
  EXPECT_EQ(s.p90, h.percentile(900));
  EXPECT_EQ(s.p99, h.percentile(990));
  EXPECT_EQ(s.p999, h.percentile(999));
  EXPECT_EQ(s.max, h.max());
}

TEST(LatencyHistogram, EveryBucketHoldsWhatItStandsFor) {
  // bucket_of and highest_in agree on every bucket's edges: its highest value maps back to it,
  // and one past it maps to the next bucket.
  for (std::size_t b = 0; b + 1 < LatencyHistogram::kBuckets; ++b) {
    const std::uint64_t hi = LatencyHistogram::highest_in(b);
    ASSERT_EQ(LatencyHistogram::bucket_of(hi), b);
    ASSERT_EQ(LatencyHistogram::bucket_of(hi + 1), b + 1);
  }
}

}  // namespace
