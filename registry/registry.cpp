// SPDX-License-Identifier: Apache-2.0
#include "registry/registry.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "shm/names.hpp"
#include "shm/robust_mutex.hpp"
#include "shm/test_hooks.hpp"

namespace bloccs::registry {
namespace {

constexpr const char* kSegmentName = "registry";
constexpr std::size_t kKeyWords = 4;     // 32 bytes per key part
constexpr int kLockPatienceSeconds = 5;  // writers hold the lock for microseconds
constexpr int kOpenAttempts = 100;       // tables retired under us, one after another

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

std::size_t table_size(std::uint32_t slots) {
  return kSlotsOffset + std::size_t{slots} * sizeof(RegistrySlot);
}

Result<std::uint32_t> slots_wanted(std::uint32_t asked) {
  std::uint32_t slots = asked;
  if (slots == 0) {
    slots = kDefaultSlots;
    if (const char* env = std::getenv("BLOCCS_REGISTRY_SLOTS"); env && *env) {
      const std::string_view text(env);
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), slots);
      if (ec != std::errc() || end != text.data() + text.size() || slots == 0)
        return Error{Errc::bad_config, "BLOCCS_REGISTRY_SLOTS='" + std::string(text) +
                                           "' is not a number of slots; set it to 1 to " +
                                           std::to_string(kMaxSlots) + ", or unset it"};
    }
  }
  if (slots > kMaxSlots)
    return Error{Errc::bad_config, "registry slots " + std::to_string(slots) + " must be 1 to " +
                                       std::to_string(kMaxSlots)};
  return slots;
}

// What a registry that cannot be used means for the namespace, and what to do.
Error damaged(const std::string& ns, const Error& why) {
  return {why.code, "the registry of namespace '" + ns + "' cannot be used: " + why.message +
                        ". Ports registered in it cannot be found while it is so. bloccs never "
                        "replaces it (live ports may be registered in it): stop the "
                        "namespace's ports, then remove it (shmctl --namespace " +
                        ns + " gc), or use another namespace"};
}

}  // namespace

// Holds the registry's robust writer mutex, and on taking it puts back an entry that a writer
// killed in the middle of a take-over left half written (registry_layout.hpp, the journal).
class WriterLock {
 public:
  explicit WriterLock(Registry& r) : r_(r), m_(&r.header()->writers) {
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
    if (rc_ == 0) repair();
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
    return Error{Errc::corrupt, std::string("locking the registry failed: ") + std::strerror(rc_) +
                                    "; the registry is damaged: stop the namespace's ports, then "
                                    "remove it (shmctl gc)"};
  }

  // Before overwriting slot `i` (a dead owner's entry): its words go to the journal first.
  void save(std::uint32_t i) {
    Journal& j = *r_.journal();
    RegistrySlot& s = r_.slot(i);
    for (std::size_t w = 0; w < kSlotWords; ++w)  // relaxed: published by the release below
      j.words[w].store(s.words[w].load(std::memory_order_relaxed), std::memory_order_relaxed);
    // release: a later writer that sees the journal set sees the words above.
    j.slot_plus_one.store(i + 1, std::memory_order_release);
  }
  void saved_done() {
    // release: the slot is complete before the journal says so.
    r_.journal()->slot_plus_one.store(0, std::memory_order_release);
  }

