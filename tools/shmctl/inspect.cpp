// SPDX-License-Identifier: Apache-2.0
// Reading ports for shmctl. Every length, offset and index read from shared memory is checked
// before use: a damaged or foreign segment becomes an error line, never a crash.
#include "tools/shmctl/inspect.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "lockfree/chain.hpp"
#include "lockfree/ring.hpp"
#include "pipeline/node_block.hpp"
#include "port/meta_codec.hpp"
#include "port/port_layout.hpp"
#include "port/port_stats.hpp"
#include "shm/names.hpp"
#include "shm/namespace_dir.hpp"
#include "shm/process.hpp"

namespace bloccs::shmctl {
namespace {

using lockfree::LinkId;

// More links than this is not a queue but a loop or damage (each link holds at least 64 KiB).
constexpr std::uint32_t kMaxLinksWalked = 100'000;

const port::PortControl& control_of(const shm::Segment& seg) {
  return *reinterpret_cast<const port::PortControl*>(seg.base());
}

std::string link_name(const std::string& base, std::uint64_t id) {
  lockfree::ChainSpec spec;
  spec.base = base;
  return spec.link_name(LinkId::unpack(id));
}

// A read-only view of one ring segment, its config checked.
struct RingRead {
  shm::Segment seg;
  lockfree::RingConfig cfg;
  const lockfree::RingControl& control() const {
    return *reinterpret_cast<const lockfree::RingControl*>(seg.base());
  }
};

Result<RingRead> open_ring(const std::string& ns, const std::string& name) {
  auto seg = shm::Segment::open(ns, name, shm::SegmentKind::ring, {.read_only = true});
  if (!seg) return std::move(seg).error();
  auto cfg = lockfree::validated_config(*seg);
  if (!cfg) return std::move(cfg).error();
  const lockfree::RingConfig config = *cfg;
  return RingRead{std::move(seg).value(), config};
}

// Walks a chain from the link `oldest` (re-read if that link was just finished and removed),
// calling visit(const RingRead&) for each link while it returns true.
template <class Visit>
Status walk_chain(const std::string& ns, const std::string& base, bool unbounded,
                  const std::atomic<std::uint64_t>& oldest, Visit&& visit) {
  for (int attempt = 0;; ++attempt) {
    // relaxed: a hint; the link is opened by name and checked.
    std::uint64_t id = oldest.load(std::memory_order_relaxed);
    auto first = open_ring(ns, link_name(base, id));
    if (!first) {
      if (first.code() == Errc::not_found && attempt < 3) continue;  // the owner moved on
      return std::move(first).error();
    }
    std::optional<RingRead> ring(std::move(first).value());
    // Every length read from a link's control block is checked before it is trusted.
    auto sane = [&](const RingRead& r) -> Status {
      const auto s = lockfree::read_stats(r.seg, r.cfg);
      if (s.bytes_used > r.cfg.capacity || (!s.sealed && s.depth > r.cfg.buffer))
        return Error{Errc::corrupt, "ring /dev/shm/" + r.seg.name() +
                                        " has its head and tail further apart than it holds; "
                                        "it is damaged (shmctl rm, then restart its owner)"};
      return {};
    };
    LinkId at = LinkId::unpack(id);
    for (std::uint32_t links = 0;; ++links) {
      if (links == kMaxLinksWalked)
        return Error{Errc::corrupt, base + " has more than " + std::to_string(kMaxLinksWalked) +
                                        " links: its successor words loop or are damaged"};
      if (auto st = sane(*ring); !st) return st;
      if (!visit(*ring) || !unbounded) break;  // a bounded port is one ring: no successor
      // acquire: a successor is published before it is offered.
      const std::uint64_t next = ring->control().counters.next.load(std::memory_order_acquire);
      if (next == 0 || next == lockfree::kNextSealed) break;
      if (LinkId::unpack(next).index != at.index + 1)
        return Error{Errc::corrupt, base + " link " + std::to_string(at.index) +
                                        " names link " +
                                        std::to_string(LinkId::unpack(next).index) +
                                        " as its successor: the chain is damaged"};
      auto r = open_ring(ns, link_name(base, next));
      if (!r) break;  // read and removed as we walked: what follows is counted from `oldest`
      ring.emplace(std::move(r).value());
      at = LinkId::unpack(next);
    }
    return {};
  }
}

}  // namespace

Result<PortKey> parse_key(const std::string& text) {
  PortKey key;
  std::string* parts[] = {&key.network_id, &key.node_id, &key.in_port};
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const std::size_t slash = text.find('/', start);
    if ((i < 2) != (slash != std::string::npos))
      return Error{Errc::bad_name, "port key '" + text +
                                       "' must be network/node/in_port: three names, two slashes"};
    *parts[i] = text.substr(start, i < 2 ? slash - start : std::string::npos);
    start = slash + 1;
  }
  if (auto st = validate_key(key); !st) return std::move(st).error();
  return key;
}

