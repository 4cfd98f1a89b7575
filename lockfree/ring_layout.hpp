// SPDX-License-Identifier: Apache-2.0
// The shared-memory layout of a ring segment, drawn once. Offsets only: no pointers live here.
//
//   offset  size            what                                   written by
//   0       64              SegmentHeader (shm/segment.hpp)        creator, once
//   64      64              RingConfig                             creator, once
//   128     64              ConsumerLine: head cursor              consumer
//   192     64              ProducerLine: tail cursor              pusher(s)
//   256     64              data: WaitLine the consumer parks on   consumer arms, pushers wake
//   320     64              space: WaitLine pushers park on        pushers arm, consumer wakes
//   384     64              RingCounters, closed, chain successor  consumer (next: a pusher)
//   448     64              ConsumerAlive: the consumer's          the consumer's keeper thread
//                           liveness lock                          (and the kernel)
//   512     64 * slots      PusherSlot[slot_count]                 one per attached pusher
//   data    capacity        records, 8-byte aligned, contiguous    pusher(s), zeroed by consumer
//
// Each line sits on its own 64-byte cache line so that the consumer's stores never invalidate
// the line pushers spin on, and the reverse.
//
// Cursors pack a byte position and a message count into one 64-bit word, so one atomic store
// (SPSC) or one CAS (MPSC) moves both bounds together:
//   63                 40 39                                   0
//   +--------------------+--------------------------------------+
//   | count (mod 2^24)   | byte position (mod 2^40)             |
//   +--------------------+--------------------------------------+
// The ring is full when tail - head exceeds `buffer` messages or `capacity` bytes.
//
// A record is an 8-byte header, then the payload, padded to 8. A record never wraps: a claim
// that would run past the end of the data area starts with a pad record that fills the rest of
// it, and the record itself starts at offset 0 (as Aeron does). So every payload is read, and
// every loan written, in place. The pad belongs to the claim: one CAS (MPSC) or one publication
// (SPSC) takes both, and it is no message (the cursor's count moves by one for the claim).
//   63      62    56 55     48 47            32 31                      0
//   +-------+-------+---------+----------------+------------------------+
//   | commit| 0     | type    | pusher slot + 1| payload length         |
//   +-------+-------+---------+----------------+------------------------+
// An MPSC pusher stores the header without the commit bit right after claiming (so a claimed
// record is never all zeros once anything of it was written), copies the payload, then stores
// the header again with the commit bit. An SPSC pusher publishes a record whole, by one store
// of its header over the zero at the true tail (every record zeroes the word after it before it
// is published), and pays no read-modify-write for it.
//
// Sealing an SPSC ring (a take-over) without a read-modify-write on the pusher's side: the pusher
// announces each publication in the producer line's `in_push` (how many records) before it looks
// at `refused`, and clears it once they are published; the sealer sets `refused`'s seal bit, makes
// every CPU pass a full barrier (asymmetric_fence.hpp), then waits for `in_push` to be zero. So a
// publication either saw the seal (and published nothing) or is complete before the sealer
// reads, and no record lands in a ring its new owner has read. The pusher's side of that pair is
// a store and a load on the line it writes anyway, with a compiler barrier between.
//
// Types besides data:
//   pad       fills a claim's space that holds no message: the rest of the data area before a
//             record that would not fit there (its body is whatever was there), or the unused
//             tail of an MPSC loan committed shorter than it was claimed (its body was written
//             by the loan). Always written committed; counts as no message; skipped by length.
//   aborted   an MPSC loan dropped without a commit: a message nobody receives, skipped by
//             length (it counts as a message of the cursor, which its claim moved).
//   consumed  an MPSC consumer has handed the record over and is zeroing it: it first turns the
//             header into this (length and slot kept), zeroes the payload, and zeroes the header
//             only once it consumed the next record (or publishes its head). So between the
//             published head and the consumer, every word is zero but for headers: a reader that
//             finds the consumer dead (a take-over) or walks behind it (shmctl peek) skips a
//             consumed record by its length and a zeroed one word by word, and never takes what
//             is left of a half-zeroed payload for a header.
//   seal      a take-over wrote it at the end of a dead SPSC ring's records, once no publication
//             was under way (the seal bit of `refused`, above): where the records end, for tools
//             and for a later take-over. (An MPSC ring, or a chain's link, is sealed by its tail:
//             kSealCount.)
// The consumer zeroes every record it consumes, so a zero header word means "claimed, nothing
// written yet" (or "not claimed").
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lockfree/futex.hpp"
#include "shm/liveness.hpp"
#include "shm/segment.hpp"

