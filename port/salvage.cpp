// SPDX-License-Identifier: Apache-2.0
// Carrying a dead owner's port over into the port that takes its key over (Port::start).
//
// The new port is started, not yet registered: pushers of the key still find the dead
// registration and get no_producer, and nobody consumes the new rings. Salvage seals each ring
// of the dead port (a pusher still on it gets Errc::closed, never ok), reads it (lockfree's
// OrphanRing: from its consumer's published head, writing nothing else) and pushes what it
// reads into the new port, in this order, so each pusher's order is kept:
//   1. <dead>.due       push_after messages already due: they were due before the rest, so
//                       they go first into the new `in` (its due lane is the new timer's own)
//                       while it has room; past it, re-queued into the new `later` due at once
//   2. <dead>.in.*      what pushers queued, link by link
//   3. <dead>.held.*    push_after messages the dead timer held (port/held_store.hpp): into the
//                       new `later` with their due times, for the new timer to deliver when due
//   4. <dead>.later.*   push_after requests the dead timer had not taken yet: the same
// Nothing waits on the new port's consumer (there is none yet): a message that finds the new
// port full, or over its max_payload, is counted lost, never dropped unseen.
#include "port/salvage.hpp"

#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lockfree/chain.hpp"
#include "lockfree/pusher_slots.hpp"
#include "port/held_store.hpp"
#include "port/meta_codec.hpp"
#include "port/port_layout.hpp"

namespace bloccs::port {
namespace {

// How long a take-over waits for claims that live pushers still have open in the dead rings.
// A claim commits within nanoseconds unless its pusher is stopped or descheduled; past this,
// it and what follows it in its ring are counted lost rather than hold the start up.
constexpr auto kLiveClaimPatience = std::chrono::seconds(1);

void add_note(PortTakeover& t, const std::string& sentence) {
  if (!t.note.empty()) t.note += "; ";
  t.note += sentence;
}

std::string messages(std::uint64_t n) {
  return std::to_string(n) + (n == 1 ? " message" : " messages");
}

// The config checks pushers make (pusher.cpp), against the registration that names the port.
bool config_matches(const PortConfig& cfg, const registry::PortEntry& dead) {
  return cfg.owner_pid == dead.owner.pid && cfg.owner_start_time == dead.owner.start_time &&
         cfg.buffer <= lockfree::kMaxBuffer && cfg.max_payload <= (64u << 20) &&
         cfg.max_pushers >= 1 && cfg.max_pushers <= lockfree::kMaxPushers;
}

// Makes this process the dead port's salvager, unless a live process already is.
Result<shm::HeldLock> claim(PortControl& dead, const PortKey& key) {
  auto lock =
      shm::HeldLock::take(dead.salvager.salvager, "the salvager lock of port " + to_string(key));
  if (!lock && lock.code() == Errc::already_exists)
    return Error{Errc::already_exists,
                 "port " + to_string(key) +
                     " is being taken over by another process right now; wait for that start to "
                     "finish, or start another key"};
  return lock;
}

// Pushes what salvage reads into the new port, and counts.
class Carrier {
 public:
  Carrier(detail::PortImpl& p, PortTakeover& t)
      : p_(p), t_(t), max_payload_(p.control().config.max_payload) {}

  // A record of the dead `in` or due lane: [meta][payload].
  void keep(std::span<const std::byte> record) {
    MessageView m;
    std::uint64_t stamp;  // read, not used here
    if (!MetaCodec::decode(record, m.meta, m.payload, stamp)) {
      ++t_.refused;  // as the consumer does: a peer wrote garbage
      return;
    }
    if (!fits(m.payload.size())) return;
    if (!in_) open(in_, in_chain(p_.ns, p_.control_name, p_.control(), p_.control().config));
    if (!*in_) return lost(in_->error());
    // Never wait: nobody consumes the new port yet.
    if (auto st = (*in_)->push({}, record, {.deadline = lockfree::kDontWait}); !st) {
      if (st.code() != Errc::timeout) return lost(std::move(st).error());
      return overflow(record);
    }
    ++t_.salvaged;
  }

