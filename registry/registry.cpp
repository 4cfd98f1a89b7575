#include "registry/registry.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "shm/names.hpp"
#include "shm/robust_mutex.hpp"

namespace bloccs::registry {
namespace {

constexpr const char* kSegmentName = "registry";
constexpr std::size_t kKeyWords = 4;     // 32 bytes per key part
constexpr int kLockPatienceSeconds = 5;  // writers hold the lock for microseconds

// Strings live in atomic words, 8 characters each, NUL-padded.
std::uint64_t text_word(std::string_view s, std::size_t w) {
  std::uint64_t v = 0;
  for (std::size_t b = 0; b < 8 && w * 8 + b < s.size(); ++b)
    v |= std::uint64_t{static_cast<unsigned char>(s[w * 8 + b])} << (8 * b);
  return v;
}

void store_text(std::atomic<std::uint64_t>* words, std::size_t count, std::string_view s) {
  for (std::size_t w = 0; w < count; ++w)
    words[w].store(text_word(s, w), std::memory_order_relaxed);  // relaxed: published by state
}

// The key as a slot stores it: three parts of kKeyWords words each.
void encode_key(const PortKey& key, std::uint64_t* words) {
  for (std::size_t w = 0; w < kKeyWords; ++w) {
    words[w] = text_word(key.network_id, w);
    words[kKeyWords + w] = text_word(key.node_id, w);
    words[2 * kKeyWords + w] = text_word(key.in_port, w);
  }
}

std::string load_text(const std::atomic<std::uint64_t>* words, std::size_t count) {
  std::string s;
  for (std::size_t w = 0; w < count; ++w) {
    // relaxed: the seqlock check in read_slot decides whether this copy counts.
    const std::uint64_t v = words[w].load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < 8; ++b) {
      const char c = static_cast<char>((v >> (8 * b)) & 0xff);
      if (c == '\0') return s;
      s.push_back(c);
    }
  }
  return s;
}

// Holds the registry's robust writer mutex. A writer killed while holding it left at most one
// slot in the "being written" state, which every writer treats as free: nothing to repair.
class WriterLock {
 public:
  explicit WriterLock(pthread_mutex_t* m) : m_(m) {
    // trylock first: it finds a dead holder at once (EOWNERDEAD), and ThreadSanitizer models
    // that case for trylock (not for timedlock). Wait only for a live holder.
    rc_ = pthread_mutex_trylock(m_);
    if (rc_ == EBUSY) {
      timespec until{};
      clock_gettime(CLOCK_REALTIME, &until);  // pthread_mutex_timedlock counts in real time
      until.tv_sec += kLockPatienceSeconds;
      rc_ = pthread_mutex_timedlock(m_, &until);
    }
    if (rc_ == EOWNERDEAD) {
      rc_ = pthread_mutex_consistent(m_);
      if (rc_ != 0) pthread_mutex_unlock(m_);
    }
  }
  ~WriterLock() {
    if (rc_ == 0) pthread_mutex_unlock(m_);
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  Status status() const {
    if (rc_ == 0) return {};
    if (rc_ == ETIMEDOUT)
      return Error{Errc::timeout, "another process has held the registry's writer lock for " +
                                      std::to_string(kLockPatienceSeconds) +
                                      " s (stopped, or under a debugger?); resume it and retry"};
    return Error{Errc::system_error, std::string("locking the registry failed: ") +
                                         std::strerror(rc_) +
                                         "; the registry may be damaged, remove it (shmctl gc)"};
  }

 private:
  pthread_mutex_t* m_;
  int rc_;
};

std::size_t table_size(std::uint32_t slots) {
  return kSlotsOffset + std::size_t{slots} * sizeof(RegistrySlot);
}

Error not_found_retired(const std::string& ns) {
  return {Errc::not_found, "the registry of namespace '" + ns +
                               "' kept being retired as it was opened for 3 s; retry"};
}

}  // namespace

Result<Registry> Registry::checked_table(shm::Segment opened, std::string ns,
                                         RegistryOptions options) {
  const auto* h =
      reinterpret_cast<const RegistryHeader*>(opened.base() + sizeof(shm::SegmentHeader));
  const std::uint32_t slots = h->slot_count;  // read once: never trust it twice
  if (opened.size() < kSlotsOffset || slots == 0 || slots > kMaxSlots ||
      opened.size() != table_size(slots))
    return Error{Errc::segment_invalid,
                 "registry /dev/shm/" + opened.name() +
                     " has a slot count that does not match its size; remove it (shmctl gc) "
                     "once no port of the namespace runs"};
  return Registry(std::move(opened), slots, std::move(ns), options);
}

Status Registry::reopen() {
  auto fresh = open(ns_, options_);
  if (!fresh) return std::move(fresh).error();
  *this = std::move(fresh).value();
  return {};
}

Result<Registry> Registry::open(std::string_view ns, RegistryOptions options) {
  if (options.slots == 0 || options.slots > kMaxSlots)
    return Error{Errc::bad_config, "registry slots " + std::to_string(options.slots) +
                                       " must be 1 to " + std::to_string(kMaxSlots)};
  auto resolved = shm::resolve_namespace(ns);
  if (!resolved) return std::move(resolved).error();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    if (!options.create) {
      auto opened = shm::Segment::open(ns, kSegmentName, shm::SegmentKind::registry);
      if (!opened) {
        if (opened.code() == Errc::not_ready && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        return std::move(opened).error();
      }
      auto table = checked_table(std::move(opened).value(), *resolved, options);
      if (!table || !table->retired()) return table;
      // Retired as we opened it (it is being unlinked), or left linked by a retirer that died
      // in between: unlink it if its name still names it, and look again.
      table->segment_.remove_if_still_named();
      if (std::chrono::steady_clock::now() >= give_up) return not_found_retired(*resolved);
      continue;
    }
    auto created = shm::Segment::create(ns, kSegmentName, shm::SegmentKind::registry,
                                        table_size(options.slots), {.mode = options.mode});
    if (created) {
      auto* h = reinterpret_cast<RegistryHeader*>(created->base() + sizeof(shm::SegmentHeader));
      h->slot_count = options.slots;
      if (auto st = shm::init_robust_mutex(&h->writers, "the registry mutex"); !st) return std::move(st).error();
      created->publish();
      created->disown();  // the table outlives its creator: every process of the namespace uses it
      return Registry(std::move(created).value(), options.slots, *resolved, options);
    }
    if (created.code() != Errc::already_exists) return std::move(created).error();

    auto opened = shm::Segment::open(ns, kSegmentName, shm::SegmentKind::registry);
    if (opened) {
      auto table = checked_table(std::move(opened).value(), *resolved, options);
      if (!table || !table->retired()) return table;
      table->segment_.remove_if_still_named();  // as above; then create it anew
      if (std::chrono::steady_clock::now() >= give_up) return not_found_retired(*resolved);
      continue;
    }
    // Its creator is still initialising it, or removed it between our two calls: try again.
    // A creator that died before publishing it would block the namespace for good: remove
    // what it left and create the table anew.
    const bool transient = opened.code() == Errc::not_ready || opened.code() == Errc::not_found;
    if (transient && shm::Segment::remove_if_abandoned(ns, kSegmentName, std::chrono::seconds(1)))
      continue;
    if (!transient || std::chrono::steady_clock::now() >= give_up) return std::move(opened).error();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::optional<PortEntry> Registry::read_slot(std::uint32_t i) const {
  const RegistrySlot& s = slot(i);
  for (int attempt = 0; attempt < 4; ++attempt) {
    // acquire: pairs with the writer's release store that made the slot live.
    const std::uint64_t before = s.state.load(std::memory_order_acquire);
    if ((before & kSlotStateMask) != kSlotLive) return std::nullopt;
    PortEntry e;
    e.key.network_id = load_text(s.key, kKeyWords);
    e.key.node_id = load_text(s.key + kKeyWords, kKeyWords);
    e.key.in_port = load_text(s.key + 2 * kKeyWords, kKeyWords);
    e.segment = load_text(s.segment, std::size(s.segment));
    // relaxed: all covered by the seqlock re-check below.
    e.owner.start_time = s.owner_start_time.load(std::memory_order_relaxed);
    e.ring_offset = s.ring_offset.load(std::memory_order_relaxed);
    const std::uint64_t pid = s.owner_pid.load(std::memory_order_relaxed);
    // acquire fence: the field loads above happen before the re-read of state.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.state.load(std::memory_order_relaxed) == before) {  // relaxed: ordered by the fence
      // Never trust shared memory: an entry no writer of ours could have made is not there.
      if (pid == 0 || pid > 0x3fffffff || !validate_key(e.key) ||
          !shm::validate_part("segment name", e.segment, kSegmentNameMax))
        return std::nullopt;
      e.owner.pid = static_cast<std::uint32_t>(pid);
      e.generation = before >> 2;
      e.slot = i;
      return e;
    }
  }
  return std::nullopt;  // rewritten under us again and again: as good as not there right now
}

Result<PortEntry> Registry::lookup(const PortKey& key) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  if (retired()) {
    if (auto st = reopen(); !st) return std::move(st).error();
  }
  // Compare the key's words in place and copy out (with the seqlock check) only a match.
  std::uint64_t want[3 * kKeyWords];
  encode_key(key, want);
  for (std::uint32_t i = 0; i < slot_count_; ++i) {
    const RegistrySlot& s = slot(i);
    // relaxed: a filter only; read_slot re-reads everything under the seqlock.
    if ((s.state.load(std::memory_order_relaxed) & kSlotStateMask) != kSlotLive) continue;
    bool same = true;
    for (std::size_t w = 0; w < 3 * kKeyWords && same; ++w)
      same = s.key[w].load(std::memory_order_relaxed) == want[w];  // relaxed: a filter only
    if (!same) continue;
    if (auto e = read_slot(i); e && e->key == key) return std::move(*e);
  }
  return Error{Errc::not_found, "no port " + to_string(key) + " is registered in /dev/shm/" +
                                    segment_.name() + "; has its owner started it?"};
}

Result<Registration> Registry::register_port(const PortKey& key, std::string_view segment,
                                             std::uint64_t ring_offset) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  if (auto st = shm::validate_part("segment name", segment, kSegmentNameMax); !st)
    return std::move(st).error();
  const shm::ProcessId me = shm::self_process();
  if (me.start_time == 0)
    return Error{Errc::system_error,
                 "cannot read this process's start time from /proc/self/stat; other processes "
                 "could not tell whether this owner is alive"};
  auto lock = std::make_unique<WriterLock>(&header()->writers);
  if (auto st = lock->status(); !st) return std::move(st).error();
  while (retired()) {  // the last port of the namespace left as we came: use the new table
    lock.reset();
    if (auto st = reopen(); !st) return std::move(st).error();
    lock = std::make_unique<WriterLock>(&header()->writers);
    if (auto st = lock->status(); !st) return std::move(st).error();
  }

