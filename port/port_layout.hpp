// SPDX-License-Identifier: Apache-2.0
// The shared-memory layout of a port, and how its segments are named.
//
// A port is a family of segments named after its control segment
// "port.<owner pid>.<n>.<network>.<node>.<in_port>" (the registry points at it; dots in key
// parts become '_'). <pid>.<n> (n counts the owner's ports) makes the name unique among live
// ports, so the family is exactly that name and the names that extend it by ".":
//   <control>            this layout: the port's configuration and the owner's liveness lock
//   <control>.in.<k>     the rings pushers push into (SPSC or MPSC): link 0 alone for a bounded
//                        port, a growing chain for an unbounded one (lockfree/chain.hpp)
//   <control>.due        push_after messages the owner's timer thread has made due (SPSC)
//   <control>.later.<k>  push_after requests on their way to the timer thread (an MPSC chain,
//                        so that push_after never waits)
//
// The control segment:
//   offset  size  what                                              written by
//   0       64    SegmentHeader (shm/segment.hpp)                   owner, once
//   64      64    PortConfig                                        owner, once
//   128     64    OwnerLine: the owner's liveness lock, held from   the owner's keeper thread
//                 start to stop, `retired`, set as stop begins,     (and the kernel); the owner
//                 and `sample_shift` (time in queue)                sets `retired` once; its
//                                                                   consumer, `sample_shift`
//   192     64    TimerCounters                                     the owner's timer thread
//   256     64    ChainLine: the newest link of `in` and of `later`  whoever adds a link
//   320     64    ConsumerCounters                                  the owner's consumer thread
//   384     64    PusherEvents: pushes that timed out, and what     pushers (rarely: only
//                 waiting for room cost them (ParkLedger)           those that time out or park)
//   448     64    TakeoverLine: what this port carried over from    the owner, once, before it
//                 a dead owner of its key                           registers
//   512     64    SalvagerLine: the liveness lock of whoever        a later owner of the key
//                 carries this port's messages over once it is dead (and the kernel)
//   576     4096  TimeInQueue: how long messages waited in the      the owner's consumer thread
//                 queue, a histogram (time_in_queue.hpp)
//
// Counting costs the push path nothing: what pushers pushed is what the consumer received
// plus what is queued plus what it skipped (claims of killed pushers), so only the consumer
// counts, once per batch, on a line of its own; pushers count only their (slow) timeouts.
//
// The liveness lock (shm/liveness.hpp): the kernel lets go of it when its holder dies, even by
// SIGKILL, or execs. A pusher reads the owner line, which nobody writes while the port runs, to
// know the owner is alive and not stopping: a push to a dead or stopped owner's port is
// Errc::no_producer at once, for the price of one shared line that stays in every pusher's
// cache. (`retired` is set before the key is unregistered, so the line alone answers what the
// registry would: a key is registered again only after its owner retired or died.)
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "bloccs/meta.hpp"
#include "bloccs/port_key.hpp"
#include "lockfree/chain.hpp"
#include "lockfree/park_ledger.hpp"
#include "port/meta_codec.hpp"
#include "port/time_in_queue.hpp"
#include "shm/liveness.hpp"
#include "shm/segment.hpp"