  // No room in the new `in` (the dead due lane and ring together can hold more than `buffer`,
  // or the new buffer is smaller): re-queued as a push_after request due at once, so the new
  // timer delivers it as space frees. Kept, though it may arrive after later pushes.
  void overflow(std::span<const std::byte> record) {
    const std::int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count();
    request_.resize(kDueStamp + record.size());
    std::memcpy(request_.data(), &now_ns, kDueStamp);
    std::memcpy(request_.data() + kDueStamp, record.data(), record.size());
    if (!later_)
      open(later_, later_chain(p_.ns, p_.control_name, p_.control(), p_.control().config));
    if (!*later_) return lost(later_->error());
    if (auto st = (*later_)->push({}, request_, {}); !st) return lost(std::move(st).error());
    ++t_.salvaged;
    ++t_.salvaged_after;  // it travels as a push_after request now
    ++overflowed_;
  }

  // A push_after message the dead timer held: re-queued as a request due when it was.
  void requeue_held(std::int64_t due_ns, std::span<const std::byte> message) {
    request_.resize(kDueStamp + message.size());
    std::memcpy(request_.data(), &due_ns, kDueStamp);
    if (!message.empty()) std::memcpy(request_.data() + kDueStamp, message.data(), message.size());
    requeue(request_);
  }

  // A push_after request of the dead `later`: [due stamp][meta][payload], re-queued as it is.
  void requeue(std::span<const std::byte> request) {
    MessageView m;
    std::uint64_t stamp;  // read, not used here
    if (request.size() < kDueStamp ||
        !MetaCodec::decode(request.subspan(kDueStamp), m.meta, m.payload, stamp)) {
      ++t_.refused;
      return;
    }
    if (!fits(m.payload.size())) return;
    if (!later_)
      open(later_, later_chain(p_.ns, p_.control_name, p_.control(), p_.control().config));
    if (!*later_) return lost(later_->error());
    // The request chain is unbounded: this never waits.
    if (auto st = (*later_)->push({}, request, {}); !st) return lost(std::move(st).error());
    ++t_.salvaged;
    ++t_.salvaged_after;
  }

  // Why messages did not fit, for the report's note.
  void explain() const {
    if (too_large_)
      add_note(t_, messages(too_large_) + " over this port's max_payload of " +
                       std::to_string(max_payload_) + " bytes");
    if (overflowed_)
      add_note(t_, messages(overflowed_) + " past this port's buffer of " +
                       std::to_string(p_.control().config.buffer) +
                       " re-queued as push_after messages due at once (kept; they may arrive "
                       "after later pushes)");
    if (no_room_)
      add_note(t_, messages(no_room_) + " past this port's buffer of " +
                       std::to_string(p_.control().config.buffer) + " messages");
    if (other_)
      add_note(t_, messages(other_) + " could not be pushed into this port (" + other_why_ + ")");
  }

 private:
  using Opened = std::optional<Result<lockfree::ChainPusher>>;
  static void open(Opened& pusher, lockfree::ChainSpec spec) {
    pusher.emplace(lockfree::ChainPusher::open(std::move(spec)));
  }
  bool fits(std::size_t payload) {
    if (payload <= max_payload_) return true;
    ++t_.lost_unfit;
    ++too_large_;
    return false;
  }
  void lost(const Error& e) {
    ++t_.lost_unfit;
    if (e.code == Errc::timeout) {
      ++no_room_;
    } else {
      ++other_;
      if (other_why_.empty()) other_why_ = e.message;
    }
  }

