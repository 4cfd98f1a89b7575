// SPDX-License-Identifier: Apache-2.0
// The timer's pending push_after messages in shared memory (the layout is in held_store.hpp).
#include "port/held_store.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include "lockfree/ring_layout.hpp"

namespace bloccs::port {
namespace {

// A page holds at least this much, and at least two of the largest messages.
constexpr std::uint64_t kPageBytes = 256 * 1024;

std::uint64_t entry_size(std::uint64_t len) {
  return sizeof(HeldEntry) + ((len + 7) & ~std::uint64_t{7});
}

}  // namespace

std::string held_page_name(const std::string& control, std::uint32_t number) {
  return control + ".held." + std::to_string(number);
}

HeldStore::HeldStore(std::string ns, std::string control, std::uint32_t max_message, mode_t mode)
    : ns_(std::move(ns)), control_(std::move(control)), max_message_(max_message), mode_(mode) {}

Result<HeldStore::Page*> HeldStore::page_with_room(std::uint64_t bytes) {
  if (!pages_.empty()) {
    Page& last = std::prev(pages_.end())->second;
    if (last.used + bytes <= last.capacity) return &last;
  }
  const std::uint64_t capacity = std::max(kPageBytes, 2 * entry_size(max_message_));
  const std::uint32_t number = next_number_;
  auto seg = shm::Segment::create(ns_, held_page_name(control_, number), shm::SegmentKind::held,
                                  kHeldPageData + capacity, {.mode = mode_});
  if (!seg) return std::move(seg).error();
  auto* h = reinterpret_cast<HeldPageHeader*>(seg->base() + sizeof(shm::SegmentHeader));
  h->index = number;
  h->capacity = capacity;
  if (auto st = seg->publish(); !st) return std::move(st).error();
  ++next_number_;
  Page& page = pages_.emplace(number, Page{std::move(seg).value(), capacity}).first->second;
  return &page;
}

HeldStore::Ref HeldStore::append(Page& page, std::uint32_t number, std::uint64_t seq,
                                 std::int64_t due_ns, HeldSource src,
                                 std::span<const std::byte> message) {
  const auto offset = static_cast<std::uint32_t>(page.used);
  HeldEntry& e = page.entry(offset);
  e.len = static_cast<std::uint32_t>(message.size());
  e.seq = seq;
  e.due_ns = due_ns;
  e.src_link = src.link;
  e.src_at = src.at;
  // relaxed: published with the entry by the release stores below.
  e.due_pos.store(kNoDuePos, std::memory_order_relaxed);
  e.state.store(kHeldWriting, std::memory_order_relaxed);
  if (!message.empty())
    std::memcpy(reinterpret_cast<std::byte*>(&e) + sizeof(HeldEntry), message.data(),
                message.size());
  page.used += entry_size(message.size());
  // release: a reader that sees `used` past the entry sees its words and bytes.
  page.header().used.store(page.used, std::memory_order_release);
  // release: pending only once complete and inside `used`.
  e.state.store(kHeldPending, std::memory_order_release);
  page.live_bytes += entry_size(message.size());
  ++page.live;
  return {number, offset, e.len};
}

Result<HeldStore::Ref> HeldStore::add(std::uint64_t seq, std::int64_t due_ns, HeldSource src,
                                      std::span<const std::byte> message) {
  if (message.size() > max_message_)
    return Error{Errc::payload_too_large, "a push_after message of " +
                                              std::to_string(message.size()) +
                                              " bytes is larger than the port holds"};
  auto page = page_with_room(entry_size(message.size()));
  if (!page) return std::move(page).error();
  return append(**page, std::prev(pages_.end())->first, seq, due_ns, src, message);
}

std::span<const std::byte> HeldStore::message(const Ref& r) const {
  const Page& page = pages_.at(r.page);
  return {reinterpret_cast<const std::byte*>(&page.entry(r.offset)) + sizeof(HeldEntry), r.len};
}

void HeldStore::delivering(const Ref& r, std::uint64_t due_pos) {
  // release: the position is written before the message can reach the due lane.
  pages_.at(r.page).entry(r.offset).due_pos.store(due_pos, std::memory_order_release);
}

void HeldStore::not_delivered(const Ref& r) {
  // release: as above; the push failed, the entry is pending as before.
  pages_.at(r.page).entry(r.offset).due_pos.store(kNoDuePos, std::memory_order_release);
}

void HeldStore::remove(const Ref& r) {
  auto it = pages_.find(r.page);
  if (it == pages_.end()) return;
  // release: gone only after it was delivered (the due lane holds it) or copied.
  it->second.entry(r.offset).state.store(kHeldGone, std::memory_order_release);
  release(r.page, it->second, entry_size(r.len));
}

void HeldStore::release(std::uint32_t number, Page& page, std::uint64_t bytes) {
  page.live_bytes -= std::min(bytes, page.live_bytes);
  if (page.live) --page.live;
  const bool newest = std::prev(pages_.end())->first == number;
  if (page.live == 0 && !newest) {
    pages_.erase(number);  // its segment goes with it
    return;
  }
  if (page.live == 0) {  // the newest page, emptied: start it over rather than make another
    page.used = 0;
    page.live_bytes = 0;
    // release: an empty page; a reader sees no entry (their states stay as they were).
    page.header().used.store(0, std::memory_order_release);
    return;
  }
  if (!newest && page.live_bytes * 4 < page.capacity &&
      std::find(sparse_.begin(), sparse_.end(), number) == sparse_.end())
    sparse_.push_back(number);
}

HeldRead read_held(const std::string& ns, const std::string& control, std::uint32_t max_message,
                   std::uint64_t due_end) {
  HeldRead out;
  auto dir = shm::NamespaceDir::open(ns);
  if (!dir) return out;  // no namespace, no pages
  std::unordered_set<std::uint64_t> seen;
  const std::string prefix = control + ".held.";
  for (const std::string& name : dir->list(prefix)) {
    std::uint32_t number = 0;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    if (auto [end, ec] = std::from_chars(first, last, number); ec != std::errc() || end != last)
      continue;  // not a page of ours
    auto unreadable = [&](const std::string& why) {
      ++out.unreadable_pages;
      if (out.why.empty()) out.why = why;
    };
    auto seg = shm::Segment::open(ns, name, shm::SegmentKind::held, {.read_only = true});
    if (!seg) {
      unreadable(seg.error().message);
      continue;
    }
    if (seg->size() < kHeldPageData) {
      unreadable("/dev/shm/" + seg->name() + " is too small for a held page");
      continue;
    }
    const auto& h =
        *reinterpret_cast<const HeldPageHeader*>(seg->base() + sizeof(shm::SegmentHeader));
    const std::uint64_t capacity = seg->size() - kHeldPageData;
    // acquire: pairs with the timer's release of `used`; the entries before it are complete.
    const std::uint64_t used = h.used.load(std::memory_order_acquire);
    if (h.capacity != capacity || used > capacity || used % 8 != 0) {
      unreadable("/dev/shm/" + seg->name() + " says it holds more than it can: it is damaged");
      continue;
    }
    const std::byte* data = seg->base() + kHeldPageData;
    for (std::uint64_t at = 0; at < used;) {  // each step moves by at least one entry header
      if (used - at < sizeof(HeldEntry)) {
        unreadable("/dev/shm/" + seg->name() + " ends inside an entry: it is damaged");
        break;
      }
      const auto& e = *reinterpret_cast<const HeldEntry*>(data + at);
      const std::uint32_t len = e.len;  // read once: never trust it twice
      if (len > max_message || entry_size(len) > used - at) {
        unreadable("/dev/shm/" + seg->name() + " has an entry of a length out of range at byte " +
                   std::to_string(at) + ": it is damaged");
        break;
      }
      at += entry_size(len);
      // acquire: pairs with the release of state; the entry's words were written before.
      if (e.state.load(std::memory_order_acquire) != kHeldPending) continue;
      // acquire: pairs with delivering()'s release.
      const std::uint64_t due_pos = e.due_pos.load(std::memory_order_acquire);
      if (due_pos != kNoDuePos && lockfree::pos_before(due_pos & lockfree::kPosMask, due_end))
        continue;                                // the due lane holds it: carried over from there
      if (!seen.insert(e.seq).second) continue;  // a copy made while compacting
      const std::byte* bytes = reinterpret_cast<const std::byte*>(&e) + sizeof(HeldEntry);
      out.pending.push_back({e.seq, e.due_ns, {e.src_link, e.src_at}, {bytes, bytes + len}});
    }
  }
  std::sort(out.pending.begin(), out.pending.end(), [](const HeldMessage& a, const HeldMessage& b) {
    return a.due_ns != b.due_ns ? a.due_ns < b.due_ns : a.seq < b.seq;
  });
  return out;
}

}  // namespace bloccs::port