std::string key_text(const PortKey& key) {
  return key.network_id + "/" + key.node_id + "/" + key.in_port;
}

Result<registry::Registry> open_registry(const std::string& ns) {
  // Root may collect what other users' dead processes left (their namespaces are not its own).
  return registry::Registry::open(ns, {.create = false, .any_owner = geteuid() == 0});
}

PortView inspect(const std::string& ns, const registry::PortEntry& entry) {
  PortView v;
  v.entry = entry;
  v.owner_alive = entry.alive;
  auto seg = shm::Segment::open(ns, entry.segment, shm::SegmentKind::port, {.read_only = true});
  if (!seg) {
    v.error = seg.error().message;
    return v;
  }
  if (seg->size() != sizeof(port::PortControl)) {
    v.error = "port segment /dev/shm/" + seg->name() + " is " + std::to_string(seg->size()) +
              " bytes, not a port's; remove it (shmctl rm)";
    return v;
  }
  const port::PortControl& c = control_of(*seg);
  const port::PortConfig cfg = c.config;  // one copy, checked, then only the copy is used
  if (cfg.owner_pid != entry.owner.pid || cfg.buffer > lockfree::kMaxBuffer) {
    v.error = "port segment /dev/shm/" + seg->name() + " does not match its registration";
    return v;
  }
  v.owner_alive = v.owner_alive && port::owner_alive(c);
  v.spsc = (cfg.flags & port::kSinglePusher) != 0;
  v.buffer = cfg.buffer;
  v.max_payload = cfg.max_payload;

  // relaxed everywhere: counters for people; they order nothing.
  const auto load = [](const std::atomic<std::uint64_t>& w) {
    return w.load(std::memory_order_relaxed);
  };
  // Read before the queue: a message consumed while we walk is then in neither, never in
  // both (pushed may lag a moment; it never runs ahead).
  const std::uint64_t in_consumed = load(c.consumer.in_consumed);
  std::uint64_t in_depth = 0;
  const Status in = walk_chain(ns, entry.segment + ".in", cfg.buffer == 0, c.consumer.in_oldest,
                               [&](const RingRead& r) {
                                 const auto s = lockfree::read_stats(r.seg, r.cfg);
                                 in_depth += s.depth;
                                 v.bytes_used += s.bytes_used;
                                 v.capacity += r.cfg.capacity;
                                 v.parked_pushers += s.parked_pushers;
                                 ++v.links;
                                 return true;
                               });
  if (!in) {
    v.error = in.error().message;
    return v;
  }
  std::uint64_t due_depth = 0;
  if (auto due = open_ring(ns, port::due_name(entry.segment)))
    due_depth = lockfree::read_stats(due->seg, due->cfg).depth;
  std::uint64_t requests = 0;
  (void)walk_chain(ns, entry.segment + ".later", true, c.timer.later_oldest,
                   [&](const RingRead& r) {
    requests += lockfree::read_stats(r.seg, r.cfg).depth;
    return true;
  });
  v.depth = in_depth + due_depth;
  v.due = due_depth;
  v.pending_after = load(c.timer.pending) + requests;
  PortCounters& k = v.counters;
  k.abandoned = load(c.consumer.abandoned);
  k.received = in_consumed + load(c.consumer.due_consumed);
  k.pushed = in_consumed + in_depth + k.abandoned;
  k.timed_out = load(c.pushers.timed_out);
  k.retried = load(c.timer.retries);
  k.refused = load(c.consumer.refused);
  k.after_delivered = load(c.timer.delivered);
  PortStats waits;
  port::pusher_waits(c, waits);
  v.pushes_waited = waits.pushes_waited;
  v.waited = waits.waited;
  v.longest_wait = waits.longest_wait;
  v.no_producer_while_waiting = waits.no_producer_while_waiting;
  v.histogram = (cfg.flags & port::kStamped) != 0;
  v.time_in_queue = port::QueueTimeSnapshot::read(c.time_in_queue);
  return v;
}

