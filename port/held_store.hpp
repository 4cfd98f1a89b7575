// SPDX-License-Identifier: Apache-2.0
// The push_after messages a port's timer holds, kept in shared memory, so that a take-over of
// the port carries every one of them over with its due time: a SIGKILLed owner loses none
// (SPEC.md, "What a crash keeps").
//
// The store is a list of pages, segments "<control>.held.<k>" (k = 0, 1, ...) that the timer
// thread makes as it needs them and removes once nothing in them is pending. Only the timer
// thread writes them; a later owner of the key reads them after the timer died (port/salvage).
//
// A page:
//   offset  size  what
//   0       64    SegmentHeader (shm/segment.hpp), kind held
//   64      64    HeldPageHeader: page number, capacity, bytes of entries written (`used`)
//   128     cap   entries, 8-byte aligned, appended at `used`
//
// An entry, 48 bytes and then its message (meta + payload, as the consumer reads it) padded to 8:
//   0       4     8        16       24          32          40         48
//   +-------+-----+--------+--------+-----------+-----------+----------+----------------
//   | state | len | seq    | due_ns | due_pos   | src_link  | src_at   | message ...
//   +-------+-----+--------+--------+-----------+-----------+----------+----------------
//   state    0 being written, 1 pending, 2 gone (delivered, or moved to a newer page)
//   seq      the order the timer took requests in; the same for a moved entry and its copy
//   due_pos  kNoDuePos, or the due lane's position the message is being pushed to: once the due
//            lane's records reach past it, the message is delivered (exactly once, whatever
//            instant the timer died at)
//   src_*    the LinkId and the cursor of the request in `later` that the entry came from: a
//            request still there after a kill (the timer died before handing its space back)
//            is the entry, not a second message
//
// Every step is one store after the words it publishes (release), so a kill at any instant
// leaves each entry pending, gone, or not there, and nothing both kept and delivered.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bloccs/result.hpp"
#include "shm/namespace_dir.hpp"
#include "shm/segment.hpp"

namespace bloccs::port {

inline constexpr std::uint64_t kNoDuePos = ~std::uint64_t{0};

struct HeldPageHeader {
  std::uint32_t index;
  std::uint32_t reserved;
  std::uint64_t capacity;           // bytes of the entry area
  std::atomic<std::uint64_t> used;  // bytes of entries written (release: the entries before it)
  std::uint64_t pad[5];
};
static_assert(sizeof(HeldPageHeader) == 64);

struct HeldEntry {
  std::atomic<std::uint32_t> state;
  std::uint32_t len;
  std::uint64_t seq;
  std::int64_t due_ns;
  std::atomic<std::uint64_t> due_pos;
  std::uint64_t src_link;
  std::uint64_t src_at;
};
static_assert(sizeof(HeldEntry) == 48);

inline constexpr std::uint32_t kHeldWriting = 0, kHeldPending = 1, kHeldGone = 2;
inline constexpr std::size_t kHeldPageData = sizeof(shm::SegmentHeader) + sizeof(HeldPageHeader);

// Where a request came from in `later` (lockfree::LinkId and Cursor, packed).
struct HeldSource {
  std::uint64_t link = 0;
  std::uint64_t at = 0;
  friend bool operator==(const HeldSource&, const HeldSource&) = default;
};

// The timer thread's store. Not thread-safe: the timer thread alone uses it.
class HeldStore {
 public:
  struct Ref {
    std::uint32_t page = 0;
    std::uint32_t offset = 0;  // of the entry, in the page's entry area
    std::uint32_t len = 0;     // our own copy: never re-read from shared memory
  };

  HeldStore(std::string ns, std::string control, std::uint32_t max_message, mode_t mode);
  HeldStore(const HeldStore&) = delete;
  HeldStore& operator=(const HeldStore&) = delete;

