// SPDX-License-Identifier: Apache-2.0
// Time in queue: how long each message waited between its push (or its push_after falling due)
// and its receipt, as a histogram its consumer keeps in the port's control segment. Anyone who
// may read the port reads it (shmctl, metrics); nobody waits on it: the consumer alone writes,
// with plain relaxed stores, and readers take what they see (a reading may be a message behind).
//
// Each push is stamped while the port is quiet. Past 50,000 messages a second its consumer asks
// pushers to stamp one push in 16 (OwnerLine::sample_shift), below 25,000 every one again: a
// stamp and its reading cost a clock read each (~10 ns on a VM's TSC), which the budget of
// 10 ns per message cannot pay at full speed, and a sample of 1 in 16 at that rate still counts
// thousands a second. Each stamped message carries the shift it was sampled with and counts as
// 2^shift messages, so counts and percentiles stay estimates of all of them.
//
// Buckets, HDR style: 16 of 8 ns below 128 ns; then 16 per power of two from 2^7 ns to 2^37 ns
// (137 s), each 1/16 of its octave wide (a value is known within 3.2% of a bucket's middle);
// one bucket for all beyond.
//
// The area, 4096 bytes at offset 576 of the control segment (port_layout.hpp):
//   0       8        16      64                                        4040      4096
//   +-------+--------+-------+---------------------------------------------+--------+
//   | sum_ns| max_ns | 0     | buckets: kQueueBuckets u64 counts            | 0      |
//   +-------+--------+-------+---------------------------------------------+--------+
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

#include "port/stamp_clock.hpp"

namespace bloccs::port {

inline constexpr unsigned kLinearBuckets = 16;  // 8 ns each, below 128 ns
inline constexpr unsigned kFirstOctave = 7;     // 2^7 ns = 128 ns
inline constexpr unsigned kOctaves = 30;        // up to 2^37 ns
inline constexpr unsigned kPerOctave = 16;
inline constexpr unsigned kOverflowBucket = kLinearBuckets + kOctaves * kPerOctave;  // 496
inline constexpr unsigned kQueueBuckets = kOverflowBucket + 1;

struct alignas(64) TimeInQueue {
  std::atomic<std::uint64_t> sum_ns;  // of every time recorded
  std::atomic<std::uint64_t> max_ns;  // the longest
  std::uint64_t reserved[6];
  std::atomic<std::uint64_t> buckets[kQueueBuckets];
  std::uint64_t pad[7];
};
static_assert(sizeof(TimeInQueue) == 4096);

// A stamp: the clock's reading in the low 60 bits (the TSC reaches 2^60 after 12 years of
// uptime at 3 GHz), and the sample shift its pusher used in the top 4.
inline constexpr std::uint64_t kStampTicks = (std::uint64_t{1} << 60) - 1;
[[gnu::always_inline]] inline std::uint64_t make_stamp(std::uint64_t ticks,
                                                       std::uint32_t shift) noexcept {
  return (ticks & kStampTicks) | std::uint64_t{shift} << 60;
}
// One in 2^kSampleShift pushes is stamped while the port is busy.
inline constexpr std::uint32_t kSampleShift = 4;

// The bucket of a time of `ns`.
[[gnu::always_inline]] inline unsigned bucket_of(std::uint64_t ns) noexcept {
  if (ns < (std::uint64_t{1} << kFirstOctave)) return static_cast<unsigned>(ns >> 3);
  const unsigned e = 63 - static_cast<unsigned>(std::countl_zero(ns));
  if (e >= kFirstOctave + kOctaves) return kOverflowBucket;
  return kLinearBuckets + (e - kFirstOctave) * kPerOctave +
         static_cast<unsigned>((ns >> (e - 4)) & (kPerOctave - 1));
}
// The least time in bucket `i`, in ns.
constexpr std::uint64_t bucket_low(unsigned i) noexcept {
  if (i < kLinearBuckets) return std::uint64_t{i} * 8;
  if (i >= kOverflowBucket) return std::uint64_t{1} << (kFirstOctave + kOctaves);
  const unsigned e = kFirstOctave + (i - kLinearBuckets) / kPerOctave;
  const unsigned sub = (i - kLinearBuckets) % kPerOctave;
  return std::uint64_t{kPerOctave + sub} << (e - 4);
}
// The first time past bucket `i` (UINT64_MAX for the last).
constexpr std::uint64_t bucket_high(unsigned i) noexcept {
  return i >= kOverflowBucket ? UINT64_MAX : bucket_low(i + 1);
}

// A copy of a port's histogram, and what it says.
struct QueueTimeSnapshot {
  std::array<std::uint64_t, kQueueBuckets> buckets{};
  std::uint64_t sum_ns = 0;
  std::uint64_t max_ns = 0;  // the longest (since the port started; or its bucket's top, for a
                             // difference of two snapshots)

