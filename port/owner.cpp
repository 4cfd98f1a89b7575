// SPDX-License-Identifier: Apache-2.0
// The owner side of a port: start (create, register, take over), receive, stop.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <mutex>
#include <set>

#include "port/meta_codec.hpp"
#include "port/port_impl.hpp"
#include "port/port_stats.hpp"
#include "port/salvage.hpp"
#include "shm/liveness.hpp"
#include "shm/names.hpp"
#include "shm/process.hpp"
#include "shm/stop_request.hpp"
#include "shm/test_hooks.hpp"

namespace bloccs {
namespace {

// Ports of this process that are running, so that a normal exit (std::exit, or returning from
// main with a Port in a static) still unregisters them and removes their segments.
std::mutex g_live_mutex;
std::set<detail::PortImpl*> g_live;

void stop_live_ports_at_exit() {
  std::set<detail::PortImpl*> live;
  {
    std::lock_guard lock(g_live_mutex);
    live.swap(g_live);
  }
  for (detail::PortImpl* p : live) p->stop();
}

void track(detail::PortImpl* p) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(stop_live_ports_at_exit); });
  std::lock_guard lock(g_live_mutex);
  g_live.insert(p);
}

void untrack(detail::PortImpl* p) {
  std::lock_guard lock(g_live_mutex);
  g_live.erase(p);
}

Status check_options(const PortOptions& o) {
  if (o.buffer && (*o.buffer == 0 || *o.buffer > lockfree::kMaxBuffer))
    return Error{Errc::bad_config, "port buffer " + std::to_string(*o.buffer) + " must be 1 to " +
                                       std::to_string(lockfree::kMaxBuffer) +
                                       " messages, or std::nullopt for an unbounded port"};
  if (!o.single_pusher && (o.max_pushers == 0 || o.max_pushers > lockfree::kMaxPushers))
    return Error{Errc::bad_config, "max_pushers " + std::to_string(o.max_pushers) +
                                       " must be 1 to " + std::to_string(lockfree::kMaxPushers)};
  static_assert(kMaxPortBuffer == lockfree::kMaxBuffer);
  static_assert(kMaxPortPayload == lockfree::kMaxPayload - kMetaWireMax - port::kDueStamp);
  if (o.max_payload > kMaxPortPayload)
    return Error{Errc::bad_config, "max_payload " + std::to_string(o.max_payload) +
                                       " exceeds what a 64 MiB ring holds; send large data "
                                       "another way (a file, a segment of its own)"};
  return {};
}

// What the port asks of its namespace's sharing: its `group` option, else the environment's.
Result<shm::Sharing> port_sharing(const PortOptions& o) {
  if (o.group.empty()) return shm::sharing_from_environment();
  auto gid = shm::parse_group(o.group);
  if (!gid) return std::move(gid).error();
  return shm::Sharing{*gid};
}

// Data bytes of a ring that holds `messages` records of `typical` payload bytes (meta
// included), but at least `floor`, at least the least a ring of `max` bytes needs (two of its
// records: ring_layout.hpp), and at most 64 MiB.
std::uint64_t ring_capacity(std::uint64_t messages, std::uint32_t typical, std::uint32_t max,
                            std::uint64_t floor) {
  const std::uint64_t want = std::max(messages * lockfree::record_size(typical), floor);
  return std::bit_ceil(std::clamp<std::uint64_t>(want, lockfree::min_capacity(max), 64ull << 20));
}

// An unbounded port grows by links of this size (or of 4 records of max_payload, if larger);
// a push_after request ring by links of a sixteenth of it.
constexpr std::uint64_t kLinkBytes = 1 << 20;
// The due lane holds at most this many messages (a full lane makes the timer retry).
constexpr std::uint32_t kDueLane = 256;
// The timer thread's stack: it keeps its heap on the heap, and calls nothing deep.
constexpr std::size_t kTimerStack = 256 * 1024;

}  // namespace

