// The pusher side of a ring: attach, claim, write, commit, and park when full.
#include <string>

#include "lockfree/cpu_relax.hpp"
#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring.hpp"
#include "shm/process.hpp"
#include "shm/stop_request.hpp"

namespace bloccs::lockfree {
namespace {

// A parked pusher looks at the owner this often, so that it never sleeps on a dead ring.
constexpr auto kOwnerCheckInterval = std::chrono::milliseconds(100);

// Every record starts 8-aligned, so a tail that is not was written by no pusher; following it
// would put headers at misaligned addresses (split locks; found by the ring_records fuzz target).
Error misaligned_tail(const shm::Segment& seg, Cursor tail) {
  return {Errc::corrupt, "ring /dev/shm/" + seg.name() + " has its tail at byte " +
                             std::to_string(tail.pos) +
                             ", where no record can start (not 8-byte aligned); nothing was "
                             "enqueued. Remove it (shmctl rm) and restart its owner"};
}

// Where an SPSC pusher resumes. The shared tail lags the true one if a predecessor was killed
// between publishing its last record and storing the tail: step over committed records. The
// word at the true tail is always zero (the terminator), so this stops there.
Result<Cursor> spsc_resume_point(const shm::Segment& seg, const RingConfig& cfg) {
  auto* c = reinterpret_cast<RingControl*>(seg.base());
  std::byte* data = seg.base() + cfg.data_offset;
  // acquire: with the headers' acquire below, the predecessor's last writes are visible.
  Cursor t = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
  if (t.pos % kRecordHeader != 0) return misaligned_tail(seg, t);
  for (std::uint64_t walked = 0;;) {
    const std::uint64_t off = t.pos & (cfg.capacity - 1);
    const std::uint64_t h = header_word(data, off).load(std::memory_order_acquire);
    if (!header_committed(h)) return t;
    const std::uint64_t size = record_size(header_length(h));
    walked += size;
    if (!committed_header_valid(h, off, cfg.capacity, cfg.max_payload, cfg.slot_count) ||
        walked > cfg.capacity)
      return Error{Errc::corrupt, "ring /dev/shm/" + seg.name() +
                                      " has committed records past its tail that do not fit; "
                                      "remove it (shmctl rm) and restart its owner"};
    t = header_type(h) == kTypePad ? t.skipped(size) : t.advanced(size);
  }
}

}  // namespace

Result<RingPusher> RingPusher::open(std::string_view ns, std::string_view name) {
  auto seg = shm::Segment::open(ns, name, shm::SegmentKind::ring);
  if (!seg) return std::move(seg).error();
  auto validated = validated_config(*seg);
  if (!validated) return std::move(validated).error();
  const RingConfig cfg = *validated;
  auto* c = reinterpret_cast<RingControl*>(seg->base());
  auto* slots = reinterpret_cast<PusherSlot*>(seg->base() + cfg.slots_offset);
  // acquire: the consumer's zeroing of everything before head is visible to our writes.
  const Cursor head = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
  // acquire: every claim before it, with its claimant's intent (release sequence of the CASes).
  const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
  auto slot = attach_slot({slots, cfg.slot_count}, head.pos, tail.pos, seg->name(),
                          cfg.kind == static_cast<std::uint32_t>(RingKind::spsc));
  if (!slot) return std::move(slot).error();
  RingPusher pusher(std::move(seg).value(), cfg, std::move(slot).value());
  if (cfg.kind == static_cast<std::uint32_t>(RingKind::spsc)) {
    auto resume = spsc_resume_point(pusher.segment_, cfg);
    if (!resume) return std::move(resume).error();  // the pusher's destructor frees the slot
    pusher.spsc_tail_ = *resume;
    // relaxed: only tools and successors read it (see push_spsc).
    c->producer.tail.store(resume->pack(), std::memory_order_relaxed);
  }
  return pusher;
}

RingPusher::RingPusher(shm::Segment segment, const RingConfig& config, AttachedSlot slot)
    : segment_(std::move(segment)),
      cfg_(config),
      slot_(std::move(slot)),
      fork_generation_(shm::fork_generation()),
      spsc_(config.kind == static_cast<std::uint32_t>(RingKind::spsc)) {
  RingControl* c = control();
  // acquire: the consumer's head as last published, and the tail as a predecessor left it
  // (open() then steps an SPSC tail over a record published without its tail store).
  cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
  spsc_tail_ = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
}

RingPusher::RingPusher(RingPusher&& other) noexcept
    : segment_(std::move(other.segment_)),
      cfg_(other.cfg_),
      slot_(std::move(other.slot_)),
      fork_generation_(other.fork_generation_),
      spsc_(other.spsc_),
      cached_head_(other.cached_head_),
      spsc_tail_(other.spsc_tail_),
      spin_(other.spin_) {}

RingPusher::~RingPusher() {
  // A moved-from pusher holds nothing; a forked child's copy holds its parent's slot (holds()
  // is false there) and leaves it alone.
  if (segment_.base() != nullptr && slot_.lock.holds()) detach_slot(my_slot(), slot_);
}

PusherSlot& RingPusher::my_slot() const noexcept {
  return reinterpret_cast<PusherSlot*>(segment_.base() + cfg_.slots_offset)[slot_.index];
}

bool RingPusher::fits(Cursor tail, std::uint64_t bytes) const noexcept {
  const RingConfig& cfg = cfg_;
  // The record, the pad before it if it would run past the end, and kRecordHeader of slack:
  // the SPSC terminator word after the record must be free too.
  const std::uint64_t claim =
      pad_before(tail.pos & (cfg.capacity - 1), bytes, cfg.capacity) + bytes;
  return pos_distance(tail.pos, cached_head_.pos) + claim + kRecordHeader <= cfg.capacity &&
         count_distance(tail.count, cached_head_.count) < cfg.buffer;
}

// Inlined into push(): the hot path pays no calls between its steps.
[[gnu::always_inline]] inline void RingPusher::write_payload(std::uint64_t off,
                                                             std::span<const std::byte> head,
                                                             std::span<const std::byte> body) {
  std::byte* at = data() + off + kRecordHeader;  // records never wrap: one span
  const std::size_t total = head.size() + body.size();
  // The consumer polls the header's cache line. Write the bytes beyond that line first, and
  // the ones sharing it last, right before the header: the line is then taken from the
  // consumer once, not once for the payload and again for the header.
  const std::size_t in_header_line = std::min<std::size_t>(
      total, static_cast<std::size_t>((off | 63) + 1 - (off + kRecordHeader)));
  // Copies bytes [from, to) of head + body to their place in the record.
  auto copy = [&](std::size_t from, std::size_t to) {
    const std::size_t split = std::min(std::max(from, head.size()), to);
    if (from < split) std::memcpy(at + from, head.data() + from, split - from);
    if (split < to) std::memcpy(at + split, body.data() + (split - head.size()), to - split);
  };
  copy(in_header_line, total);
  copy(0, in_header_line);
}

Status RingPusher::check_push(std::size_t len) const {
  if (fork_generation_ != shm::fork_generation())
    return Error{Errc::wrong_process,
                 "this pusher of ring /dev/shm/" + segment_.name() +
                     " was opened before a fork and belongs to the parent; open a new "
                     "RingPusher in the child"};
  // relaxed: a flag the consumer sets once; the line is ours on every push anyway.
  if (control()->producer.damaged.load(std::memory_order_relaxed) != 0) return damaged_error();
  if (len > cfg_.max_payload)
    return Error{Errc::payload_too_large,
                 "payload of " + std::to_string(len) + " bytes exceeds the ring's max_payload of " +
                     std::to_string(cfg_.max_payload) +
                     "; split it, or create the ring with a larger max_payload"};
  return {};
}

Status RingPusher::push_spsc(std::span<const std::byte> head, std::span<const std::byte> body,
                             const Patience& patience) {
  const std::size_t len = head.size() + body.size();
  if (!may_push(len)) [[unlikely]]
    return check_push(len);
  RingClaim claim;
  if (Status st = claim_spsc(static_cast<std::uint32_t>(len), patience, claim); !st) [[unlikely]]
    return st;
  write_payload(claim.rec, head, body);
  return checked(commit_spsc(claim, claim.len));
}

Status RingPusher::push_mpsc(std::span<const std::byte> head, std::span<const std::byte> body,
                             const Patience& patience) {
  const std::size_t len = head.size() + body.size();
  if (!may_push(len)) [[unlikely]]
    return check_push(len);
  RingClaim claim;
  if (Status st = claim_mpsc(static_cast<std::uint32_t>(len), patience, claim); !st) [[unlikely]]
    return st;
  write_payload(claim.rec, head, body);
  return checked(commit_mpsc(claim, claim.len));
}

Status RingPusher::push_batch(std::span<const std::byte> head,
                              std::span<const std::span<const std::byte>> bodies, Patience patience,
                              std::size_t& done) {
  for (std::size_t i = done; i < bodies.size(); ++i)
    if (!may_push(head.size() + bodies[i].size()))
      return check_push(head.size() + bodies[i].size());
  // A timeout counts from the call, for the whole batch (no clock read without one).
  const Deadline deadline = patience.resolve();
  // One branch on the kind per batch; each kind's loop knows its own.
  return cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc)
             ? push_batch_spsc(head, bodies, deadline, done)
             : push_batch_mpsc(head, bodies, deadline, done);
}

