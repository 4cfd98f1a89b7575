// SPDX-License-Identifier: Apache-2.0
// Reading a time-in-queue histogram (the layout is drawn in time_in_queue.hpp).
#include "port/time_in_queue.hpp"

#include <algorithm>
#include <cmath>

namespace bloccs::port {

QueueTimeSnapshot QueueTimeSnapshot::read(const TimeInQueue& area) noexcept {
  QueueTimeSnapshot s;
  // relaxed: a snapshot for people; the consumer may add to it meanwhile.
  for (unsigned i = 0; i < kQueueBuckets; ++i)
    s.buckets[i] = area.buckets[i].load(std::memory_order_relaxed);
  s.sum_ns = area.sum_ns.load(std::memory_order_relaxed);
  s.max_ns = area.max_ns.load(std::memory_order_relaxed);
  return s;
}

std::uint64_t QueueTimeSnapshot::count() const noexcept {
  std::uint64_t n = 0;
  for (std::uint64_t b : buckets) n += b;
  return n;
}

std::uint64_t QueueTimeSnapshot::percentile(double q) const noexcept {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(n))));
  std::uint64_t seen = 0;
  for (unsigned i = 0; i < kQueueBuckets; ++i) {
    seen += buckets[i];
    if (seen < rank) continue;
    if (i == kOverflowBucket) return max_ns;
    const std::uint64_t middle = bucket_low(i) + (bucket_high(i) - bucket_low(i)) / 2;
    return max_ns ? std::min(middle, max_ns) : middle;
  }
  return max_ns;
}

QueueTimeSnapshot QueueTimeSnapshot::since(const QueueTimeSnapshot& earlier) const noexcept {
  QueueTimeSnapshot d;
  unsigned top = 0;
  bool any = false;
  for (unsigned i = 0; i < kQueueBuckets; ++i) {
    // A port restarted under the same name would count from zero: never negative.
    d.buckets[i] = buckets[i] >= earlier.buckets[i] ? buckets[i] - earlier.buckets[i] : buckets[i];
    if (d.buckets[i]) {
      top = i;
      any = true;
    }
  }
  d.sum_ns = sum_ns >= earlier.sum_ns ? sum_ns - earlier.sum_ns : sum_ns;
  // The longest of the interval lies in its highest bucket: that bucket's top, or the
  // all-time longest if that is lower (it was then recorded in the interval).
  d.max_ns = any ? std::min(top == kOverflowBucket ? max_ns : bucket_high(top) - 1, max_ns) : 0;
  return d;
}

}  // namespace bloccs::port
