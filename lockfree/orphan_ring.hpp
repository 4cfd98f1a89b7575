// SPDX-License-Identifier: Apache-2.0
// A ring whose consumer died, read out once by another process (a port's next owner).
//
// The reader is not a consumer: it never publishes a head nor zeroes anything, so no pusher
// ever gets space back (none can push into a full one meanwhile), and if the reader dies too
// the next one finds the ring as it was. It seals the ring first (seal()), so that nothing
// pushed after its reading can be acknowledged, then hands over what is left (read()). How each
// kind of word at the head is read is written in orphan_ring.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bloccs/result.hpp"
#include "lockfree/ring_layout.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"

namespace bloccs::lockfree {

// What OrphanRing::read found besides the records it handed over.
struct OrphanRead {
  std::uint64_t read = 0;       // records handed to the callback
  std::uint64_t abandoned = 0;  // claims of dead pushers skipped: nothing of them to read
  // Claims left unread: a live pusher's claim still open at `give_up` and every one after it, or
  // everything after a damaged record (from the cursors; see read on the error).
  std::uint64_t unread = 0;
  bool sealed = false;    // read to the end of a sealed tail: a chain's successor link follows
  Status status;          // ok, or why reading stopped early (a damaged record, a missing link)
  std::uint64_t end = 0;  // the byte position reading stopped at (the end of the records)
};

class OrphanRing {
 public:
  // Opens ring `name`, made for consumer `dead`, as its reader. Errc::wrong_process if it was
  // made for another consumer or `dead` still runs; the segment's own errors otherwise. The
  // reader starts at the head the dead consumer last published.
  static Result<OrphanRing> open(std::string_view ns, std::string_view name,
                                 const shm::ProcessId& dead);

  // Seals the ring so that nothing more is ever pushed into it: an MPSC ring by its tail
  // (kSealCount); an SPSC one by the seal bit of `refused`, then, once no publication is under
  // way, a seal header where its records end (ring_layout.hpp, "Sealing"). A pusher past its
  // checks that claims (MPSC) or publishes (SPSC) only now fails with Errc::closed instead of
  // getting ok for a message nobody will read. A live SPSC pusher still publishing at
  // `give_up` (stopped, or starved) is no longer waited for: what it announced is counted as
  // unread by read(). Idempotent. Errc::corrupt if the records do not lead to a free word.
  Status seal(Deadline give_up);

  // Hands each record left to f(std::span<const std::byte>), in claim order, up to the tail
  // (or to f(span, Cursor) with where the record starts). One pass.
  //   - Records the dead consumer had peeked and not handed back come again. An MPSC consumer
  //     zeroes each record once the callback has returned, so there only the record whose
  //     callback was running (and those after it) come again; an SPSC ring repeats the whole
  //     batch it was reading.
  //   - A dead pusher's open claim is skipped (OrphanRead::abandoned); a live pusher's is
  //     waited for until `give_up`, then it and everything after it count as `unread`.
  //   - A damaged record stops the reading: OrphanRead::status says why, `unread` counts the
  //     claims from it to the tail (from the cursors, so it may also count records of the
  //     dead consumer's unfinished batch that it had already handed over).
  template <class F>
  OrphanRead read(F&& f, Deadline give_up);

  const RingConfig& config() const noexcept { return cfg_; }
  const shm::Segment& segment() const noexcept { return segment_; }

 private:
  enum class Step { record, end, pending, error };
  OrphanRing(shm::Segment segment, const RingConfig& config, Cursor head);
  RingControl* control() const noexcept { return reinterpret_cast<RingControl*>(segment_.base()); }
  std::byte* data() const noexcept { return segment_.base() + cfg_.data_offset; }
  // The next record (Step::record, its size in record_size_), skipping dead claims, pads,
  // aborted loans and what the dead consumer zeroed; Step::pending once `give_up` passes on a
  // live pusher's claim; Step::error with error_ set on damage.
  Step next(std::span<const std::byte>& payload, Deadline give_up, OrphanRead& r);
  std::uint64_t unread() const noexcept;  // claims from head_ to the tail
  Step corrupt(const std::string& what);

  shm::Segment segment_;
  RingConfig cfg_;  // validated private copy
  Cursor head_{};   // only here: never published
  std::uint64_t record_size_ = 0;
  std::uint32_t in_flight_ = 0;  // SPSC: records announced by a pusher seal() gave up on
  struct SlotView {
    std::uint64_t intent;  // 0 or kIntentActive | pos
    bool alive;
  };
  std::vector<SlotView> slot_view_;  // sized once: one per pusher slot
  std::vector<std::uint64_t> dead_starts_;
  Error error_{};
};

template <class F>
OrphanRead OrphanRing::read(F&& f, Deadline give_up) {
  OrphanRead r;
  std::span<const std::byte> payload;
  for (;;) {
    switch (next(payload, give_up, r)) {
      case Step::record:
        if constexpr (std::is_invocable_v<F&, std::span<const std::byte>, Cursor>)
          f(payload, head_);
        else
          f(payload);
        head_ = head_.advanced(record_size_);
        ++r.read;
        continue;
      case Step::end:           // the tail: next() has set r.sealed
        r.unread = in_flight_;  // published after our reading, if at all: nobody reads them
        r.end = head_.pos;
        return r;
      case Step::pending:  // a live pusher's claim outlived give_up
        r.unread = unread() + in_flight_;
        r.end = head_.pos;
        return r;
      case Step::error:
        r.unread = unread() + in_flight_;
        r.status = error_;
        r.end = head_.pos;
        return r;
    }
  }
}

}  // namespace bloccs::lockfree