Status RingPusher::push_batch_spsc(std::span<const std::byte> head,
                                   std::span<const std::span<const std::byte>> bodies,
                                   Deadline deadline, std::size_t& done) {
  while (done < bodies.size()) {
    const std::uint64_t bytes = record_size(head.size() + bodies[done].size());
    if (!fits(spsc_tail_, bytes)) {
      // acquire: pairs with the consumer's release of head; freed space is ours to overwrite.
      cached_head_ = Cursor::unpack(control()->consumer.head.load(std::memory_order_acquire));
      if (!fits(spsc_tail_, bytes)) {
        if (auto st = wait_for_space(spsc_tail_, bytes, deadline); !st) return st;
      }
    }
    if (auto st = checked(publish_group_spsc(head, bodies, done)); !st) return st;
  }
  return {};
}

// One claim per record, so that recovery can skip a dead pusher's claims one by one
// (ring_layout.hpp); the consumer is woken once per group: after the last record, and before
// parking for room (it may be asleep beside the records it is to free room from).
Status RingPusher::push_batch_mpsc(std::span<const std::byte> head,
                                   std::span<const std::span<const std::byte>> bodies,
                                   Deadline deadline, std::size_t& done) {
  while (done < bodies.size()) {
    const auto len = static_cast<std::uint32_t>(head.size() + bodies[done].size());
    RingClaim claim;
    Status st = claim_mpsc(len, {.deadline = kDontWait}, claim);
    if (!st && st.code() == Errc::timeout) {
      finish_mpsc();
      st = claim_mpsc(len, {.deadline = deadline}, claim);
    }
    if (!st) return st;
    write_payload(claim.rec, head, bodies[done]);
    // release: commit; the consumer's acquire of the header makes the payload visible.
    header_word(data(), claim.rec)
        .store(make_record_header(len, slot_.index, true), std::memory_order_release);
    // release: a consumer that sees the slot idle also sees the commit above.
    my_slot().intent.store(0, std::memory_order_release);
    ++done;
    if (segment_.damaged()) [[unlikely]]
      return segment_.damage_error();
  }
  finish_mpsc();
  return {};
}