Result<Port> Port::start(const PortKey& key, PortOptions o) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  if (auto st = check_options(o); !st) return std::move(st).error();
  auto ns = shm::resolve_namespace(o.ns);
  if (!ns) return std::move(ns).error();
  auto impl = std::make_unique<Impl>();
  auto started = start_impl(*impl, key, *ns, o);
  if (!started) {
    // Nothing of ours is registered; leave no empty table behind either.
    if (impl->registry) impl->registry->retire_if_empty();
    return std::move(started).error();
  }
  track(impl.get());
  return Port(std::move(impl));
}

Status Port::start_impl(Impl& p, const PortKey& key, const std::string& ns, const PortOptions& o) {
  static std::atomic<std::uint64_t> port_counter{0};

  p.key = key;
  p.ns = ns;
  p.owner_pid = getpid();
  auto sharing = port_sharing(o);
  if (!sharing) return std::move(sharing).error();
  p.sharing = *sharing;
  auto registry = registry::Registry::open(p.ns, {.sharing = p.sharing});
  if (!registry) return std::move(registry).error();
  p.registry.emplace(std::move(registry).value());
  // Refuse a live owner's key before creating anything (register_port re-checks atomically).
  // A dead owner's port (of its key's own family) is carried over below, before we register.
  std::optional<registry::PortEntry> dead;
  if (auto held = p.registry->lookup(key); held) {
    if (held->alive)
      return Error{Errc::already_exists, "port " + to_string(key) + " is already started by pid " +
                                             std::to_string(held->owner.pid) +
                                             "; stop that owner first, or start under another key"};
    if (port::is_control_name(held->segment, held->key, held->owner.pid))
      dead = std::move(held).value();
  }
  // A name no other port has: <pid>.<n> tells our ports apart, and n starts from our start time,
  // so a dead process that had our pid (long ago, or in another pid namespace) had other names.
  const shm::ProcessId me = shm::self_process();
  do {
    p.control_name = port::control_name(
        key, static_cast<std::uint32_t>(p.owner_pid),
        (me.start_time << 20) + port_counter.fetch_add(1));  // relaxed: a unique number
  } while (dead && p.control_name == dead->segment);

  const std::uint32_t record_payload = o.max_payload + kMetaWireMax;
  // What a bounded port's rings are sized by: `buffer` messages of the typical size, with
  // their meta (and room for one of max_payload, whatever the typical size).
  const std::uint32_t typical =
      std::min(o.typical_payload, o.max_payload) + static_cast<std::uint32_t>(kMetaFixed) + 16;
  const std::uint32_t buffer = o.buffer.value_or(0);  // 0: unbounded
  auto control =
      shm::Segment::create(p.ns, p.control_name, shm::SegmentKind::port, sizeof(port::PortControl),
                           {.mode = o.mode, .sharing = p.sharing});
  if (!control) return std::move(control).error();
  p.control_segment.emplace(std::move(control).value());
  auto* c = reinterpret_cast<port::PortControl*>(p.control_segment->base());
  c->config = port::PortConfig{
      .buffer = buffer,
      .max_payload = o.max_payload,
      .flags = (o.single_pusher ? port::kSinglePusher : 0u) |
               (o.receive_spin.count() <= 0 ? port::kParksAtOnce : 0u) |
               (o.latency_histogram ? port::kStamped : 0u) |
               (o.latency_histogram && port::best_stamp_clock() == port::StampClock::tsc
                    ? port::kStampTsc
                    : 0u),
      .owner_pid = me.pid,
      .owner_start_time = me.start_time,
      .in_capacity = buffer ? ring_capacity(buffer, typical, record_payload, 0)
                            : ring_capacity(4, record_payload, record_payload, kLinkBytes),
      // push_after requests of large messages grow the chain by links (it is unbounded).
      .later_capacity = ring_capacity(4, typical + port::kDueStamp,
                                      record_payload + port::kDueStamp, kLinkBytes / 16),
      .max_pushers = o.single_pusher ? 1 : o.max_pushers,
      .mode = static_cast<std::uint32_t>(o.mode),
      .reserved = {},
  };
  // The liveness lock is held before the name appears: a port whose control segment can be
  // seen but whose lock is free has a dead owner, and tools may remove it.
  if (auto st = shm::init_liveness_lock(c->owner.alive, "the port's liveness lock"); !st)
    return std::move(st).error();
  if (auto st = shm::init_liveness_lock(c->salvager.salvager, "the port's salvager lock"); !st)
    return std::move(st).error();
  auto owner_lock = shm::HeldLock::take(c->owner.alive, "the liveness lock of " + p.control_name);
  if (!owner_lock) return std::move(owner_lock).error();
  p.owner_lock = std::move(owner_lock).value();
  if (auto st = p.control_segment->publish(); !st) return st;

  const port::PortConfig cfg = c->config;
  if (cfg.flags & port::kStamped)
    p.queue_times.attach(&c->time_in_queue, &c->owner.sample_shift, port::stamp_clock(cfg.flags));
  lockfree::ChainSpec in_spec = port::in_chain(p.ns, p.control_name, *c, cfg);
  in_spec.link.sharing = p.sharing;
  auto in = lockfree::ChainConsumer::create(std::move(in_spec));
  if (!in) return std::move(in).error();
  p.in.emplace(std::move(in).value());
  p.in->set_spin({.consumer = o.receive_spin});
  const std::uint32_t due_lane = buffer ? std::min(buffer, kDueLane) : kDueLane;
  auto due =
      lockfree::Ring::create(p.ns, port::due_name(p.control_name),
                             {.kind = lockfree::RingKind::spsc,
                              .buffer = due_lane,
                              .max_payload = record_payload,
                              .capacity = ring_capacity(due_lane, typical, record_payload, 0),
                              .mode = o.mode,
                              .sharing = p.sharing,
                              .light_wakers = o.receive_spin.count() > 0});
  if (!due) return std::move(due).error();
  p.due.emplace(std::move(due).value());
  lockfree::ChainSpec later_spec = port::later_chain(p.ns, p.control_name, *c, cfg);
  later_spec.link.sharing = p.sharing;
  auto later = lockfree::ChainConsumer::create(std::move(later_spec));
  if (!later) return std::move(later).error();
  p.later.emplace(std::move(later).value());

  auto due_pusher = lockfree::SpscPusher::open(p.ns, port::due_name(p.control_name));
  if (!due_pusher) return std::move(due_pusher).error();
  auto timer = shm::Thread::start(
      [&p, pusher = std::make_shared<lockfree::SpscPusher>(std::move(due_pusher).value())] {
        run_timer(p, std::move(*pusher));
      },
      kTimerStack);
  if (!timer) return std::move(timer).error();
  p.timer = std::move(timer).value();

  // Carry the dead owner's messages over while its registration still sends pushers away.
  std::optional<port::Salvage> salvaged;
  if (dead) {
    auto s = port::salvage(p, *dead);
    if (!s) {
      p.stop();
      return std::move(s).error();
    }
    salvaged.emplace(std::move(s).value());
    p.takeover = salvaged->report;
  }

  const std::string& ns_name = p.ns;
  auto registration = p.registry->register_port(
      key, p.control_name, 0,
      [&ns_name](const registry::PortEntry& e) { return port::holds_nothing(ns_name, e); });
  if (!registration) {
    if (salvaged) port::release(*salvaged);  // the dead port is as it was: the next start's
    p.stop();
    return std::move(registration).error();
  }
  // The dead owner's port: its rings go with it (if the slot named that port's own family).
  const auto& old = registration->taken_over;
  if (old && port::is_control_name(old->segment, old->key, old->owner.pid)) {
    shm::Segment::remove_family(p.ns, old->segment);
    if (old->key == key && (!salvaged || old->segment != salvaged->dead_control)) {
      // Another owner registered the key and died while we started: never read, say so.
      p.takeover.taken_over = true;
      p.takeover.note += std::string(p.takeover.note.empty() ? "" : "; ") +
                         "the key was meanwhile held by pid " + std::to_string(old->owner.pid) +
                         ", which died too; what its port held was not carried over";
    }
  }
  if (salvaged && (!old || old->segment != salvaged->dead_control))
    shm::Segment::remove_family(p.ns, salvaged->dead_control);  // no longer registered
  p.registration = std::move(registration).value();
  return {};
}