  detail::PortImpl& p_;
  PortTakeover& t_;
  const std::uint32_t max_payload_;
  Opened in_, later_;  // our chains, as a pusher (their slots go back when salvage ends)
  std::uint64_t too_large_ = 0, no_room_ = 0, other_ = 0, overflowed_ = 0;
  std::vector<std::byte> request_;  // an overflowing record, framed as a push_after request
  std::string other_why_;
};

// Adds what a reading of one dead ring (or chain) could not read to the report.
void account(PortTakeover& t, const lockfree::OrphanRead& r, const std::string& what) {
  t.lost_unread += r.unread;
  if (!r.status) {
    add_note(t, what + " could not be read" + (r.read ? " to its end" : "") + " (" +
                    r.status.error().message + ")" +
                    (r.unread ? ": " + messages(r.unread) + " in it lost"
                              : ": how much it held is unknown"));
  } else if (r.unread) {
    add_note(t, messages(r.unread) + " of " + what +
                    " lost behind a live pusher's claim or publication still under way after " +
                    std::to_string(std::chrono::milliseconds(kLiveClaimPatience).count()) + " ms");
  }
}

void publish(PortControl& c, const PortTakeover& t) {
  TakeoverLine& l = c.takeover;
  // relaxed: written once before the port is registered (the registry's release publishes it).
  l.dead_owner.store(static_cast<std::uint32_t>(t.dead_owner), std::memory_order_relaxed);
  l.salvaged.store(t.salvaged, std::memory_order_relaxed);
  l.salvaged_after.store(t.salvaged_after, std::memory_order_relaxed);
  l.lost_timer_held.store(t.lost_timer_held, std::memory_order_relaxed);
  l.lost_unfit.store(t.lost_unfit, std::memory_order_relaxed);
  l.lost_unread.store(t.lost_unread, std::memory_order_relaxed);
  l.refused.store(t.refused, std::memory_order_relaxed);
}

// Reads the claimed dead port into p (the order is at the top of this file).
void carry(detail::PortImpl& p, PortTakeover& t, PortControl& dead, const PortConfig& cfg,
           const registry::PortEntry& entry) {
  const auto give_up = Clock::now() + kLiveClaimPatience;
  const shm::ProcessId owner{cfg.owner_pid, cfg.owner_start_time};
  Carrier carrier(p, t);
  auto keep = [&](std::span<const std::byte> r) { carrier.keep(r); };
  std::optional<std::uint64_t> due_end;  // where the dead due lane's records end, if known
  {
    auto due = lockfree::OrphanRing::open(p.ns, due_name(entry.segment), owner);
    lockfree::OrphanRead r;
    if (due) {
      r = due->read(keep, give_up);
      if (r.status && !r.unread) due_end = r.end;
    } else {
      r.status = std::move(due).error();
    }
    account(t, r, "the dead port's due lane (push_after messages already due)");
  }
  account(
      t,
      lockfree::read_orphan_chain(in_chain(p.ns, entry.segment, dead, cfg), owner, keep, give_up),
      "the dead port's ring");

  // What the dead timer held, from its pages, with their due times. A message it was pushing
  // into the due lane is there if the lane's records reach past where it went; if the lane
  // could not be read, it is carried over from the pages (at least once, never lost).
  const port::HeldRead held = port::read_held(
      p.ns, entry.segment, cfg.max_payload + static_cast<std::uint32_t>(kMetaWireMax),
      due_end.value_or(kNoDuePos));
  std::set<std::pair<std::uint64_t, std::uint64_t>> taken;  // `later` requests already held
  for (const port::HeldMessage& m : held.pending) {
    carrier.requeue_held(m.due_ns, m.message);
    taken.emplace(m.src.link, m.src.at);
  }
  auto already_held = [&](lockfree::LinkId link, lockfree::Cursor at) {
    return taken.contains({link.pack(), at.pack()});
  };
  account(t,
          lockfree::read_orphan_chain(
              later_chain(p.ns, entry.segment, dead, cfg), owner,
              [&](std::span<const std::byte> r, lockfree::LinkId link, lockfree::Cursor at) {
                // The timer died after taking this request and before handing its space back:
                // the pages hold it, once is enough.
                if (!already_held(link, at)) carrier.requeue(r);
              },
              give_up),
          "the dead port's push_after requests");
  carrier.explain();
  if (t.refused) add_note(t, messages(t.refused) + " whose meta did not parse (refused)");

  if (held.unreadable_pages) {
    // relaxed: the dead timer's last count; nothing races it.
    const std::uint64_t count = dead.timer.pending.load(std::memory_order_relaxed);
    const std::uint64_t lost = count > held.pending.size() ? count - held.pending.size() : 0;
    t.lost_timer_held = std::min<std::uint64_t>(lost, kTimerHeldMax);
    add_note(t, std::to_string(held.unreadable_pages) + " page" +
                    (held.unreadable_pages == 1 ? "" : "s") +
                    " of the push_after messages its timer held could not be read (" + held.why +
                    "): " + messages(t.lost_timer_held) + " lost");
  }
}

}  // namespace

Result<Salvage> salvage(detail::PortImpl& p, const registry::PortEntry& dead) {
  Salvage s;
  PortTakeover& t = s.report;
  t.taken_over = true;
  t.dead_owner = static_cast<pid_t>(dead.owner.pid);
  s.dead_control = dead.segment;
  const std::string where = "the dead owner's port /dev/shm/bloccs." + p.ns + "." + dead.segment;
  auto unknown = [&](const std::string& why) {
    add_note(t, where + " " + why + ": nothing was carried over, and how much it held is unknown");
    publish(p.control(), t);
  };
  auto seg = shm::Segment::open(p.ns, dead.segment, shm::SegmentKind::port);
  if (!seg) {
    unknown("could not be opened (" + seg.error().message + ")");
    return s;
  }
  if (seg->size() != sizeof(PortControl)) {
    unknown("is " + std::to_string(seg->size()) + " bytes, not a port of this version");
    return s;
  }
  auto& shared = *reinterpret_cast<PortControl*>(seg->base());
  const PortConfig cfg = shared.config;  // copied once: only the copy is used
  if (!config_matches(cfg, dead)) {
    unknown("does not match its registration");
    return s;
  }
  auto claimed = claim(shared, p.key);
  if (!claimed) return std::move(claimed).error();
  s.claim.emplace(std::move(seg).value());
  s.claim_lock = std::move(claimed).value();
  // Pushers that find a link full make no further one (they get no_producer). seq_cst: as
  // stop() stores it (chain.cpp's closing()).
  shared.chains.closing.store(1, std::memory_order_seq_cst);
  carry(p, t, shared, cfg, dead);
  publish(p.control(), t);
  return s;
}

bool holds_nothing(const std::string& ns, const registry::PortEntry& dead) {
  // A slot naming a segment that is not its key's own port: nothing of its is kept by it.
  if (!is_control_name(dead.segment, dead.key, dead.owner.pid)) return true;
  auto seg = shm::Segment::open(ns, dead.segment, shm::SegmentKind::port, {.read_only = true});
  if (!seg) return seg.code() == Errc::not_found;
  if (seg->size() != sizeof(PortControl)) return false;
  auto& shared = *reinterpret_cast<PortControl*>(seg->base());
  const PortConfig cfg = shared.config;  // copied once: only the copy is used
  if (!config_matches(cfg, dead)) return false;
  // relaxed: the dead timer's last word.
  if (shared.timer.pending.load(std::memory_order_relaxed) != 0) return false;
  auto in = lockfree::chain_stats(in_chain(ns, dead.segment, shared, cfg));
  auto later = lockfree::chain_stats(later_chain(ns, dead.segment, shared, cfg));
  auto due =
      shm::Segment::open(ns, due_name(dead.segment), shm::SegmentKind::ring, {.read_only = true});
  if (!in || !later || !due) return false;
  auto due_cfg = lockfree::validated_config(*due);
  return due_cfg && in->depth == 0 && later->depth == 0 &&
         lockfree::read_stats(*due, *due_cfg).depth == 0;
}

void release(Salvage& s) noexcept {
  // Our claim ends; the next claimant reads the port as it was (we only read it... and sealed
  // it, which it finds done).
  s.claim_lock.release();
  s.claim.reset();
}

}  // namespace bloccs::port