Status RingPusher::publish_group_spsc(std::span<const std::byte> head,
                                      std::span<const std::span<const std::byte>> bodies,
                                      std::size_t& done) {
  RingControl* c = control();
  const std::uint64_t mask = cfg_.capacity - 1;
  const Cursor first = spsc_tail_;
  Cursor t = first;
  std::uint64_t first_word = 0;
  std::size_t i = done;
  // Every record but the first is written committed; the first word stays zero until the CAS
  // below, so the consumer sees none of them before it sees all of them.
  for (; i < bodies.size(); ++i) {
    const auto len = static_cast<std::uint32_t>(head.size() + bodies[i].size());
    const std::uint64_t bytes = record_size(len);
    if (!fits(t, bytes)) break;
    const std::uint64_t off = t.pos & mask;
    const std::uint64_t pad = pad_before(off, bytes, cfg_.capacity);
    const std::uint64_t rec = pad ? 0 : off;
    // relaxed: the terminator (see claim_spsc); the records are published by the CAS.
    header_word(data(), (rec + bytes) & mask).store(0, std::memory_order_relaxed);
    write_payload(rec, head, bodies[i]);
    const std::uint64_t header = make_record_header(len, 0, true);
    const std::uint64_t pad_header =
        make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), 0);
    if (i == done) {
      if (pad) header_word(data(), 0).store(header, std::memory_order_relaxed);  // relaxed: ditto
      first_word = pad ? pad_header : header;
    } else {
      // relaxed: published by the CAS on the group's first word.
      if (pad) header_word(data(), off).store(pad_header, std::memory_order_relaxed);
      header_word(data(), rec).store(header, std::memory_order_relaxed);
    }
    t = t.advanced(pad + bytes);
  }
  // seq_cst CAS from zero: publishes the group (see commit_spsc).
  std::uint64_t found = 0;
  if (!header_word(data(), first.pos & mask)
           .compare_exchange_strong(found, first_word, std::memory_order_seq_cst,
                                    std::memory_order_relaxed))
    return tail_word_error(found, first.pos);
  done = i;
  spsc_tail_ = t;
  // release: as in commit_spsc.
  c->producer.tail.store(spsc_tail_.pack(), std::memory_order_release);
  wake(c->data.line, 1, std::memory_order_seq_cst);
  return {};
}