  std::optional<std::uint32_t> target, free_slot, dead_slot;
  std::optional<PortEntry> previous;
  for (std::uint32_t i = 0; i < slot_count_ && !target; ++i) {
    auto e = read_slot(i);  // stable: every writer holds the lock we hold
    if (!e) {
      if (!free_slot) free_slot = i;  // free, or left half-written by a killed writer
    } else if (e->key == key) {
      if (shm::is_alive(e->owner))
        return Error{Errc::already_exists,
                     "port " + to_string(key) + " is already started by pid " +
                         std::to_string(e->owner.pid) +
                         "; stop that owner first, or start the port under another key"};
      target = i;
      previous = std::move(e);
    } else if (!dead_slot && !shm::is_alive(e->owner)) {
      dead_slot = i;  // a port whose owner died without unregistering: reusable if full
      previous = std::move(e);
    }
  }
  if (!target) {
    if (free_slot) {
      target = free_slot;
      previous.reset();
    } else if (dead_slot) {
      target = dead_slot;  // `previous` holds that dead owner's entry
    } else {
      return Error{Errc::registry_full,
                   "all " + std::to_string(slot_count_) + " slots of registry /dev/shm/" +
                       segment_.name() +
                       " hold ports of live owners; stop some, or recreate the registry with "
                       "more slots once no port of the namespace runs"};
    }
  }