std::vector<Looked> look_at(const std::vector<std::string>& namespaces) {
  std::vector<Looked> out;
  for (const std::string& ns : namespaces) {
    auto reg = open_registry(ns);
    if (!reg) continue;  // no registry (nothing registered), or not ours to read
    Looked l{ns, {}};
    for (const auto& e : reg->entries()) l.ports.push_back(inspect(ns, e));
    if (!l.ports.empty()) out.push_back(std::move(l));
  }
  return out;
}

Result<std::vector<PeekedMessage>> peek(const std::string& ns, const registry::PortEntry& entry,
                                        std::size_t n) {
  auto seg = shm::Segment::open(ns, entry.segment, shm::SegmentKind::port, {.read_only = true});
  if (!seg) return std::move(seg).error();
  if (seg->size() != sizeof(port::PortControl))
    return Error{Errc::segment_invalid, "port segment /dev/shm/" + seg->name() +
                                            " is not a port's; remove it (shmctl rm)"};
  const port::PortControl& c = control_of(*seg);
  const bool unbounded = c.config.buffer == 0;
  std::vector<PeekedMessage> out;
  std::vector<std::byte> record;
  std::optional<Error> damaged;
  auto st = walk_chain(ns, entry.segment + ".in", unbounded, c.consumer.in_oldest,
                       [&](const RingRead& r) {
    const lockfree::RingControl& rc = r.control();
    const std::byte* data = r.seg.base() + r.cfg.data_offset;
    const std::uint64_t mask = r.cfg.capacity - 1;
    // acquire: the consumer's zeroing and reading of what lies before head happened before.
    lockfree::Cursor head =
        lockfree::Cursor::unpack(rc.consumer.head.load(std::memory_order_acquire));
    if (head.pos % 8 != 0) {  // records are 8-aligned: a header read here could leave the ring
      damaged = Error{Errc::corrupt, "ring /dev/shm/" + r.seg.name() +
                                         " has a misaligned head; it is damaged"};
      return false;
    }
    std::uint64_t pos = head.pos;
    bool to_the_end = false;  // only then do later links hold the next messages
    auto word = [&](std::uint64_t at) {
      // acquire: pairs with the commit (release), and with the consumer's zeroing order.
      return std::atomic_ref<const std::uint64_t>(
                 *reinterpret_cast<const std::uint64_t*>(data + (at & mask)))
          .load(std::memory_order_acquire);
    };
    // From the published head: first what the owner is handling now (an MPSC owner turns each
    // record it has handed over into a "consumed" header, then zeroes it: ring_layout.hpp), then
    // the queued messages. Every step moves forward; the walk is bounded by the capacity.
    for (std::uint64_t walked = 0; out.size() < n && walked < r.cfg.capacity;) {
      const std::uint64_t h = word(pos);
      if (lockfree::header_type(h) == lockfree::kTypeConsumed &&
          lockfree::header_length(h) <= r.cfg.max_payload) {  // handed over: not queued
        walked += lockfree::record_size(lockfree::header_length(h));
        pos = (pos + lockfree::record_size(lockfree::header_length(h))) & lockfree::kPosMask;
        continue;
      }
      // acquire: the tail as sealed, with every claim before it.
      const auto tail = lockfree::Cursor::unpack(rc.producer.tail.load(std::memory_order_acquire));
      if (h == 0) {
        if (pos == tail.pos || !lockfree::pos_before(pos, tail.pos)) {  // the end
          to_the_end = lockfree::tail_sealed(tail, head) && tail.pos == pos;
          break;
        }
        // Zeros: records the owner has handed over in this batch, or a claim nothing of which
        // is written yet. Whatever follows them starts at the next word that is not zero.
        std::uint64_t next = pos;
        for (std::uint64_t w = (pos + lockfree::kRecordHeader) & lockfree::kPosMask;
             lockfree::pos_before(w, tail.pos) &&
             walked + lockfree::pos_distance(w, pos) < r.cfg.capacity;
             w = (w + lockfree::kRecordHeader) & lockfree::kPosMask)
          if (word(w) != 0) {
            next = w;
            break;
          }
        if (next == pos) break;  // zeros up to the tail: nothing queued we can read yet
        walked += lockfree::pos_distance(next, pos);
        pos = next;
        continue;
      }
      if (!lockfree::header_committed(h)) break;  // an open claim: its messages come after it
      const std::uint32_t len = lockfree::header_length(h);
      if (!lockfree::committed_header_valid(h, pos & mask, r.cfg.capacity, r.cfg.max_payload,
                                            r.cfg.slot_count))
        break;  // damaged, or overwritten under us: stop here
      if (lockfree::header_type(h) != lockfree::kTypeData) {  // a pad or an aborted loan
        walked += lockfree::record_size(len);
        pos = (pos + lockfree::record_size(len)) & lockfree::kPosMask;
        continue;
      }
      record.resize(len);  // records never wrap: one copy
      std::memcpy(record.data(), data + (pos & mask) + lockfree::kRecordHeader, len);
      // The owner may have consumed it while we copied. An MPSC owner changes the header before
      // it zeroes the rest (consume()), so a copy that caught any zeroing sees the header
      // changed; an SPSC record is overwritten only after the head has moved past it.
      // acquire fence: the loads below come after the copy's.
      std::atomic_thread_fence(std::memory_order_acquire);
      const std::uint64_t again =
          std::atomic_ref<const std::uint64_t>(
              *reinterpret_cast<const std::uint64_t*>(data + (pos & mask)))
              .load(std::memory_order_relaxed);  // relaxed: ordered by the fence above
      head = lockfree::Cursor::unpack(rc.consumer.head.load(std::memory_order_acquire));
      if (head.pos % 8 != 0) break;  // damaged meanwhile: stop reading here
      if (lockfree::pos_before(pos, head.pos)) {  // consumed and handed back while we looked
        walked += lockfree::pos_distance(head.pos, pos);
        pos = head.pos;
        continue;
      }
      MetaView meta;
      std::span<const std::byte> payload;
      std::uint64_t stamp;  // read, not used here
      if (again == h && MetaCodec::decode(record, meta, payload, stamp))  // else taken while we copied
        out.push_back({{payload.begin(), payload.end()}, meta.copy()});
      walked += lockfree::record_size(len);
      pos = (pos + lockfree::record_size(len)) & lockfree::kPosMask;
    }
    return out.size() < n && to_the_end;
  });
  if (!st) return std::move(st).error();
  if (damaged) return *damaged;
  return out;
}