Result<RingLoan> RingPusher::loan(std::uint32_t len, Patience patience) {
  if (!may_push(len)) return std::move(check_push(len)).error();
  RingClaim claim;
  Status st = cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc)
                  ? claim_spsc(len, patience, claim)
                  : claim_mpsc(len, patience, claim);
  if (!st) return std::move(st).error();
  return RingLoan{claim, {data() + claim.rec + kRecordHeader, len}};
}

Status RingPusher::checked(Status st) const {
  // A fault in our mapping (the ring was cut short, shm/fence.hpp) left zeros behind: whatever
  // this push wrote reached nobody.
  if (segment_.damaged()) [[unlikely]]
    return segment_.damage_error();
  return st;
}

Status RingPusher::commit(RingLoan& loan, std::uint32_t used) {
  if (used > loan.claim.len)
    return Error{Errc::bad_loan, "a loan of " + std::to_string(loan.claim.len) +
                                     " bytes cannot commit " + std::to_string(used) +
                                     "; commit at most what was loaned"};
  return checked(cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc)
                     ? commit_spsc(loan.claim, used)
                     : commit_mpsc(loan.claim, used));
}

void RingPusher::abort(RingLoan& loan) noexcept {
  RingControl* c = control();
  // relaxed: a statistic; aborts are rare and their count orders nothing.
  c->counters.aborted.fetch_add(1, std::memory_order_relaxed);
  if (cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc)) return;  // nothing was shared yet
  // release: the consumer's acquire sees the record as aborted (and skips it by its length).
  header_word(data(), loan.claim.rec)
      .store(make_typed_header(kTypeAborted, loan.claim.len, slot_.index),
             std::memory_order_release);
  finish_mpsc();
}

// Inlined into push(): the hot path pays no calls between its steps.
[[gnu::always_inline]] inline Status RingPusher::claim_spsc(std::uint32_t len,
                                                            const Patience& patience,
                                                            RingClaim& claim) {
  RingControl* c = control();
  const std::uint64_t bytes = record_size(len);
  const Cursor tail = spsc_tail_;
  if (!fits(tail, bytes)) {
    // acquire: pairs with the consumer's release of head; freed space is ours to overwrite.
    cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
    if (!fits(tail, bytes)) {
      if (auto st = wait_for_space(tail, bytes, patience.resolve()); !st) return st;
    }
  }
  const std::uint64_t mask = cfg_.capacity - 1;
  const std::uint64_t off = tail.pos & mask;
  const std::uint64_t pad = pad_before(off, bytes, cfg_.capacity);
  claim = RingClaim{tail, pad ? 0 : off, len, pad != 0};
  // relaxed: the terminator. The word after our record reads zero ("nothing yet") before the
  // commit's CAS publishes the record, so the consumer stops there, whatever the last lap left.
  // Written now, well before the CAS: a consumer that has caught up polls the line it lies on
  // next, and should not have it taken away right before the record lands. Nothing else is
  // written yet: the pusher is the only writer of the tail, and the claim becomes visible
  // whole at commit.
  header_word(data(), (claim.rec + bytes) & mask).store(0, std::memory_order_relaxed);
  return {};
}