namespace bloccs::lockfree {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr int kPosBits = 40;
inline constexpr std::uint64_t kPosMask = (std::uint64_t{1} << kPosBits) - 1;
inline constexpr std::uint64_t kCountMask = (std::uint64_t{1} << (64 - kPosBits)) - 1;
// At most 2^23 records (8 bytes each at least) fit in 64 MiB: a pusher's cached head can then
// never be so stale that the 24-bit message count wraps into looking fresh.
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 26;
inline constexpr std::uint32_t kMaxBuffer = (std::uint32_t{1} << 23) - 1;
inline constexpr std::uint32_t kMaxPushers = 4096;
inline constexpr std::size_t kRecordHeader = 8;

enum class RingKind : std::uint32_t { spsc = 1, mpsc = 2 };

struct Cursor {
  std::uint64_t pos;    // bytes, mod 2^40
  std::uint64_t count;  // messages, mod 2^24
  static Cursor unpack(std::uint64_t w) noexcept { return {w & kPosMask, w >> kPosBits}; }
  std::uint64_t pack() const noexcept {
    return (pos & kPosMask) | ((count & kCountMask) << kPosBits);
  }
  Cursor advanced(std::uint64_t bytes) const noexcept {
    return {(pos + bytes) & kPosMask, (count + 1) & kCountMask};
  }
  // Past a pad: bytes, and no message.
  Cursor skipped(std::uint64_t bytes) const noexcept { return {(pos + bytes) & kPosMask, count}; }
};

// A ring of a chain (lockfree/chain.hpp) is sealed when a pusher found it full and moved on to
// the next link: its tail's message count jumps by kSealCount. No ring holds that many messages
// (kMaxBuffer), so every later claim finds it full, and a consumer that has caught up with the
// tail's byte position knows that nothing more will come and moves on too.
inline constexpr std::uint64_t kSealCount = std::uint64_t{1} << 23;
// A chain link's `next` once a take-over sealed the chain there: no successor may be offered.
inline constexpr std::uint64_t kNextSealed = ~std::uint64_t{0};

// How far `ahead` is past `behind`, in bytes / messages (modular arithmetic).
inline std::uint64_t pos_distance(std::uint64_t ahead, std::uint64_t behind) noexcept {
  return (ahead - behind) & kPosMask;
}
inline std::uint64_t count_distance(std::uint64_t ahead, std::uint64_t behind) noexcept {
  return (ahead - behind) & kCountMask;
}
inline bool tail_sealed(Cursor tail, Cursor head) noexcept {
  return count_distance(tail.count, head.count) >= kSealCount;
}

// True if position `a` lies before `b` (less than half the position space behind it).
inline bool pos_before(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t d = pos_distance(b, a);
  return d != 0 && d < (kPosMask >> 1);
}

// True if `x` lies in [from, to) (positions, modular).
inline bool pos_in_span(std::uint64_t x, std::uint64_t from, std::uint64_t to) noexcept {
  return x == from || (pos_before(from, x) && pos_before(x, to));
}

inline constexpr std::size_t record_size(std::size_t payload) noexcept {
  return (kRecordHeader + payload + 7) & ~std::size_t{7};
}

// The least data area for payloads of up to `max_payload`: a record that would run past the end
// is padded to the start (the pad is shorter than the record), and SPSC keeps one word free
// after the last record, so twice the largest record lets an empty ring take any record.
inline constexpr std::uint64_t min_capacity(std::uint64_t max_payload) noexcept {
  return 2 * record_size(max_payload);
}
// The largest max_payload a ring of kMaxCapacity holds.
inline constexpr std::uint32_t kMaxPayload = kMaxCapacity / 2 - kRecordHeader;
static_assert(min_capacity(kMaxPayload) == kMaxCapacity);

// Record header word.
inline constexpr std::uint64_t kCommitBit = std::uint64_t{1} << 63;
inline constexpr std::uint64_t kTypeData = 1;
inline constexpr std::uint64_t kTypeSeal = 2;
inline constexpr std::uint64_t kTypeConsumed = 3;
inline constexpr std::uint64_t kTypePad = 4;
inline constexpr std::uint64_t kTypeAborted = 5;
inline constexpr std::uint64_t kSealHeader = kTypeSeal << 48;
inline std::uint64_t make_record_header(std::uint32_t len, std::uint32_t slot,
                                        bool committed) noexcept {
  return (committed ? kCommitBit : 0) | (kTypeData << 48) | (std::uint64_t{slot + 1} << 32) | len;
}
inline std::uint64_t make_typed_header(std::uint64_t type, std::uint32_t len,
                                       std::uint32_t slot) noexcept {
  return kCommitBit | (type << 48) | (std::uint64_t{slot + 1} << 32) | len;
}
// The pad before a record at data offset `off` of `bytes` (0 if it fits before the end).
inline std::uint64_t pad_before(std::uint64_t off, std::uint64_t bytes,
                                std::uint64_t capacity) noexcept {
  return off + bytes > capacity ? capacity - off : 0;
}
// True if a live pusher whose intent is at `x` holds the claim that starts at `p`: x == p, or
// that claim begins with a pad to the end of the data area and the pusher has moved its intent
// on to the record after the pad (MpscPusher::write_pad) but not yet written the pad's header.
inline bool intent_claims(std::uint64_t x, std::uint64_t p, std::uint64_t capacity) noexcept {
  if (x == p) return true;
  const std::uint64_t off = p & (capacity - 1);
  return off != 0 && (x & (capacity - 1)) == 0 && pos_distance(x, p) == capacity - off;
}
inline bool header_committed(std::uint64_t h) noexcept {
  return (h & kCommitBit) != 0;
}
inline std::uint64_t header_type(std::uint64_t h) noexcept {
  return (h >> 48) & 0x7f;
}
inline std::uint32_t header_slot_plus_one(std::uint64_t h) noexcept {
  return static_cast<std::uint32_t>((h >> 32) & 0xffff);
}
inline std::uint32_t header_length(std::uint64_t h) noexcept {
  return static_cast<std::uint32_t>(h);
}
// Bits that must be zero in any valid header.
inline constexpr std::uint64_t kHeaderReservedBits = std::uint64_t{0x7f} << 56;
// True if a committed header at data offset `off` is one a pusher can have written: a known
// type, a slot in range, and a record that ends before the end of the data area (a message's
// length also within max_payload). Never trust a header read from shared memory.
inline bool committed_header_valid(std::uint64_t h, std::uint64_t off, std::uint64_t capacity,
                                   std::uint32_t max_payload, std::uint32_t slot_count) noexcept {
  const std::uint64_t type = (h >> 48) & 0x7f;
  const std::uint32_t slot = static_cast<std::uint32_t>((h >> 32) & 0xffff);
  const std::uint32_t len = static_cast<std::uint32_t>(h);
  if ((h & kHeaderReservedBits) || slot == 0 || slot > slot_count) return false;
  if (type != kTypeData && type != kTypePad && type != kTypeAborted) return false;
  return (type == kTypePad || len <= max_payload) && off + record_size(len) <= capacity;
}
// True if a written, not yet committed header is one a pusher can have written: a message's
// type, a length within max_payload, a slot in range (recovery and take-overs read it).
inline bool open_header_valid(std::uint64_t h, std::uint32_t max_payload,
                              std::uint32_t slot_count) noexcept {
  const std::uint32_t slot = static_cast<std::uint32_t>((h >> 32) & 0xffff);
  return ((h >> 48) & 0x7f) == kTypeData && !(h & kHeaderReservedBits) &&
         static_cast<std::uint32_t>(h) <= max_payload && slot != 0 && slot <= slot_count;
}
// A data header turned "consumed": length and slot kept, commit bit and type replaced.
inline std::uint64_t consumed_header(std::uint64_t h) noexcept {
  return (h & ~(kCommitBit | (std::uint64_t{0x7f} << 48))) | (kTypeConsumed << 48);
}

// Immutable after creation: read by everyone, validated by every opener.
struct RingConfig {
  std::uint32_t kind;              // RingKind
  std::uint32_t slot_count;        // pusher slots (1 for SPSC)
  std::uint64_t capacity;          // data bytes, a power of two
  std::uint32_t buffer;            // max queued messages
  std::uint32_t max_payload;       // bytes
  std::uint64_t slots_offset;      // from the segment base
  std::uint64_t data_offset;       // from the segment base, 64-aligned
  std::uint32_t owner_pid;         // the consumer
  std::uint32_t abandon_after_us;  // a claim uncommitted this long is checked for a dead pusher
  std::uint64_t owner_start_time;
  std::uint32_t flags;  // kRingLightWakers
  std::uint32_t reserved;
};
static_assert(sizeof(RingConfig) == 64);
// The consumer pays for the wake-up protocol, not the pushers (asymmetric_fence.hpp): a heavy
// fence each time it parks, and none on a push. Right for a consumer that spins before it
// parks; one that parks at once (every message a wake-up) is better served by pushers that
// fence, as without this flag.
inline constexpr std::uint32_t kRingLightWakers = 1;

struct alignas(kCacheLine) ConsumerLine {
  std::atomic<std::uint64_t> head;  // Cursor: first unconsumed byte, messages consumed
};
struct alignas(kCacheLine) ProducerLine {
  std::atomic<std::uint64_t> tail;  // Cursor: first unclaimed byte, messages claimed
  // Nonzero once every push is refused, naming the ring: kRefusedDamaged (the consumer found a
  // record or a cursor no pusher could have written), kRefusedSealed (a take-over of an SPSC
  // ring). On the line pushers touch on every push anyway, so checking it costs nothing.
  std::atomic<std::uint32_t> refused;
  // SPSC: how many records the pusher is publishing right now (0: none); see "Sealing" above.
  std::atomic<std::uint32_t> in_push;
};
inline constexpr std::uint32_t kRefusedDamaged = 1;
inline constexpr std::uint32_t kRefusedSealed = 2;
struct alignas(kCacheLine) ParkingLine {
  WaitLine line;  // futex.hpp: waiters, epoch, armed
};
struct alignas(kCacheLine) RingCounters {
  std::atomic<std::uint64_t> abandoned;  // claims of dead pushers skipped by the consumer
  std::atomic<std::uint64_t> corrupt;    // records refused because a length was out of range
  std::atomic<std::uint32_t> closed;     // 1 once the owner closed the ring (its port stopped)
  std::atomic<std::uint64_t> next;       // a chain's successor link (chain.hpp), set once by CAS
  std::atomic<std::uint64_t> aborted;    // loans given back without a commit (pushers add)
};

// Held by the ring's consumer (shm/liveness.hpp): a pusher parked on a full ring knows from it
// that the consumer died or exec'd, whatever pid namespace it runs in. A chain's link made by a
// pusher has no consumer until its owner adopts it.
struct alignas(kCacheLine) ConsumerAlive {
  shm::LivenessLock lock;
};

// One per attached pusher, on its own line (an MPSC pusher writes its slot on every push).
//   holder: a liveness lock the attached process holds (shm/liveness.hpp): the slot is taken
//          while it is held, and its holder is alive exactly while it is held. The kernel lets
//          go of it when the holder dies or execs, so a slot never outlives its process.
//   pid:   the holder's pid (in its own pid namespace), for messages and tools.
//   intent: 0 = idle, else kIntentActive | the tail position this pusher is claiming or has
//          claimed and not yet committed (MPSC only).
struct alignas(kCacheLine) PusherSlot {
  shm::LivenessLock holder;
  std::atomic<std::uint32_t> pid;
  std::uint32_t reserved;
  std::atomic<std::uint64_t> intent;
};
inline constexpr std::uint64_t kIntentActive = std::uint64_t{1} << 63;

struct RingControl {
  shm::SegmentHeader segment;
  RingConfig config;
  ConsumerLine consumer;
  ProducerLine producer;
  ParkingLine data;   // the consumer parks here when empty
  ParkingLine space;  // pushers park here when full
  RingCounters counters;
  ConsumerAlive consumer_alive;
};
static_assert(offsetof(RingControl, config) == 64);
static_assert(offsetof(RingControl, consumer) == 128);
static_assert(offsetof(RingControl, producer) == 192);
static_assert(offsetof(RingControl, data) == 256);
static_assert(offsetof(RingControl, space) == 320);
static_assert(offsetof(RingControl, counters) == 384);
static_assert(offsetof(RingControl, consumer_alive) == 448);
static_assert(sizeof(RingControl) == 512);
static_assert(sizeof(PusherSlot) == kCacheLine);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// ---- access to the data area (offsets already reduced modulo capacity) ------------------------

inline std::atomic_ref<std::uint64_t> header_word(std::byte* data, std::uint64_t offset) noexcept {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(data + offset));
}

// Zeroes `len` bytes at `offset`, wrapping at `capacity`: recovery skips a dead claim whole,
// which may span a pad at the end and the record at the start.
inline void zero_ring(std::byte* data, std::uint64_t capacity, std::uint64_t offset,
                      std::size_t len) noexcept {
  const std::size_t first =
      static_cast<std::size_t>(std::min<std::uint64_t>(len, capacity - offset));
  if (first) std::memset(data + offset, 0, first);
  if (len > first) std::memset(data, 0, len - first);
}

}  // namespace bloccs::lockfree