std::vector<std::string> family_segments(const std::string& ns, const std::string& control) {
  std::vector<std::string> out;
  auto dir = shm::NamespaceDir::open(ns, shm::DirUse::inspect);
  if (!dir) return out;
  const std::string shown = shm::namespace_dir_name(dir->ns()) + "/";
  for (const std::string& name : dir->list(control))
    if (name.size() == control.size() || name[control.size()] == '.') out.push_back(shown + name);
  return out;
}

namespace {

// True if `control` is the control segment name a port of `entry`'s key and owner would have
// ("port.<pid>.<n>.<key with '.' as '_'>"): a slot's segment name is written by whoever
// registered, and gc must not remove another port's family on its word.
bool names_its_own_family(const registry::PortEntry& entry) {
  return port::is_control_name(entry.segment, entry.key, entry.owner.pid);
}

// True unless the family's control segment says a living process made it.
bool made_by_the_dead(const std::string& ns, const std::string& control) {
  // The owner's lock, read from the file itself: a live owner's port whose header a peer
  // damaged is still a live owner's (port_layout.hpp places the lock at a fixed offset).
  auto held = shm::Segment::lock_held(ns, control, offsetof(port::PortControl, owner));
  return held ? !*held : held.code() == Errc::not_found;
}

// A node block is in use while the process that made it (the launcher, which keeps it across
// the node's restarts, or a node run without one) or its node holds its lock. One that cannot
// be read counts as in use. Returns the maker's pid when both are dead.
std::optional<std::uint32_t> dead_node_block(const std::string& ns, const std::string& name) {
  auto seg = shm::Segment::open(ns, name, shm::SegmentKind::node, {.read_only = true});
  if (!seg || seg->size() != sizeof(pipeline::NodeBlock)) return std::nullopt;
  const auto& locks = reinterpret_cast<const pipeline::NodeBlock*>(seg->base())->locks;
  if (shm::held(locks.maker) || shm::held(locks.node)) return std::nullopt;
  return seg->header().creator_pid;
}

// The namespace's segment names (inside its directory) that start with `start`.
std::vector<std::string> segments_named(const std::string& ns, const std::string& start) {
  auto dir = shm::NamespaceDir::open(ns, shm::DirUse::inspect);
  if (!dir) return {};
  return dir->list(start);
}

}  // namespace

