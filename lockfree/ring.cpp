// SPDX-License-Identifier: Apache-2.0
// Creating a ring, and checking one that someone else created.
#include <bit>
#include <string>

#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring.hpp"
#include "shm/process.hpp"

namespace bloccs::lockfree {
namespace {

constexpr std::uint64_t kDefaultCapacityLimit = 64ull << 20;

Result<std::uint64_t> pick_capacity(const RingOptions& o) {
  // The least a ring of max_payload needs (min_capacity): an empty ring then takes a record of
  // max_payload wherever its head is, pad included.
  const std::uint64_t rec = min_capacity(o.max_payload);
  if (o.capacity == 0) {
    std::uint64_t want =
        std::min<std::uint64_t>(std::uint64_t{o.buffer} * rec, kDefaultCapacityLimit);
    return std::bit_ceil(std::max<std::uint64_t>(want, rec));
  }
  if (!std::has_single_bit(o.capacity) || o.capacity < rec || o.capacity > kMaxCapacity)
    return Error{Errc::bad_config,
                 "ring capacity " + std::to_string(o.capacity) + " must be a power of two from " +
                     std::to_string(std::bit_ceil(rec)) + " (two records of max_payload " +
                     std::to_string(o.max_payload) + ") to 64 MiB; pass 0 to let bloccs pick"};
  return o.capacity;
}

Status check_options(const RingOptions& o) {
  if (o.kind != RingKind::spsc && o.kind != RingKind::mpsc)
    return Error{Errc::bad_config, "ring kind must be spsc or mpsc"};
  if (o.buffer == 0 || o.buffer > kMaxBuffer)
    return Error{Errc::bad_config, "ring buffer " + std::to_string(o.buffer) + " must be 1 to " +
                                       std::to_string(kMaxBuffer) + " messages"};
  // Every ring must be one an opener accepts (validated_config): min_capacity fits in the
  // largest capacity, 64 MiB.
  if (min_capacity(o.max_payload) > kMaxCapacity)
    return Error{Errc::bad_config, "max_payload " + std::to_string(o.max_payload) +
                                       " needs a ring of more than 64 MiB; use at most " +
                                       std::to_string(kMaxPayload) +
                                       ", or send large data another way"};
  if (o.kind == RingKind::mpsc && (o.max_pushers == 0 || o.max_pushers > kMaxPushers))
    return Error{Errc::bad_config, "max_pushers " + std::to_string(o.max_pushers) +
                                       " must be 1 to " + std::to_string(kMaxPushers)};
  if (o.abandon_after.count() < 100 || o.abandon_after.count() > 60'000'000)
    return Error{Errc::bad_config, "abandon_after must be 100 us to 60 s"};
  if (o.start_position > kPosMask || o.start_position % 8 != 0 || o.start_count > kCountMask)
    return Error{Errc::bad_config,
                 "start_position must be a multiple of 8 below 2^40 and "
                 "start_count below 2^24"};
  return {};
}

Error damaged(const shm::Segment& seg, const std::string& what) {
  return {Errc::segment_invalid, "ring /dev/shm/" + seg.name() + " is damaged: " + what +
                                     "; remove it (shmctl rm) and restart its owner"};
}

}  // namespace

Result<shm::Segment> Ring::build(std::string_view ns, std::string_view name, const RingOptions& o,
                                 const shm::ProcessId& owner, shm::HeldLock* consumer) {
  if (auto st = check_options(o); !st) return std::move(st).error();
  auto capacity = pick_capacity(o);
  if (!capacity) return std::move(capacity).error();
  const std::uint32_t slots = o.kind == RingKind::spsc ? 1 : o.max_pushers;
  const std::uint64_t slots_offset = sizeof(RingControl);
  const std::uint64_t data_offset = slots_offset + std::uint64_t{slots} * sizeof(PusherSlot);
  auto seg = shm::Segment::create(ns, name, shm::SegmentKind::ring, data_offset + *capacity,
                                  {.mode = o.mode, .sharing = o.sharing});
  if (!seg) return std::move(seg).error();

  auto* c = reinterpret_cast<RingControl*>(seg->base());
  c->config = RingConfig{
      .kind = static_cast<std::uint32_t>(o.kind),
      .slot_count = slots,
      .capacity = *capacity,
      .buffer = o.buffer,
      .max_payload = o.max_payload,
      .slots_offset = slots_offset,
      .data_offset = data_offset,
      .owner_pid = owner.pid,
      .abandon_after_us = static_cast<std::uint32_t>(o.abandon_after.count()),
      .owner_start_time = owner.start_time,
      .flags = o.light_wakers ? kRingLightWakers : 0u,
      .reserved = 0,
  };
  // Wait lines, counters and slots start at zero: ftruncate zero-filled them.
  const Cursor start{o.start_position, o.start_count};
  // relaxed: nobody else sees the segment before publish() (release).
  c->consumer.head.store(start.pack(), std::memory_order_relaxed);
  c->producer.tail.store(start.pack(), std::memory_order_relaxed);
  if (auto st = shm::init_liveness_lock(c->consumer_alive.lock, "a ring's consumer lock"); !st)
    return std::move(st).error();
  for (std::uint32_t i = 0; i < slots; ++i) {
    auto* slot = reinterpret_cast<PusherSlot*>(seg->base() + slots_offset) + i;
    if (auto st = shm::init_liveness_lock(slot->holder, "a pusher slot's lock"); !st)
      return std::move(st).error();
  }
  if (consumer) {
    auto held = shm::HeldLock::take(c->consumer_alive.lock, "the consumer lock of " + seg->name());
    if (!held) return std::move(held).error();
    *consumer = std::move(held).value();
  }
  if (auto st = seg->publish(); !st) {
    if (consumer) consumer->release();
    return std::move(st).error();
  }
  return seg;
}

Result<Ring> Ring::create(std::string_view ns, std::string_view name, RingOptions o) {
  shm::HeldLock consumer;
  auto seg = build(ns, name, o, shm::self_process(), &consumer);
  if (!seg) return std::move(seg).error();
  const RingConfig config = reinterpret_cast<RingControl*>(seg->base())->config;
  Ring ring(std::move(seg).value(), config);
  ring.consumer_lock_ = std::move(consumer);
  ring.head_ = Cursor{o.start_position, o.start_count};
  return ring;
}

Status Ring::create_for(std::string_view ns, std::string_view name, RingOptions options,
                        const shm::ProcessId& owner) {
  auto seg = build(ns, name, options, owner, nullptr);
  if (!seg) return std::move(seg).error();
  seg->disown();  // the owner adopts it and removes it once read
  return {};
}

Result<Ring> Ring::adopt(std::string_view ns, std::string_view name) {
  auto seg = shm::Segment::open(ns, name, shm::SegmentKind::ring);
  if (!seg) return std::move(seg).error();
  auto config = validated_config(*seg);
  if (!config) return std::move(config).error();
  const shm::ProcessId me = shm::self_process();
  if (config->owner_pid != me.pid || config->owner_start_time != me.start_time)
    return Error{Errc::wrong_process, "ring /dev/shm/" + seg->name() + " was made for pid " +
                                          std::to_string(config->owner_pid) +
                                          ", not this process; only its owner consumes it"};
  const RingConfig cfg = *config;
  auto* c = reinterpret_cast<RingControl*>(seg->base());
  auto consumer =
      shm::HeldLock::take(c->consumer_alive.lock, "the consumer lock of " + seg->name());
  if (!consumer) {
    if (consumer.code() != Errc::already_exists) return std::move(consumer).error();
    return Error{Errc::wrong_process, "ring /dev/shm/" + seg->name() +
                                          " already has a running consumer; only one adopts it"};
  }
  // acquire: a head someone else published (none yet for a new link) and what it released.
  const Cursor head = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
  Ring ring(std::move(seg).value(), cfg);
  ring.consumer_lock_ = std::move(consumer).value();
  ring.head_ = head;
  return ring;
}

Ring::Ring(shm::Segment segment, const RingConfig& config)
    : segment_(std::move(segment)), cfg_(config), fork_generation_(shm::fork_generation()) {
  slot_view_.resize(cfg_.slot_count);
  dead_starts_.reserve(cfg_.slot_count);
  dead_slots_.reserve(cfg_.slot_count);
}

Result<RingConfig> validated_config(const shm::Segment& seg) {
  if (seg.size() < sizeof(RingControl))
    return damaged(seg,
                   "it is " + std::to_string(seg.size()) + " bytes, smaller than a ring header");
  const RingConfig cfg = reinterpret_cast<const RingControl*>(seg.base())->config;
  if (cfg.kind != static_cast<std::uint32_t>(RingKind::spsc) &&
      cfg.kind != static_cast<std::uint32_t>(RingKind::mpsc))
    return damaged(seg, "unknown ring kind " + std::to_string(cfg.kind));
  const bool spsc = cfg.kind == static_cast<std::uint32_t>(RingKind::spsc);
  if (cfg.slot_count == 0 || cfg.slot_count > kMaxPushers || (spsc && cfg.slot_count != 1))
    return damaged(seg, "pusher slot count " + std::to_string(cfg.slot_count) + " out of range");
  if (!std::has_single_bit(cfg.capacity) || cfg.capacity < 8 || cfg.capacity > kMaxCapacity)
    return damaged(
        seg, "capacity " + std::to_string(cfg.capacity) + " is not a power of two up to 64 MiB");
  if (cfg.buffer == 0 || cfg.buffer > kMaxBuffer)
    return damaged(seg, "buffer " + std::to_string(cfg.buffer) + " out of range");
  if (cfg.flags & ~kRingLightWakers)
    return damaged(seg, "unknown flags " + std::to_string(cfg.flags));
  if (min_capacity(cfg.max_payload) > cfg.capacity)
    return damaged(seg, "max_payload " + std::to_string(cfg.max_payload) + " exceeds its capacity");
  if (cfg.slots_offset != sizeof(RingControl) ||
      cfg.data_offset != cfg.slots_offset + std::uint64_t{cfg.slot_count} * sizeof(PusherSlot) ||
      cfg.data_offset + cfg.capacity != seg.size())
    return damaged(seg, "its slot and data offsets do not match its size");
  return cfg;
}

RingStats read_stats(const shm::Segment& seg, const RingConfig& cfg) {
  const auto* c = reinterpret_cast<const RingControl*>(seg.base());
  // relaxed everywhere: a snapshot for people; it orders nothing and must never slow a pusher.
  const Cursor head = Cursor::unpack(c->consumer.head.load(std::memory_order_relaxed));
  const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_relaxed));
  RingStats s{};
  s.sealed = tail_sealed(tail, head);
  s.depth = count_distance(tail.count, head.count) - (s.sealed ? kSealCount : 0);
  s.bytes_used = pos_distance(tail.pos, head.pos);
  s.parked_pushers = c->space.line.waiters.load(std::memory_order_relaxed);
  s.parked_consumer = c->data.line.waiters.load(std::memory_order_relaxed);
  s.abandoned = c->counters.abandoned.load(std::memory_order_relaxed);
  s.aborted = c->counters.aborted.load(std::memory_order_relaxed);
  const auto* slots = reinterpret_cast<const PusherSlot*>(seg.base() + cfg.slots_offset);
  for (std::uint32_t i = 0; i < cfg.slot_count; ++i)
    s.attached_pushers += shm::held(slots[i].holder);
  return s;
}

}  // namespace bloccs::lockfree