 private:
  // A writer died between save() and saved_done(): if the slot it was overwriting is not
  // complete, the dead owner's entry goes back (readers see the slot being written meanwhile).
  void repair() {
    Journal& j = *r_.journal();
    // acquire: pairs with save()'s release; the words are the dead writer's copy.
    const std::uint64_t sp = j.slot_plus_one.load(std::memory_order_acquire);
    if (sp == 0) return;
    if (sp <= r_.slot_count_) {
      RegistrySlot& s = r_.slot(static_cast<std::uint32_t>(sp - 1));
      const std::uint64_t old_state = j.words[0].load(std::memory_order_relaxed);
      // relaxed: writers are serialised by the lock we hold.
      const std::uint64_t now = s.state().load(std::memory_order_relaxed);
      const bool completed =
          (now & kSlotStateMask) == kSlotLive && (now >> 2) == (old_state >> 2) + 1;
      if (!completed) {
        // relaxed + release fence: readers that see any word below also see "being written".
        s.state().store((old_state & ~kSlotStateMask) | kSlotWriting, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        for (std::size_t w = 1; w < kSlotWords; ++w)  // relaxed: published by state below
          s.words[w].store(j.words[w].load(std::memory_order_relaxed), std::memory_order_relaxed);
        // release: a reader that sees the old state again sees the old words.
        s.state().store(old_state, std::memory_order_release);
      }
    }
    saved_done();
  }

  Registry& r_;
  pthread_mutex_t* m_;
  int rc_;
};

Result<Registry> Registry::checked_table(shm::Segment opened, std::string ns,
                                         RegistryOptions options) {
  const auto* h =
      reinterpret_cast<const RegistryHeader*>(opened.base() + sizeof(shm::SegmentHeader));
  const std::uint32_t slots = h->slot_count;  // read once: never trust it twice
  if (opened.size() < kSlotsOffset || slots == 0 || slots > kMaxSlots ||
      opened.size() != table_size(slots))
    return damaged(ns, {Errc::segment_invalid, "/dev/shm/" + opened.name() +
                                                   " has a slot count that does not match its "
                                                   "size"});
  return Registry(std::move(opened), slots, std::move(ns), options);
}

Status Registry::reopen() {
  auto fresh = open(ns_, options_);
  if (!fresh) return std::move(fresh).error();
  *this = std::move(fresh).value();
  return {};
}

void Registry::finish_retirement() {
  WriterLock lock(*this);
  if (lock.status() && retired()) segment_.remove_if_still_named();
}

Result<Registry> Registry::open(std::string_view ns, RegistryOptions options) {
  auto slots = slots_wanted(options.slots);
  if (!slots) return std::move(slots).error();
  auto resolved = shm::resolve_namespace(ns);
  if (!resolved) return std::move(resolved).error();
  if (!options.sharing) {
    auto env = shm::sharing_from_environment();
    if (!env) return std::move(env).error();
    options.sharing = *env;
  }
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    auto opened = shm::Segment::open(*resolved, kSegmentName, shm::SegmentKind::registry,
                                     {.any_owner = options.any_owner});
    if (opened) {
      auto table = checked_table(std::move(opened).value(), *resolved, options);
      if (!table || !table->retired()) return table;
      // Retired as we opened it (it is being unlinked), or left named by a retirer that died
      // in between: finish its work, and look again.
      table->finish_retirement();
      continue;
    }
    if (opened.code() != Errc::not_found) {
      if (opened.code() == Errc::permission_denied) return std::move(opened).error();
      return damaged(*resolved, opened.error());
    }
    if (!options.create) return std::move(opened).error();

    // Everyone who may use the namespace may use its table: group access iff it is shared.
    auto dir = shm::NamespaceDir::open_or_create(*resolved, *options.sharing);
    if (!dir) return std::move(dir).error();
    auto created = shm::Segment::create(
        *resolved, kSegmentName, shm::SegmentKind::registry, table_size(*slots),
        {.mode = static_cast<mode_t>(dir->shared() ? 0660 : 0600), .sharing = options.sharing});
    if (!created) return std::move(created).error();
    auto* h = reinterpret_cast<RegistryHeader*>(created->base() + sizeof(shm::SegmentHeader));
    h->slot_count = *slots;
    if (auto st = shm::init_robust_mutex(&h->writers, "the registry mutex"); !st)
      return std::move(st).error();
    auto* first = reinterpret_cast<RegistrySlot*>(created->base() + kSlotsOffset);
    for (std::uint32_t i = 0; i < *slots; ++i)
      if (auto st = shm::init_liveness_lock(first[i].live, "a registry slot's lock"); !st)
        return std::move(st).error();
    if (auto st = created->publish(); !st) {
      if (st.code() == Errc::already_exists) continue;  // another process made it first: use it
      return std::move(st).error();
    }
    created->disown();  // the table outlives its creator: every process of the namespace uses it
    return Registry(std::move(created).value(), *slots, *resolved, options);
  }
  return Error{Errc::not_found, "the registry of namespace '" + *resolved + "' was retired " +
                                    std::to_string(kOpenAttempts) +
                                    " times as it was opened; retry"};
}

