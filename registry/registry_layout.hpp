// The shared-memory layout of a namespace's registry: port key -> owner, ring segment, offset.
//
//   offset  size           what                                  written by
//   0       64             SegmentHeader (shm/segment.hpp)       creator, once
//   64      64             RegistryHeader: slot count, and the   creator, once; the mutex by
//                          robust mutex that serialises writers  whoever registers or unregisters
//   128     256 * slots    RegistrySlot[slot_count]              writers, under the mutex
//
// The table lives while ports are registered: the unregister that frees the last live slot
// retires it (sets `retired`, unlinks it), so a finished namespace leaves nothing in /dev/shm.
//
// Writers (register, unregister) take the robust process-shared mutex: a writer killed while
// holding it hands it to the next one (EOWNERDEAD), and a slot it left half-written is seen
// as free. Readers never take it: each slot is a seqlock on its `state` word.
//
// A slot, 256 bytes:
//   0       8        16             24           32                 128                 256
//   +-------+--------+--------------+------------+------------------+-------------------+
//   | state | owner  | owner start  | ring offset| key (3 x 32 B)   | segment name      |
//   +-------+--------+--------------+------------+------------------+-------------------+
//   state: generation << 2 | {0 free, 1 being written, 2 live}. The generation grows with
//   every registration, so a reader (and a pusher's cached attachment) can tell a slot that
//   was reused from the one it saw. Every field is an atomic word, so a reader racing a
//   writer copies stale words, never undefined ones, and the state check throws them away.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "bloccs/port_key.hpp"  // kKeyPartMax
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
  // 1 once the last port unregistered and the table was unlinked: a process still holding it
  // opens the namespace's registry anew (writers check it under the mutex).
  std::atomic<std::uint32_t> retired;
  pthread_mutex_t writers;  // robust, process-shared
};
static_assert(sizeof(RegistryHeader) <= 64);

struct RegistrySlot {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> owner_pid;
  std::atomic<std::uint64_t> owner_start_time;
  std::atomic<std::uint64_t> ring_offset;
  std::atomic<std::uint64_t> key[12];      // 3 parts of 32 bytes, NUL-padded
  std::atomic<std::uint64_t> segment[16];  // 128 bytes, NUL-padded
};
static_assert(sizeof(RegistrySlot) == 256);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

inline constexpr std::size_t kSlotsOffset = 128;

}  // namespace bloccs::registry