void detail::PortImpl::stop() {
  if (stopped) return;
  stopped = true;
  untrack(this);
  if (getpid() != owner_pid) {  // a forked child's copy: the port is the parent's
    timer.forget();             // that thread does not exist here
    return;
  }
  // relaxed: pushers read the flag on every push; a late read is the race any stop has.
  if (control_segment) control().owner.retired.store(1, std::memory_order_relaxed);
  shm::test_hook("port.retired");  // retired, still registered (tests of pushers' one-line check)
  if (registration) (void)registry->unregister(*registration);
  if (in) in->close();  // parked pushers wake with no_producer (we are `in`'s consumer thread)
  if (timer.joinable()) {
    // seq_cst: the timer thread re-checks it after arming its wait (Dekker, see futex.hpp).
    stopping.store(true, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    lockfree::wake(stop_line, 1);
    timer.join();  // (`later` belongs to it until here: never touch it from this thread before)
  }
  owner_lock.release();  // pushers see the owner gone
  if (control_segment) {
    // seq_cst: before listing our segments; a pusher that makes a link after this removes it.
    control().chains.closing.store(1, std::memory_order_seq_cst);
  }
  in.reset();
  due.reset();
  later.reset();
  control_segment.reset();
  shm::Segment::remove_family(ns, control_name);  // links chained by pushers, if any
}

Port::Port(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Port::Port(Port&&) noexcept = default;
Port& Port::operator=(Port&& other) noexcept {
  if (this != &other) {
    stop();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Port::~Port() {
  stop();
}

void Port::stop() {
  if (impl_) impl_->stop();
}

const PortKey& Port::key() const noexcept {
  return impl_->key;
}

const PortTakeover& Port::takeover() const noexcept {
  return impl_->takeover;
}

Result<std::size_t> Port::drain(Visit visit, void* ctx, std::size_t max, Deadline deadline,
                                bool wait) {
  Impl& p = *impl_;
  if (p.stopped)
    return Error{Errc::closed, "port " + to_string(p.key) + " was stopped; start it again"};
  if (p.control_segment->damaged()) return p.control_segment->damage_error();
  // A stop request ends a blocking receive even when a message is ready, so that a process
  // under load stops too; try_receive still drains.
  if (wait && shm::stop_requested()) return shm::stopping_error("no message was received");
  std::size_t delivered = 0;
  std::uint64_t refused = 0;
  port::QueueTimeRecorder& times = p.queue_times;
  auto on_record = [&](std::span<const std::byte> record) {
    MessageView m;
    std::uint64_t stamp;
    if (!MetaCodec::decode_fast(record, m.meta, m.payload, stamp)) {
      ++refused;  // a peer wrote garbage into our ring: never hand it on
      return;
    }
    // Counted as it is taken, before the visit: the time in queue ends at hand-over.
    if (stamp && times.on()) times.record(stamp);
    visit(ctx, m);
    ++delivered;
  };
  // Park on the `in` link and on the due lane at once: either's pusher wakes us. A stop request
  // (stop_on_signals) ends the sleep too, at its next look.
  const lockfree::AlsoReady due_ready{
      [](const void* ring) {
        // seq_cst: AlsoReady's contract (the consumer's Dekker re-check).
        return static_cast<const lockfree::Ring*>(ring)->ready(std::memory_order_seq_cst) ||
               shm::stop_requested();
      },
      &*p.due, &p.due->data_line()};
  for (;;) {
    // The due lane first: it is small, and under back-pressure `in` is never empty, so read
    // after it a push_after message would wait for ever.
    // A look at the due lane's next header first: it is almost always empty, and a look costs
    // one load where a drain costs a call and its checks. relaxed: try_drain loads it again
    // with acquire before it reads the record.
    times.new_batch();  // we may have waited since the last message
    Result<std::size_t> d = std::size_t{0};
    if (p.due->ready(std::memory_order_relaxed)) d = p.due->try_drain(on_record, max);
    if (!d) return std::move(d).error();
    std::size_t from_in = 0;
    if (*d < max) {
      auto n = p.in->try_drain(on_record, max - *d);
      if (!n) return std::move(n).error();
      from_in = *n;
    }
    // Also when nothing came: the ring may have skipped a killed pusher's claim meanwhile.
    p.count(*d, from_in, refused);
    refused = 0;
    if (delivered || !wait) return delivered;
    if (Clock::now() >= deadline)
      return Error{Errc::timeout, "no message arrived before the deadline"};
    if (shm::stop_requested()) return shm::stopping_error("no message was received");
    if (auto st = p.in->wait(deadline, due_ready); !st) return std::move(st).error();
  }
}

void detail::PortImpl::count(std::uint64_t from_due, std::uint64_t from_in, std::uint64_t refused) {
  // This thread is the only writer of these words: plain load + store, no read-modify-write.
  // relaxed: counters for tools, which read them with relaxed loads too.
  auto add = [](std::atomic<std::uint64_t>& word, std::uint64_t n) {
    if (n) word.store(word.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  };
  port::ConsumerCounters& c = control().consumer;
  add(c.due_consumed, from_due);
  add(c.in_consumed, from_in);
  add(c.refused, refused);
  queue_times.taken(from_due + from_in);
  const std::uint64_t abandoned = in->abandoned();
  if (abandoned != c.abandoned.load(std::memory_order_relaxed))
    c.abandoned.store(abandoned, std::memory_order_relaxed);
}

Result<Message> Port::receive(Deadline deadline) {
  Message out;
  auto n = receive_batch([&](const MessageView& m) { out = m.copy(); }, 1, deadline);
  if (!n) return std::move(n).error();
  return out;
}

Result<std::optional<Message>> Port::try_receive() {
  std::optional<Message> out;
  auto n = try_receive_batch([&](const MessageView& m) { out = m.copy(); }, 1);
  if (!n) return std::move(n).error();
  return out;
}

PortStats Port::stats() const {
  const Impl& p = *impl_;
  PortStats s;
  if (p.stopped) return s;
  const auto in = p.in->stats(&s.links);
  const auto due = p.due->stats();
  s.depth = in.depth + due.depth;
  s.parked_pushers = in.parked_pushers;
  const auto& t = p.control().timer;
  // relaxed: a snapshot for people.
  s.pending_after = t.pending.load(std::memory_order_relaxed);
  s.after_delivered = t.delivered.load(std::memory_order_relaxed);
  s.after_retries = t.retries.load(std::memory_order_relaxed);
  s.refused = p.control().consumer.refused.load(std::memory_order_relaxed);  // relaxed: stats
  const port::TakeoverLine& took = p.control().takeover;
  // relaxed: written once, before the port was registered.
  s.salvaged = took.salvaged.load(std::memory_order_relaxed);
  s.lost_at_takeover = took.lost_timer_held.load(std::memory_order_relaxed) +
                       took.lost_unfit.load(std::memory_order_relaxed) +
                       took.lost_unread.load(std::memory_order_relaxed) +
                       took.refused.load(std::memory_order_relaxed);
  port::pusher_waits(p.control(), s);
  s.time_in_queue = port::queue_times(p.control());
  return s;
}

}  // namespace bloccs
