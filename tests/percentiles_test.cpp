// The benchmark's percentile arithmetic: nearest rank, no interpolation, exact integer ranks.
#include <gtest/gtest.h>

#include "benchmarks/percentiles.hpp"

using bloccs::bench::percentiles;

TEST(Percentiles, NearestRankOfOneToAThousand) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = 1000; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  const auto p = percentiles(v);
  EXPECT_EQ(p.p50, 500u);
  EXPECT_EQ(p.p90, 900u);
  EXPECT_EQ(p.p99, 990u);
  EXPECT_EQ(p.p999, 999u);  // rank 999 exactly, not a float rounded up to 1000
  EXPECT_EQ(p.max, 1000u);
}

TEST(Percentiles, SmallAndEmptySamples) {
  const auto one = percentiles({42});
  EXPECT_EQ(one.p50, 42u);
  EXPECT_EQ(one.p999, 42u);
  const auto ten = percentiles({10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  EXPECT_EQ(ten.p50, 5u);
  EXPECT_EQ(ten.p90, 9u);
  EXPECT_EQ(ten.p99, 10u);  // fewer than 100 samples: p99 is the max
  const auto none = percentiles({});
  EXPECT_EQ(none.p50, 0u);
  EXPECT_EQ(none.max, 0u);
}