// Inlined into push(): the hot path pays no calls between its steps.
[[gnu::always_inline]] inline Status RingPusher::commit_spsc(const RingClaim& claim,
                                                             std::uint32_t used) {
  RingControl* c = control();
  const std::uint64_t mask = cfg_.capacity - 1;
  const std::uint64_t bytes = record_size(used);
  // relaxed: a loan committed shorter ends earlier: its terminator moves there (see claim_spsc).
  if (bytes != record_size(claim.len))
    header_word(data(), (claim.rec + bytes) & mask).store(0, std::memory_order_relaxed);
  std::uint64_t first = make_record_header(used, 0, true);
  std::uint64_t claimed = bytes;
  if (claim.padded) {
    // relaxed: published with the pad by the CAS below; read only by a consumer past the pad.
    header_word(data(), 0).store(first, std::memory_order_relaxed);
    const std::uint64_t pad = cfg_.capacity - (claim.at.pos & mask);
    first = make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), 0);
    claimed += pad;
  }
  // seq_cst CAS from zero: publishes the claim (pad, record, terminator) to the consumer's
  // acquire, and fails only where a take-over sealed the ring (ring_layout.hpp, seal), so that
  // no record goes where nobody will read it. It is also the Dekker store before the wake below
  // (a locked instruction, as the fence it replaces was).
  std::uint64_t found = 0;
  if (!header_word(data(), claim.at.pos & mask)
           .compare_exchange_strong(found, first, std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
    return tail_word_error(found, claim.at.pos);
  }
  spsc_tail_ = claim.at.advanced(claimed);
  // release: the tail tells tools the depth, a successor where to resume, and a waiting consumer
  // that the record at its head was published (a consumer that sees the tail past its head and
  // no record there knows the ring is damaged); it reads records by their headers, never by this.
  c->producer.tail.store(spsc_tail_.pack(), std::memory_order_release);
  wake(c->data.line, 1, std::memory_order_seq_cst);
  return {};
}

Error RingPusher::tail_word_error(std::uint64_t found, std::uint64_t pos) const {
  if (found == kSealHeader) return sealed_error();
  return {Errc::corrupt, "ring /dev/shm/" + segment_.name() + " holds word " +
                             std::to_string(found) + " at its tail (byte " + std::to_string(pos) +
                             "), where only zero can be: the ring is damaged; its owner must "
                             "stop and start the port again"};
}

Error RingPusher::sealed_error() const {
  return {Errc::closed, "ring /dev/shm/" + segment_.name() +
                            " was sealed: its consumer died and the port's next owner has read "
                            "what it held; nothing was enqueued. Push again: the key's new "
                            "owner takes it"};
}

Error RingPusher::damaged_error() const {
  return {Errc::corrupt, "ring /dev/shm/" + segment_.name() +
                             " was found damaged by its consumer (a record or a cursor no pusher "
                             "could have written); nothing was enqueued. Its owner must stop "
                             "and start the port again"};
}

bool RingPusher::sealed() const noexcept {
  RingControl* c = control();
  // acquire: with the head's acquire, a tail seen sealed carries every claim before the seal.
  const Cursor head = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
  return tail_sealed(Cursor::unpack(c->producer.tail.load(std::memory_order_acquire)), head);
}