std::optional<PortEntry> Registry::read_slot(std::uint32_t i) const {
  const RegistrySlot& s = slot(i);
  for (int attempt = 0; attempt < 4; ++attempt) {
    // acquire: pairs with the writer's release store that made the slot live.
    const std::uint64_t before = s.state().load(std::memory_order_acquire);
    if ((before & kSlotStateMask) != kSlotLive) return std::nullopt;
    PortEntry e;
    e.key.network_id = load_text(s.key(), kKeyWords);
    e.key.node_id = load_text(s.key() + kKeyWords, kKeyWords);
    e.key.in_port = load_text(s.key() + 2 * kKeyWords, kKeyWords);
    e.segment = load_text(s.segment(), kSegmentWords);
    // relaxed: all covered by the seqlock re-check below.
    e.owner.start_time = s.words[2].load(std::memory_order_relaxed);
    e.ring_offset = s.words[3].load(std::memory_order_relaxed);
    const std::uint64_t pid = s.words[1].load(std::memory_order_relaxed);
    // acquire fence: the field loads above happen before the re-read of state.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.state().load(std::memory_order_relaxed) == before) {  // relaxed: ordered by the fence
      // Never trust shared memory: an entry no writer of ours could have made is not there.
      if (pid > 0x3fffffff || !validate_key(e.key) ||
          !shm::validate_part("segment name", e.segment, kSegmentNameMax))
        return std::nullopt;
      e.owner.pid = static_cast<std::uint32_t>(pid);
      e.alive = shm::held(s.live);
      e.generation = before >> 2;
      e.slot = i;
      return e;
    }
  }
  return std::nullopt;  // rewritten under us again and again: as good as not there right now
}

Result<PortEntry> Registry::lookup(const PortKey& key) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  if (segment_.damaged()) return damaged(ns_, segment_.damage_error());
  if (retired()) {
    if (auto st = reopen(); !st) return std::move(st).error();
  }
  // Compare the key's words in place and copy out (with the seqlock check) only a match.
  std::uint64_t want[3 * kKeyWords];
  encode_key(key, want);
  std::optional<PortEntry> found;
  for (std::uint32_t i = 0; i < slot_count_; ++i) {
    const RegistrySlot& s = slot(i);
    // relaxed: a filter only; read_slot re-reads everything under the seqlock.
    if ((s.state().load(std::memory_order_relaxed) & kSlotStateMask) != kSlotLive) continue;
    bool same = true;
    for (std::size_t w = 0; w < 3 * kKeyWords && same; ++w)
      same = s.key()[w].load(std::memory_order_relaxed) == want[w];  // relaxed: a filter only
    if (!same) continue;
    if (auto e = read_slot(i); e && e->key == key) {
      if (e->alive) return std::move(*e);
      if (!found) found = std::move(e);
    }
  }
  if (found) return std::move(*found);
  if (!segment_.intact()) return damaged(ns_, segment_.damage_error());
  return Error{Errc::not_found, "no port " + to_string(key) + " is registered in /dev/shm/" +
                                    segment_.name() + "; has its owner started it?"};
}

Result<Registration> Registry::register_port(const PortKey& key, std::string_view segment,
                                             std::uint64_t ring_offset, const MayEvict& may_evict) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  if (auto st = shm::validate_part("segment name", segment, kSegmentNameMax); !st)
    return std::move(st).error();
  const shm::ProcessId me = shm::self_process();
  if (segment_.damaged()) return damaged(ns_, segment_.damage_error());
  auto lock = std::make_unique<WriterLock>(*this);
  if (auto st = lock->status(); !st) return std::move(st).error();
  while (retired()) {  // the last port of the namespace left as we came: use the new table
    lock.reset();
    if (auto st = reopen(); !st) return std::move(st).error();
    lock = std::make_unique<WriterLock>(*this);
    if (auto st = lock->status(); !st) return std::move(st).error();
  }

  std::optional<std::uint32_t> target, free_slot;
  std::optional<PortEntry> previous;
  std::vector<PortEntry> dead;  // other keys' entries of dead owners
  for (std::uint32_t i = 0; i < slot_count_ && !target; ++i) {
    auto e = read_slot(i);  // stable: every writer holds the lock we hold
    if (!e) {
      // Free, or left half-written by a killed writer. A free slot whose lock is still held
      // belongs to an owner removed by force (shmctl rm --force) that has not let go yet.
      if (!free_slot && !shm::held(slot(i).live)) free_slot = i;
    } else if (e->key == key) {
      if (e->alive)
        return Error{Errc::already_exists,
                     "port " + to_string(key) + " is already started by pid " +
                         std::to_string(e->owner.pid) +
                         "; stop that owner first, or start the port under another key"};
      target = i;
      previous = std::move(e);
    } else if (!e->alive) {
      dead.push_back(std::move(*e));
    }
  }
  if (!target && free_slot) target = free_slot;
  std::uint32_t holding = 0;  // dead entries kept because their ports still hold messages
  for (std::size_t d = 0; !target && d < dead.size(); ++d) {
    if (may_evict && may_evict(dead[d])) {
      target = dead[d].slot;
      previous = std::move(dead[d]);
    } else {
      ++holding;
    }
  }
  if (!target)
    return Error{Errc::registry_full,
                 "all " + std::to_string(slot_count_) + " slots of registry /dev/shm/" +
                     segment_.name() + " hold ports" +
                     (holding ? " (" + std::to_string(holding) +
                                    " of them of dead owners whose ports still hold messages: "
                                    "restart those owners to deliver them, or discard them "
                                    "with shmctl gc)"
                              : std::string(" of live owners")) +
                     "; stop some, or give the namespace more slots: set "
                     "BLOCCS_REGISTRY_SLOTS (up to " +
                     std::to_string(kMaxSlots) +
                     ") in the processes that start its ports; it takes effect when the "
                     "namespace's registry is next made, once none of its ports runs"};

  RegistrySlot& s = slot(*target);
  if (previous) lock->save(*target);  // a dead owner's entry is overwritten: journal it first
  auto live =
      shm::HeldLock::take(s.live, "the liveness lock of registry slot " + std::to_string(*target));
  if (!live) {
    if (previous) lock->saved_done();  // nothing of the slot was changed
    return std::move(live).error();
  }
  // relaxed: only writers (holding the lock) read the generation.
  const std::uint64_t generation = (s.state().load(std::memory_order_relaxed) >> 2) + 1;
  // relaxed + release fence: readers that see any field below also see "being written".
  s.state().store((generation << 2) | kSlotWriting, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  store_text(s.key(), kKeyWords, key.network_id);
  store_text(s.key() + kKeyWords, kKeyWords, key.node_id);
  store_text(s.key() + 2 * kKeyWords, kKeyWords, key.in_port);
  store_text(s.segment(), kSegmentWords, segment);
  shm::test_hook("registry.overwrite");  // half written: the journal must bring the old entry back
  // relaxed: published by the release store of state below.
  s.owner_pid().store(me.pid, std::memory_order_relaxed);
  s.owner_start_time().store(me.start_time, std::memory_order_relaxed);
  s.ring_offset().store(ring_offset, std::memory_order_relaxed);
  // release: a reader that sees the slot live sees every field above.
  s.state().store((generation << 2) | kSlotLive, std::memory_order_release);
  if (previous) lock->saved_done();
  return Registration{*target, generation, std::move(previous), std::move(live).value()};
}