std::vector<Garbage> find_garbage(const std::string& ns, registry::Registry* registry) {
  std::vector<Garbage> out;
  std::set<std::string> registered;
  if (registry) {
    for (auto& e : registry->entries()) {
      registered.insert(e.segment);
      if (e.alive) continue;
      Garbage g{e.segment, e, e.owner.pid, {}};
      if (names_its_own_family(e) && made_by_the_dead(ns, e.segment))
        g.segments = family_segments(ns, e.segment);
      else
        g.control.clear();  // free the slot only: its segment name is not its own
      out.push_back(std::move(g));
    }
  }
  // Families no slot points at (a take-over or a start interrupted by a kill): the control
  // name is "port.<pid>.<n>.<network>.<node>.<in_port>", six dot-separated parts.
  std::set<std::string> controls;
  for (std::string_view name : segments_named(ns, "port.")) {
    std::size_t end = 0;
    for (int dots = 0; end != std::string_view::npos && dots < 6; ++dots)
      end = name.find('.', end == 0 ? 0 : end + 1);
    controls.emplace(name.substr(0, end));
  }
  for (const auto& control : controls) {
    if (registered.contains(control)) continue;
    const std::size_t a = control.find('.') + 1, b = control.find('.', a);
    const auto pid = static_cast<std::uint32_t>(std::strtoul(control.substr(a, b - a).c_str(),
                                                             nullptr, 10));
    if (!made_by_the_dead(ns, control)) continue;
    out.push_back({control, std::nullopt, pid, family_segments(ns, control)});
  }
  for (const auto& block : segments_named(ns, "node.")) {
    if (const auto maker = dead_node_block(ns, block))
      out.push_back({block,
                     std::nullopt,
                     *maker,
                     {shm::namespace_dir_name(ns) + "/" + block},
                     shm::SegmentKind::node});
  }
  return out;
}

bool remove(const std::string& ns, registry::Registry* registry, const Garbage& g,
            bool even_if_alive) {
  // A slot that changed since we looked (a new owner took the key over) keeps its family.
  if (registry && g.entry &&
      !registry->remove_entry(g.entry->slot, g.entry->generation, even_if_alive))
    return false;
  if (g.kind == shm::SegmentKind::node) {
    // A block already gone was collected by someone else: the same end.
    if (even_if_alive || dead_node_block(ns, g.control))
      static_cast<void>(shm::Segment::remove(ns, g.control, {.any_owner = geteuid() == 0}));
    return true;
  }
  if (!g.control.empty() && (even_if_alive || made_by_the_dead(ns, g.control)))
    shm::Segment::remove_family(ns, g.control, {.any_owner = geteuid() == 0});
  return true;
}

}  // namespace bloccs::shmctl