// Inlined into push(): the hot path pays no calls between its steps.
[[gnu::always_inline]] inline Status RingPusher::claim_mpsc(std::uint32_t len,
                                                            const Patience& patience,
                                                            RingClaim& claim) {
  RingControl* c = control();
  PusherSlot& slot = my_slot();
  const std::uint64_t mask = cfg_.capacity - 1;
  const std::uint64_t bytes = record_size(len);
  Deadline deadline{};  // resolved when the ring is first found full
  // relaxed: only a first guess for the CAS, which validates it.
  std::uint64_t observed = c->producer.tail.load(std::memory_order_relaxed);
  Cursor tail;
  std::uint64_t pad;
  for (;;) {
    tail = Cursor::unpack(observed);
    if (tail.pos % kRecordHeader != 0) [[unlikely]]
      return misaligned_tail(segment_, tail);
    if (!fits(tail, bytes)) {
      // acquire: pairs with the consumer's release of head; freed space is ours to overwrite.
      cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
      if (!fits(tail, bytes)) {
        slot.intent.store(0, std::memory_order_relaxed);  // relaxed: never park with an intent
        if (deadline == Deadline{}) deadline = patience.resolve();
        if (auto st = wait_for_space(tail, bytes, deadline); !st) return st;
        observed = c->producer.tail.load(std::memory_order_relaxed);  // relaxed: the CAS checks
        continue;
      }
    }
    pad = pad_before(tail.pos & mask, bytes, cfg_.capacity);
    // relaxed: published to the consumer by the CAS's release below.
    slot.intent.store(kIntentActive | tail.pos, std::memory_order_relaxed);
    // release: our intent is visible to whoever acquires this tail or a later one (recovery).
    if (c->producer.tail.compare_exchange_weak(observed, tail.advanced(pad + bytes).pack(),
                                               std::memory_order_release,
                                               std::memory_order_relaxed))
      break;
  }
  claim = RingClaim{tail, pad ? 0 : tail.pos & mask, len, pad != 0};
  if (pad) {
    // relaxed: our claim now starts at the record, for recovery once the consumer is past the
    // pad; the pad's release below publishes it.
    slot.intent.store(kIntentActive | ((tail.pos + pad) & kPosMask), std::memory_order_relaxed);
    // release: a consumer that reads the pad sees the intent above.
    header_word(data(), tail.pos & mask)
        .store(make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader),
                                 slot_.index),
               std::memory_order_release);
  }
  // relaxed: the uncommitted header only names the claimant and what it claimed, for recovery
  // if we die now (it skips the whole claim by that length, a loan's unused tail included).
  header_word(data(), claim.rec)
      .store(make_record_header(len, slot_.index, false), std::memory_order_relaxed);
  // The header must reach memory before the payload (recovery reads "header zero" as "nothing
  // written"): keep the compiler from sinking it; x86-64 keeps stores in program order.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return {};
}

// Inlined into push(): the hot path pays no calls between its steps.
[[gnu::always_inline]] inline Status RingPusher::commit_mpsc(const RingClaim& claim,
                                                             std::uint32_t used) {
  const std::uint64_t unused = record_size(claim.len) - record_size(used);
  if (unused) {  // a loan committed shorter: its tail becomes a pad the consumer skips
    // relaxed: published by the commit's release below; recovery skips it with the claim.
    header_word(data(), claim.rec + record_size(used))
        .store(make_typed_header(kTypePad, static_cast<std::uint32_t>(unused - kRecordHeader),
                                 slot_.index),
               std::memory_order_relaxed);
  }
  // release: commit; the consumer's acquire of the header makes the payload visible.
  header_word(data(), claim.rec)
      .store(make_record_header(used, slot_.index, true), std::memory_order_release);
  finish_mpsc();
  return {};
}

void RingPusher::finish_mpsc() noexcept {
  // release: a consumer that sees the slot idle also sees the commit before.
  my_slot().intent.store(0, std::memory_order_release);
  // seq_cst fence: Dekker with a parking consumer (see futex.hpp).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake(control()->data.line, 1);
}

