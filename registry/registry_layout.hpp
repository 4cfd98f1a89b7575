// SPDX-License-Identifier: Apache-2.0
// The shared-memory layout of a namespace's registry: port key -> owner, ring segment, offset.
//
//   offset  size           what                                  written by
//   0       64             SegmentHeader (shm/segment.hpp)       creator, once
//   64      64             RegistryHeader: slot count, retired,  creator, once; the mutex by
//                          the robust mutex of the writers       whoever registers or unregisters
//   128     320            Journal: a slot's words before a      the writer that overwrites a
//                          writer overwrote them                 dead owner's entry
//   448     320 * slots    RegistrySlot[slot_count]              writers, under the mutex
//
// The table is made whole and then named (shm/segment.hpp), so openers never see one half
// made, and none ever removes a table it finds: one that fails its checks is damaged and
// stays for a person to look at (shmctl), since live ports may be registered in it. It lives
// while ports are registered: the unregister that frees the last live slot retires it (sets
// `retired`, then unlinks it), both under the writers' mutex, so a finished namespace leaves
// nothing in /dev/shm. Only a holder of a table's mutex ever unlinks it: while its name names
// it nobody can make a new one, so the name it unlinks is its own.
//
// Writers (register, unregister) take the robust process-shared mutex: a writer killed while
// holding it hands it to the next one (EOWNERDEAD). A writer that overwrites a dead owner's
// entry (a take-over) first copies the slot into the journal; the next writer finds the journal
// set, and if the slot was left half written, puts the old entry back, so a killed writer never
// loses a dead owner's entry (whose port still holds its queue). Readers never take the mutex:
// each slot is a seqlock on its `state` word.
//
// A slot, 320 bytes:
//   0       8        16             24           32                 128            256        320
//   +-------+--------+--------------+------------+------------------+--------------+----------+
//   | state | owner  | owner start  | ring offset| key (3 x 32 B)   | segment name | live     |
//   +-------+--------+--------------+------------+------------------+--------------+----------+
//   state: generation << 2 | {0 free, 1 being written, 2 live}. The generation grows with
//   every registration, so a reader (and a pusher's cached attachment) can tell a slot that
//   was reused from the one it saw. Every field is an atomic word, so a reader racing a
//   writer copies stale words, never undefined ones, and the state check throws them away.
//   live: a liveness lock (shm/liveness.hpp) the registrant holds while it is registered: the
//   owner is alive exactly while it is held, whatever pid namespace it runs in, and an exec
//   ends it. The owner pid and start time are for people.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "bloccs/port_key.hpp"  // kKeyPartMax
#include "shm/liveness.hpp"
#include "shm/segment.hpp"

namespace bloccs::registry {

inline constexpr std::size_t kSegmentNameMax = 127;
inline constexpr std::uint32_t kDefaultSlots = 256;
inline constexpr std::uint32_t kMaxSlots = 65536;

inline constexpr std::uint64_t kSlotFree = 0;
inline constexpr std::uint64_t kSlotWriting = 1;
inline constexpr std::uint64_t kSlotLive = 2;
inline constexpr std::uint64_t kSlotStateMask = 3;

struct RegistryHeader {
  std::uint32_t slot_count;
  // 1 once the last port unregistered and the table was retired: a process still holding it
  // opens the namespace's registry anew (writers check it under the mutex).
  std::atomic<std::uint32_t> retired;
  pthread_mutex_t writers;  // robust, process-shared
};
static_assert(sizeof(RegistryHeader) <= 64);

// The words of a slot a reader copies (everything but the liveness lock).
inline constexpr std::size_t kSlotWords = 32;

struct RegistrySlot {
  std::atomic<std::uint64_t> words[kSlotWords];  // as drawn above; named by the accessors
  shm::LivenessLock live;
  std::uint8_t pad[24];

  std::atomic<std::uint64_t>& state() noexcept { return words[0]; }
  std::atomic<std::uint64_t>& owner_pid() noexcept { return words[1]; }
  std::atomic<std::uint64_t>& owner_start_time() noexcept { return words[2]; }
  std::atomic<std::uint64_t>& ring_offset() noexcept { return words[3]; }
  std::atomic<std::uint64_t>* key() noexcept { return words + 4; }       // 3 parts of 32 bytes
  std::atomic<std::uint64_t>* segment() noexcept { return words + 16; }  // 128 bytes
  const std::atomic<std::uint64_t>& state() const noexcept { return words[0]; }
  const std::atomic<std::uint64_t>* key() const noexcept { return words + 4; }
  const std::atomic<std::uint64_t>* segment() const noexcept { return words + 16; }
};
inline constexpr std::size_t kKeyWordsTotal = 12;
inline constexpr std::size_t kSegmentWords = 16;
static_assert(sizeof(RegistrySlot) == 320);
static_assert(offsetof(RegistrySlot, live) == kSlotWords * 8);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

struct alignas(64) Journal {
  std::atomic<std::uint64_t> slot_plus_one;      // 0: empty; else the slot being overwritten, + 1
  std::atomic<std::uint64_t> words[kSlotWords];  // that slot's words before the overwrite
};
static_assert(sizeof(Journal) == 320);

inline constexpr std::size_t kJournalOffset = 128;
inline constexpr std::size_t kSlotsOffset = kJournalOffset + sizeof(Journal);

}  // namespace bloccs::registry