Status Registry::unregister(Registration& registration) {
  if (!registration.live.holds())
    return Error{Errc::wrong_process, "only the process that registered a port may unregister it"};
  Status st = free_slot(registration.slot, registration.generation, true, true);
  registration.live.release();
  return st;
}

Status Registry::free_slot(std::uint32_t slot_index, std::uint64_t generation, bool owner_only,
                           bool even_if_alive) {
  if (slot_index >= slot_count_ || generation > (~std::uint64_t{0} >> 2))
    return Error{Errc::not_found, "registry slot " + std::to_string(slot_index) +
                                      " holds no registration of generation " +
                                      std::to_string(generation)};
  WriterLock lock(*this);
  if (auto st = lock.status(); !st) return st;
  RegistrySlot& s = slot(slot_index);
  // relaxed: writers are serialised by the lock.
  if (s.state().load(std::memory_order_relaxed) != ((generation << 2) | kSlotLive))
    return Error{Errc::not_found, "the registration in slot " + std::to_string(slot_index) +
                                      " was already removed or taken over"};
  if (!owner_only && !even_if_alive && shm::held(s.live))
    return Error{Errc::wrong_process, "the owner of registry slot " + std::to_string(slot_index) +
                                          " is alive; stop it, or remove it by force"};
  // release: readers that see it free stop using it (the generation stays for the next one).
  s.state().store((generation << 2) | kSlotFree, std::memory_order_release);
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

Status Registry::remove_entry(std::uint32_t slot_index, std::uint64_t generation,
                              bool even_if_alive) {
  return free_slot(slot_index, generation, false, even_if_alive);
}

void Registry::retire_if_empty() {
  WriterLock lock(*this);
  if (lock.status() && !retired()) retire_if_unused();
}

void Registry::retire_if_unused() {
  for (std::uint32_t i = 0; i < slot_count_; ++i)  // relaxed: writers are serialised by the lock
    if ((slot(i).state().load(std::memory_order_relaxed) & kSlotStateMask) != kSlotFree) return;
  // The last port left: retire the table, so that the namespace leaves nothing behind. A writer
  // waiting for the lock sees `retired` and opens (creates) the namespace's table anew.
  // release: pairs with retired()'s acquire.
  header()->retired.store(1, std::memory_order_release);
  segment_.remove_if_still_named();  // we hold its lock: the name is this table's (layout.hpp)
}

}  // namespace bloccs::registry