void RingPusher::seal() noexcept {
  RingControl* c = control();
  // relaxed: a first guess for the CAS, which validates it.
  std::uint64_t observed = c->producer.tail.load(std::memory_order_relaxed);
  for (;;) {
    Cursor t = Cursor::unpack(observed);
    // acquire: the head as the consumer published it; any head at or behind the tail will do.
    if (tail_sealed(t, Cursor::unpack(c->consumer.head.load(std::memory_order_acquire)))) break;
    t.count = (t.count + kSealCount) & kCountMask;
    // seq_cst: a release for the consumer's acquire of the sealed tail (every claim before
    // it included), and the Dekker store before the wake below. An SPSC ring has no other
    // tail writer, so the CAS succeeds first time there.
    if (c->producer.tail.compare_exchange_weak(observed, t.pack(), std::memory_order_seq_cst,
                                               std::memory_order_relaxed))
      break;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake(c->data.line, 1);
}

Status RingPusher::wait_for_space(Cursor tail, std::uint64_t bytes, Deadline deadline) {
  RingControl* c = control();
  const bool spsc = cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc);
  auto current_tail = [&] {
    // relaxed: MPSC re-reads the tail only to judge fit; the CAS validates it later.
    return spsc ? tail : Cursor::unpack(c->producer.tail.load(std::memory_order_relaxed));
  };
  auto timeout = [] {
    return Error{Errc::timeout, "the ring stayed full until the deadline; nothing was enqueued"};
  };
  auto closed = [&] {
    // relaxed: a flag that orders nothing; the re-check after parking is seq_cst.
    return c->counters.closed.load(std::memory_order_relaxed) != 0;
  };
  auto closed_error = [&] {
    return Error{Errc::closed, "the owner closed ring /dev/shm/" + segment_.name() +
                                   " (its port stopped) while this push waited for space; "
                                   "nothing was enqueued"};
  };
  // A take-over (or, in a chain, a pusher that moved on) sealed the ring: it never has room again.
  auto now_sealed = [&] { return tail_sealed(current_tail(), cached_head_); };
  if (now_sealed()) return sealed_error();
  if (deadline == kDontWait) return closed() ? closed_error() : timeout();

  const auto spin_end = Clock::now() + spin_.pusher;
  for (unsigned i = 1;; ++i) {
    // acquire: pairs with the consumer's release of head.
    cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
    const Cursor now_tail = current_tail();
    if (fits(now_tail, bytes)) return {};
    if (tail_sealed(now_tail, cached_head_)) return sealed_error();
    // Never trust shared memory: a head ahead of the tail would make us wait for ever. (The
    // head was read first, so a tail far ahead of it is only a stale view, not damage.)
    if (pos_before(now_tail.pos, cached_head_.pos))
      return Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() +
                                      " has its head ahead of its tail; the ring cannot be "
                                      "trusted, remove it (shmctl rm) and restart its owner"};
    if ((i & 63) == 0 || spin_.pusher.count() == 0) {
      if (segment_.damaged()) return segment_.damage_error();
      if (closed()) return closed_error();
      const auto now = Clock::now();
      if (now >= deadline) return timeout();
      if (now >= spin_end) break;
    }
    cpu_relax();
  }

  // Parked from here until we return, the owner checks between sleeps included: tools that
  // count parked pushers never see us leave and come back.
  const WaiterCount parked(c->space.line);
  for (;;) {
    const auto fit_now = [&] {
      // seq_cst: the Dekker re-check after arming (see futex.hpp); close() wakes us too.
      cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_seq_cst));
      return fits(current_tail(), bytes) || c->counters.closed.load(std::memory_order_seq_cst) ||
             shm::stop_requested();
    };
    // What ended the sleep (space, a close, a stop request, the owner check) is judged below.
    (void)park(c->space.line, fit_now, std::min(deadline, Clock::now() + kOwnerCheckInterval),
               nullptr, false);
    if (closed()) return closed_error();
    if (segment_.damaged()) return segment_.damage_error();
    // acquire: pairs with the consumer's release of head (it may have moved while we slept).
    cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
    if (fits(current_tail(), bytes)) return {};
    if (now_sealed()) return sealed_error();
    if (Clock::now() >= deadline) return timeout();
    if (shm::stop_requested()) return shm::stopping_error("nothing was enqueued");
    if (!shm::held(c->consumer_alive.lock))
      return Error{Errc::owner_dead, "the ring's owner (pid " + std::to_string(cfg_.owner_pid) +
                                         ") died while this push waited for space; nothing was "
                                         "enqueued. Restart the owner and push again"};
  }
}

}  // namespace bloccs::lockfree