  // Keeps a message, pending. Errc::out_of_memory if /dev/shm has no room for a new page.
  Result<Ref> add(std::uint64_t seq, std::int64_t due_ns, HeldSource src,
                  std::span<const std::byte> message);
  std::span<const std::byte> message(const Ref& r) const;
  // Before the message is pushed into the due lane at `due_pos`; not_delivered() if that failed.
  void delivering(const Ref& r, std::uint64_t due_pos);
  void not_delivered(const Ref& r);
  // The message is in the due lane (or moved): its space may go.
  void remove(const Ref& r);
  // Moves what is still pending out of pages that are mostly gone, so that one long-delayed
  // message cannot keep a whole page of delivered ones; moved(seq, new ref) for each.
  template <class Moved>
  void compact(Moved&& moved);

  std::size_t page_count() const noexcept { return pages_.size(); }

 private:
  struct Page {
    shm::Segment segment;
    std::uint64_t capacity = 0;
    std::uint64_t used = 0;
    std::uint64_t live_bytes = 0;
    std::uint64_t live = 0;
    HeldPageHeader& header() const {
      return *reinterpret_cast<HeldPageHeader*>(segment.base() + sizeof(shm::SegmentHeader));
    }
    HeldEntry& entry(std::uint32_t offset) const {
      return *reinterpret_cast<HeldEntry*>(segment.base() + kHeldPageData + offset);
    }
  };
  Result<Page*> page_with_room(std::uint64_t bytes);
  Ref append(Page& page, std::uint32_t number, std::uint64_t seq, std::int64_t due_ns,
             HeldSource src, std::span<const std::byte> message);
  void release(std::uint32_t number, Page& page, std::uint64_t bytes);

  std::string ns_;
  std::string control_;
  std::uint32_t max_message_;
  mode_t mode_;
  std::map<std::uint32_t, Page> pages_;  // by page number; the last is the one appended to
  std::uint32_t next_number_ = 0;
  std::vector<std::uint32_t> sparse_;  // pages to compact
};

// What a dead timer held, read from its pages (for a take-over).
struct HeldMessage {
  std::uint64_t seq;
  std::int64_t due_ns;
  HeldSource src;
  std::vector<std::byte> message;
};
struct HeldRead {
  std::vector<HeldMessage> pending;  // by due time, then seq; one per seq
  std::uint64_t unreadable_pages = 0;
  std::string why;  // the first unreadable page's error
};
// Reads the pages of the dead port `control`: what is pending and not yet in its due lane
// (`due_end`: the position the dead due lane's committed records end at). Every length and
// offset is checked; a page that fails is counted, its entries unknown.
HeldRead read_held(const std::string& ns, const std::string& control, std::uint32_t max_message,
                   std::uint64_t due_end);

std::string held_page_name(const std::string& control, std::uint32_t number);

// ---- inline ----------------------------------------------------------------------------------

template <class Moved>
void HeldStore::compact(Moved&& moved) {
  while (!sparse_.empty()) {
    const std::uint32_t number = sparse_.back();
    sparse_.pop_back();
    auto it = pages_.find(number);
    if (it == pages_.end() || std::next(it) == pages_.end()) continue;  // gone, or the newest
    Page& old = it->second;
    for (std::uint32_t at = 0; at < old.used && old.live;) {
      HeldEntry& e = old.entry(at);
      const std::uint32_t len = e.len;  // our own write: this thread alone writes pages
      const std::uint32_t size = static_cast<std::uint32_t>(sizeof(HeldEntry) + ((len + 7u) & ~7u));
      // relaxed: only this thread writes the state.
      if (e.state.load(std::memory_order_relaxed) == kHeldPending) {
        auto room = page_with_room(size);
        if (!room) return;  // no room for the copy: it stays where it is
        const std::uint32_t to = std::prev(pages_.end())->first;
        const Ref copy = append(**room, to, e.seq, e.due_ns, {e.src_link, e.src_at},
                                {reinterpret_cast<const std::byte*>(&e) + sizeof(HeldEntry), len});
        const std::uint64_t seq = e.seq;
        remove(
            {number, at, len});  // the copy is pending first: a kill between keeps both (one seq)
        moved(seq, copy);
        if (pages_.find(number) == pages_.end()) break;  // the old page went with its last entry
      }
      at += size;
    }
  }
}

}  // namespace bloccs::port
