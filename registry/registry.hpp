// SPDX-License-Identifier: Apache-2.0
// The registry of one namespace: which process owns the port under a key, and where the
// port's ring lives. One table per namespace, "/dev/shm/bloccs.<ns>/registry", made by
// whoever needs it first (the layout and its rules: registry_layout.hpp).
//
//   register_port   atomic (writers are serialised); a key held by a live owner is refused,
//                   one left by a dead owner is taken over (its old entry is reported so that
//                   the caller carries its port over and removes it).
//   lookup          never blocks and never returns a half-written entry.
//   unregister      atomic; only the owner that registered (its Registration).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bloccs/port_key.hpp"
#include "bloccs/result.hpp"
#include "registry/registry_layout.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"

namespace bloccs::registry {

using bloccs::PortKey;
using bloccs::to_string;
using bloccs::validate_key;

struct PortEntry {
  PortKey key;
  shm::ProcessId owner;  // for people: the pid and start time it registered with
  bool alive = false;    // its owner still holds the slot's liveness lock (when it was read)
  std::uint64_t generation = 0;
  std::uint32_t slot = 0;
  std::string segment;  // the ring's segment name, inside the same namespace
  std::uint64_t ring_offset = 0;
};

// What register_port gives the registrant: its slot, and the liveness lock it holds there
// until it unregisters (or dies).
struct Registration {
  std::uint32_t slot = 0;
  std::uint64_t generation = 0;
  std::optional<PortEntry> taken_over;  // the dead owner's entry this one replaced
  shm::HeldLock live;
};

struct RegistryOptions {
  // Slots of a table this process creates; 0: $BLOCCS_REGISTRY_SLOTS, else 256.
  std::uint32_t slots = 0;
  bool create = true;  // false: Errc::not_found if the table does not exist
  // What the namespace must be shared with, if anything; nullopt: $BLOCCS_NAMESPACE_GROUP.
  std::optional<shm::Sharing> sharing = std::nullopt;
  // Root only, for tools: another user's table (shmctl gc collecting a dead user's ports).
  bool any_owner = false;
};

// May a dead owner's entry of another key be reused when the table is full? Only if its port
// holds nothing (the caller knows ports; the registry does not).
using MayEvict = std::function<bool(const PortEntry&)>;

class Registry {
 public:
  // Opens the namespace's registry, creating it if it does not exist yet. Two processes that
  // race here end with one table. A damaged table is an error, never replaced.
  static Result<Registry> open(std::string_view ns, RegistryOptions options = {});

  Result<Registration> register_port(const PortKey& key, std::string_view segment,
                                     std::uint64_t ring_offset, const MayEvict& may_evict = {});
  // Frees the registration's slot and lets go of its lock; the last one out retires the table.
  Status unregister(Registration& registration);
  // Retires the table if no slot is in use: for a start that failed after opening it.
  void retire_if_empty();
  // Every live entry, in slot order (seqlock reads: never blocks, never a torn entry).
  std::vector<PortEntry> entries();
  // Frees slot `slot` if it still holds `generation` and its owner is dead: for tools that clean
  // up after dead owners (shmctl gc, rm; `even_if_alive` for rm --force). Errc::not_found if it
  // changed meanwhile.
  Status remove_entry(std::uint32_t slot, std::uint64_t generation, bool even_if_alive = false);
  // Errc::not_found if no entry holds `key`. Follows the namespace to a new table if this one
  // retired. Of two entries of one key (a take-over half done), the live one.
  Result<PortEntry> lookup(const PortKey& key);
  // True while slot `slot` still holds the live registration of `generation`: one load, for a
  // pusher to check its cached attachment on every push.
  bool still_current(std::uint32_t slot, std::uint64_t generation) const noexcept {
    // acquire: pairs with the writer's release of state (a reused slot shows a new generation).
    return slot < slot_count_ && this->slot(slot).state().load(std::memory_order_acquire) ==
                                     ((generation << 2) | kSlotLive);
  }
  std::uint32_t slot_count() const noexcept { return slot_count_; }
  const shm::Segment& segment() const noexcept { return segment_; }

 private:
  Registry(shm::Segment segment, std::uint32_t slot_count, std::string ns, RegistryOptions options)
      : segment_(std::move(segment)),
        slot_count_(slot_count),
        ns_(std::move(ns)),
        options_(options) {}
  bool retired() const noexcept {
    // acquire: pairs with the retiring writer's release; after it the table is not used.
    return header()->retired.load(std::memory_order_acquire) != 0;
  }
  static Result<Registry> checked_table(shm::Segment opened, std::string ns,
                                        RegistryOptions options);
  Status reopen();          // replaces a retired table with the namespace's current one
  void retire_if_unused();  // with the writer lock held
  void finish_retirement();  // a retired table left named by a writer that died: unlink it
  Status free_slot(std::uint32_t slot, std::uint64_t generation, bool owner_only,
                   bool even_if_alive);
  RegistryHeader* header() const noexcept {
    return reinterpret_cast<RegistryHeader*>(segment_.base() + sizeof(shm::SegmentHeader));
  }
  Journal* journal() const noexcept {
    return reinterpret_cast<Journal*>(segment_.base() + kJournalOffset);
  }
  RegistrySlot& slot(std::uint32_t i) const noexcept {
    return reinterpret_cast<RegistrySlot*>(segment_.base() + kSlotsOffset)[i];
  }
  // A consistent copy of slot `i` if it is live (seqlock read), else nullopt.
  std::optional<PortEntry> read_slot(std::uint32_t i) const;
  friend class WriterLock;

  shm::Segment segment_;
  std::uint32_t slot_count_;
  std::string ns_;
  RegistryOptions options_;
};

}  // namespace bloccs::registry