  RegistrySlot& s = slot(*target);
  // relaxed: only writers (holding the lock) read the generation.
  const std::uint64_t generation = (s.state.load(std::memory_order_relaxed) >> 2) + 1;
  // relaxed + release fence: readers that see any field below also see "being written".
  s.state.store((generation << 2) | kSlotWriting, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  store_text(s.key, kKeyWords, key.network_id);
  store_text(s.key + kKeyWords, kKeyWords, key.node_id);
  store_text(s.key + 2 * kKeyWords, kKeyWords, key.in_port);
  store_text(s.segment, std::size(s.segment), segment);
  // relaxed: published by the release store of state below.
  s.owner_pid.store(me.pid, std::memory_order_relaxed);
  s.owner_start_time.store(me.start_time, std::memory_order_relaxed);
  s.ring_offset.store(ring_offset, std::memory_order_relaxed);
  // release: a reader that sees the slot live sees every field above.
  s.state.store((generation << 2) | kSlotLive, std::memory_order_release);
  return Registration{*target, generation, std::move(previous)};
}

Status Registry::unregister(std::uint32_t slot_index, std::uint64_t generation) {
  return free_slot(slot_index, generation, true);
}

Status Registry::free_slot(std::uint32_t slot_index, std::uint64_t generation, bool owner_only) {
  if (slot_index >= slot_count_ || generation > (~std::uint64_t{0} >> 2))
    return Error{Errc::not_found, "registry slot " + std::to_string(slot_index) +
                                      " holds no registration of generation " +
                                      std::to_string(generation)};
  WriterLock lock(&header()->writers);
  if (auto st = lock.status(); !st) return st;
  RegistrySlot& s = slot(slot_index);
  // relaxed: writers are serialised by the lock.
  if (s.state.load(std::memory_order_relaxed) != ((generation << 2) | kSlotLive))
    return Error{Errc::not_found, "the registration in slot " + std::to_string(slot_index) +
                                      " was already removed or taken over"};
  const shm::ProcessId me = shm::self_process();
  if (owner_only && (s.owner_pid.load(std::memory_order_relaxed) != me.pid ||
                     s.owner_start_time.load(std::memory_order_relaxed) != me.start_time))
    return Error{Errc::wrong_process, "only the process that registered a port may unregister it"};
  // release: readers that see it free stop using it (the generation stays for the next one).
  s.state.store((generation << 2) | kSlotFree, std::memory_order_release);
  retire_if_unused();
  return {};
}

std::vector<PortEntry> Registry::entries() {
  std::vector<PortEntry> out;
  if (retired() && !reopen()) return out;
  for (std::uint32_t i = 0; i < slot_count_; ++i)
    if (auto e = read_slot(i)) out.push_back(std::move(*e));
  return out;
}

Status Registry::remove_entry(std::uint32_t slot_index, std::uint64_t generation) {
  return free_slot(slot_index, generation, false);
}

void Registry::retire_if_empty() {
  WriterLock lock(&header()->writers);
  if (lock.status() && !retired()) retire_if_unused();
}

void Registry::retire_if_unused() {
  for (std::uint32_t i = 0; i < slot_count_; ++i)  // relaxed: writers are serialised by the lock
    if ((slot(i).state.load(std::memory_order_relaxed) & kSlotStateMask) != kSlotFree) return;
  // The last port left: retire the table, so that the namespace leaves nothing behind. A writer
  // waiting for the lock sees `retired` and opens (creates) the namespace's table anew.
  // release: pairs with retired()'s acquire.
  header()->retired.store(1, std::memory_order_release);
  segment_.remove_if_still_named();
}

}  // namespace bloccs::registry