namespace bloccs::port {

// push_after requests: [due time, ns on CLOCK_MONOTONIC, u64][meta][payload].
inline constexpr std::size_t kDueStamp = 8;
// The timer thread holds at most this many push_after messages in its heap (its own memory);
// more requests stay queued in `later` until the heap has room.
inline constexpr std::size_t kTimerHeldMax = 65536;

inline constexpr std::uint32_t kSinglePusher = 1;
// The consumer parks at once when the port is empty (receive_spin 0): its pushers fence before
// they look whether it sleeps, rather than it making a heavy fence each time it parks
// (RingOptions::light_wakers).
inline constexpr std::uint32_t kParksAtOnce = 2;
// Pushers stamp each message (meta_codec.hpp) and the consumer keeps its time in queue
// (PortOptions::latency_histogram); kStampTsc: with the TSC, else CLOCK_MONOTONIC.
inline constexpr std::uint32_t kStamped = 4;
inline constexpr std::uint32_t kStampTsc = 8;

inline StampClock stamp_clock(std::uint32_t flags) noexcept {
  return (flags & kStampTsc) ? StampClock::tsc : StampClock::steady;
}

struct PortConfig {
  std::uint32_t buffer;       // bound on queued messages; 0: unbounded
  std::uint32_t max_payload;  // bytes, meta not counted
  std::uint32_t flags;        // kSinglePusher, kParksAtOnce, kStamped, kStampTsc
  std::uint32_t owner_pid;
  std::uint64_t owner_start_time;
  std::uint64_t in_capacity;     // data bytes of each `in` link
  std::uint64_t later_capacity;  // data bytes of each `later` link
  std::uint32_t max_pushers;     // pusher slots of each MPSC ring
  std::uint32_t mode;            // of every segment of the port
  std::uint64_t reserved[2];
};
static_assert(sizeof(PortConfig) == 64);

//   0                       40         44             48      64
//   +-----------------------+----------+--------------+-------+
//   | alive (LivenessLock)  | retired  | sample_shift | 0     |
//   +-----------------------+----------+--------------+-------+
// sample_shift lives here because every push reads this line anyway, and it changes only when
// the port's rate crosses a threshold: the line stays in every pusher's cache.
struct alignas(64) OwnerLine {
  shm::LivenessLock alive;             // held by the owner from start to stop
  std::atomic<std::uint32_t> retired;  // 1 once the owner began to stop (before unregistering)
  // Pushers stamp one push in 2^sample_shift (time_in_queue.hpp): 0 while the port is quiet.
  std::atomic<std::uint32_t> sample_shift;
};
static_assert(offsetof(OwnerLine, retired) == 40 && offsetof(OwnerLine, sample_shift) == 44 &&
              sizeof(OwnerLine) == 64);

struct alignas(64) TimerCounters {
  // push_after messages held in the heap, not yet enqueued. Never below the heap's size, even
  // at a SIGKILL: a later owner counts the dead timer's messages from it (port/salvage.cpp).
  std::atomic<std::uint64_t> pending;
  std::atomic<std::uint64_t> delivered;     // push_after messages enqueued
  std::atomic<std::uint64_t> retries;       // enqueue attempts that found the port full
  std::atomic<std::uint64_t> refused;       // malformed requests dropped (a peer wrote garbage)
  std::atomic<std::uint64_t> later_oldest;  // LinkId of the `later` link being read
};

struct alignas(64) ChainLine {
  std::atomic<std::uint64_t> in_newest;     // LinkId of the newest `in` link
  std::atomic<std::uint64_t> later_newest;  // LinkId of the newest `later` link
  std::atomic<std::uint32_t> closing;       // 1 once the owner is removing the port's segments
};

struct alignas(64) ConsumerCounters {
  std::atomic<std::uint64_t> in_consumed;   // records taken from the pushers' ring
  std::atomic<std::uint64_t> due_consumed;  // records taken from the due lane
  std::atomic<std::uint64_t> refused;       // of those, dropped because their meta was bad
  std::atomic<std::uint64_t> abandoned;     // killed pushers' claims skipped, all links
  std::atomic<std::uint64_t> in_oldest;     // LinkId of the `in` link being read
};

struct alignas(64) PusherEvents {
  std::atomic<std::uint64_t> timed_out;  // pushes that gave up at push_timeout
  lockfree::ParkLedger parks;            // pushes that parked for room, and how long
};

// What this port carried over from a dead owner of its key (port/salvage.cpp; the contract is in
// bloccs/port.hpp): written by its owner before it registers, never again; tools read it with
// relaxed loads.
//   0          8            12    16          24                32
//   +----------+------------+-----+-----------+-----------------+
//   | 0        | dead_owner | 0   | salvaged  | salvaged_after  |
//   +----------+------------+-----+-----------+-----------------+
//   32                 40            48             56           64
//   +------------------+-------------+--------------+------------+
//   | lost_timer_held  | lost_unfit  | lost_unread  | refused    |
//   +------------------+-------------+--------------+------------+
struct alignas(64) TakeoverLine {
  std::uint64_t reserved;
  std::atomic<std::uint32_t> dead_owner;  // pid of the owner the key was taken from; 0: none
  std::uint32_t pad;
  std::atomic<std::uint64_t> salvaged;         // messages carried over (push_after ones included)
  std::atomic<std::uint64_t> salvaged_after;   // of those, push_after requests re-queued
  std::atomic<std::uint64_t> lost_timer_held;  // push_after messages the dead timer held
  std::atomic<std::uint64_t> lost_unfit;       // over this port's max_payload, or past its buffer
  std::atomic<std::uint64_t> lost_unread;      // in a damaged ring, or a claim open past the bound
  std::atomic<std::uint64_t> refused;          // records whose meta did not parse
};
static_assert(sizeof(TakeoverLine) == 64);

// This port's side of a take-over once its owner is dead: the process carrying its messages
// over holds this lock, so that two racing starts never both read its rings (a claimant that
// died lets go of it, and the next start takes it over).
struct alignas(64) SalvagerLine {
  shm::LivenessLock salvager;
};

struct PortControl {
  shm::SegmentHeader segment;
  PortConfig config;
  OwnerLine owner;
  TimerCounters timer;
  ChainLine chains;
  ConsumerCounters consumer;
  PusherEvents pushers;
  TakeoverLine takeover;
  SalvagerLine salvager;
  TimeInQueue time_in_queue;
};
static_assert(offsetof(PortControl, config) == 64);
static_assert(offsetof(PortControl, owner) == 128);
static_assert(offsetof(PortControl, timer) == 192);
static_assert(offsetof(PortControl, chains) == 256);
static_assert(offsetof(PortControl, consumer) == 320);
static_assert(offsetof(PortControl, pushers) == 384);
static_assert(offsetof(PortControl, takeover) == 448);
static_assert(offsetof(PortControl, salvager) == 512);
static_assert(offsetof(PortControl, time_in_queue) == 576);
static_assert(sizeof(PortControl) == 576 + 4096);

// True while the owner holds the port's liveness lock (one load).
inline bool owner_alive(const PortControl& c) noexcept {
  return shm::held(c.owner.alive);
}

// True while the owner holds the port and has not begun to stop it: what a pusher checks on
// every push, two loads of the owner line, which stays in its cache while the port runs.
inline bool owner_accepting(const PortControl& c) noexcept {
  // relaxed: a flag set once; a pusher that reads it late pushes into a port that is stopping,
  // as one that checked just before the stop does.
  return c.owner.retired.load(std::memory_order_relaxed) == 0 && shm::held(c.owner.alive);
}

// The key's parts appear with their dots made '_': the control name then always has six
// dot-separated parts, so no other port's name can extend it by ".something". (Two keys that
// differ only there cannot clash either: <pid>.<n> already tells every port apart.)
inline std::string control_name(const PortKey& key, std::uint32_t pid, std::uint64_t n) {
  std::string name = "port." + std::to_string(pid) + "." + std::to_string(n) + ".";
  for (const std::string* part : {&key.network_id, &key.node_id, &key.in_port}) {
    for (char ch : *part) name += ch == '.' ? '_' : ch;
    name += '.';
  }
  name.pop_back();
  return name;
}
// True if `control` is a name control_name(key, pid, n) gives for some n: a registry slot's
// segment name is written by whoever registered, and nobody removes a family on its word alone.
inline bool is_control_name(const std::string& control, const PortKey& key, std::uint32_t pid) {
  const std::string prefix = "port." + std::to_string(pid) + ".";
  const std::string zero = control_name(key, pid, 0);
  const std::string suffix = zero.substr(zero.find('.', prefix.size()));  // ".<key>"
  if (!control.starts_with(prefix) || !control.ends_with(suffix) ||
      control.size() <= prefix.size() + suffix.size())
    return false;
  for (std::size_t i = prefix.size(); i < control.size() - suffix.size(); ++i)
    if (control[i] < '0' || control[i] > '9') return false;
  return true;
}

inline std::string due_name(const std::string& control) {
  return control + ".due";
}

// The two chains of a port, as both sides build them from the (validated) config.
inline lockfree::ChainSpec in_chain(const std::string& ns, const std::string& control,
                                    PortControl& shared, const PortConfig& cfg) {
  const bool unbounded = cfg.buffer == 0;
  return {.ns = ns,
          .base = control + ".in",
          .newest = &shared.chains.in_newest,
          .unbounded = unbounded,
          .closing = &shared.chains.closing,
          .oldest = &shared.consumer.in_oldest,
          .parks = &shared.pushers.parks,
          .link = {.kind = (cfg.flags & kSinglePusher) ? lockfree::RingKind::spsc
                                                       : lockfree::RingKind::mpsc,
                   .buffer = unbounded ? lockfree::kMaxBuffer : cfg.buffer,
                   .max_payload = cfg.max_payload + static_cast<std::uint32_t>(kMetaWireMax),
                   .capacity = cfg.in_capacity,
                   .max_pushers = cfg.max_pushers,
                   .mode = static_cast<mode_t>(cfg.mode),
                   .light_wakers = (cfg.flags & kParksAtOnce) == 0},
          .owner = {cfg.owner_pid, cfg.owner_start_time}};
}

inline lockfree::ChainSpec later_chain(const std::string& ns, const std::string& control,
                                       PortControl& shared, const PortConfig& cfg) {
  return {.ns = ns,
          .base = control + ".later",
          .newest = &shared.chains.later_newest,
          .unbounded = true,
          .closing = &shared.chains.closing,
          .oldest = &shared.timer.later_oldest,
          .link = {.kind = lockfree::RingKind::mpsc,
                   .buffer = lockfree::kMaxBuffer,
                   .max_payload =
                       cfg.max_payload + static_cast<std::uint32_t>(kMetaWireMax + kDueStamp),
                   .capacity = cfg.later_capacity,
                   .max_pushers = cfg.max_pushers,
                   .mode = static_cast<mode_t>(cfg.mode),
                   // The timer thread parks between due times: push_after (rare) fences.
                   .light_wakers = false},
          .owner = {cfg.owner_pid, cfg.owner_start_time}};
}

}  // namespace bloccs::port