  static QueueTimeSnapshot read(const TimeInQueue& area) noexcept;
  std::uint64_t count() const noexcept;
  // The q-quantile (0 < q <= 1) in ns: the middle of its bucket, at most max_ns; 0 if empty.
  std::uint64_t percentile(double q) const noexcept;
  // What was recorded after `earlier` (a snapshot of the same port taken before).
  QueueTimeSnapshot since(const QueueTimeSnapshot& earlier) const noexcept;
};

// The consumer's side: records the time in queue of each stamped message it takes.
//
// Reading the clock costs a few ns, so it is read again only every 16 messages while taking
// them is quick (under 500 ns each, so a time read late is at most ~8 µs late) and for every
// message while it is slow; and always at the first message after the consumer waited, and
// when a stamp is newer than the time last read.
class QueueTimeRecorder {
 public:
  QueueTimeRecorder() = default;
  // Records into `area` (null: records nothing) with the port's stamp clock, and tells
  // pushers how often to stamp through `sample_shift`.
  void attach(TimeInQueue* area, std::atomic<std::uint32_t>* sample_shift, StampClock clock) {
    area_ = area;
    sample_shift_ = sample_shift;
    clock_ = clock;
    scale_ = StampScale::of(clock);
    slow_after_ = scale_.ticks_in(500);
    window_ = scale_.ticks_in(1'000'000);
    busy_ = scale_.ticks_in(20'000);   // 50,000 a second
    quiet_ = scale_.ticks_in(40'000);  // 25,000 a second
  }
  bool on() const noexcept { return area_ != nullptr; }
  // The consumer may have waited: the next message reads the clock.
  void new_batch() noexcept { stale_ = true; }

  // Messages taken, stamped or not (once per batch): the rate that sets the sampling.
  void taken(std::uint64_t n) noexcept { window_messages_ += n; }

  [[gnu::always_inline]] void record(std::uint64_t stamp) noexcept {
    const std::uint64_t ticks = stamp & kStampTicks;
    ++since_read_;  // never 0 in read_clock
    if (stale_ || slow_ || ticks > now_ || (since_read_ & (kEvery - 1)) == 0) [[unlikely]]
      read_clock();
    add(scale_.ns_between(ticks, now_), std::uint64_t{1} << (stamp >> 60));
  }

 private:
  static constexpr std::uint32_t kEvery = 16;

  void read_clock() noexcept {
    const std::uint64_t now = stamp_now(clock_);
    // Quick or slow, judged by the visits since the last read of this batch (one per message
    // taken since, this one's not yet).
    if (!stale_) slow_ = (now - now_) / since_read_ > slow_after_;
    now_ = now & kStampTicks;
    since_read_ = 0;
    stale_ = false;
    if (now_ - window_start_ >= window_) resample();
  }
  // Once per window of 1 ms (at a clock read): stamp 1 in 16 pushes while the port takes a
  // message more often than every 20 us, every push again once it takes one less often than
  // every 40 us.
  void resample() noexcept {
    const std::uint64_t per_message = (now_ - window_start_) / (window_messages_ + 1);
    std::uint32_t shift = shift_;
    if (per_message < busy_) shift = kSampleShift;
    if (per_message > quiet_) shift = 0;
    if (shift != shift_) {
      shift_ = shift;
      // relaxed: a hint pushers read on every push; one that reads it late stamps a few more
      // or fewer, each counted with the shift it used.
      if (sample_shift_) sample_shift_->store(shift, std::memory_order_relaxed);
    }
    window_start_ = now_;
    window_messages_ = 0;
  }
  void add(std::uint64_t ns, std::uint64_t weight) noexcept {
    // The consumer is the only writer: plain load + store, no read-modify-write. relaxed:
    // statistics for tools, which read them with relaxed loads too.
    auto& bucket = area_->buckets[bucket_of(ns)];
    bucket.store(bucket.load(std::memory_order_relaxed) + weight, std::memory_order_relaxed);
    area_->sum_ns.store(area_->sum_ns.load(std::memory_order_relaxed) + ns * weight,
                        std::memory_order_relaxed);
    if (ns > area_->max_ns.load(std::memory_order_relaxed)) [[unlikely]]
      area_->max_ns.store(ns, std::memory_order_relaxed);
  }

  TimeInQueue* area_ = nullptr;
  std::atomic<std::uint32_t>* sample_shift_ = nullptr;
  StampClock clock_ = StampClock::steady;
  StampScale scale_ = StampScale::of(StampClock::steady);
  std::uint64_t slow_after_ = 500;  // ticks per message past which taking them is slow
  std::uint64_t now_ = 0;           // the clock as last read
  std::uint32_t since_read_ = 0;    // messages recorded since
  bool stale_ = true;
  bool slow_ = false;
  // The sampling: a window of 1 ms of ticks, and the rates that start and end it.
  std::uint64_t window_ = 0, busy_ = 0, quiet_ = 0;
  std::uint64_t window_start_ = 0;
  std::uint64_t window_messages_ = 0;
  std::uint32_t shift_ = 0;
};

}  // namespace bloccs::port
