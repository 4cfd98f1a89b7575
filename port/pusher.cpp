// SPDX-License-Identifier: Apache-2.0
// The pusher side of ports: find a key, keep the attachment, push and push_after.
#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "bloccs/port.hpp"
#include "lockfree/chain.hpp"
#include "port/meta_codec.hpp"
#include "port/port_layout.hpp"
#include "port/push_timeout.hpp"
#include "registry/registry.hpp"
#include "shm/names.hpp"
#include "shm/process.hpp"

namespace bloccs {
namespace {

// What a pusher keeps of a port between pushes.
struct Attachment {
  explicit Attachment(shm::Segment segment) : control(std::move(segment)) {}
  shm::Segment control;
  std::string control_name;
  port::PortConfig config{};  // validated private copy
  std::optional<lockfree::ChainPusher> in;
  std::optional<lockfree::ChainPusher> later;  // opened at the first push_after
  bool stamped = false;  // the port keeps time in queue: stamp messages (its clock below)
  port::StampClock clock = port::StampClock::steady;
  std::uint32_t pushes = 0;  // counts which push to stamp while the port samples
  // The owner line's sample_shift (port_layout.hpp), in the line every push reads.
  const std::atomic<std::uint32_t>* sample_shift = nullptr;

  // True if this push is one to stamp; `shift`: the sampling it is stamped under.
  [[gnu::always_inline]] bool take_stamp(std::uint32_t& shift) noexcept {
    // relaxed: a hint from the owner line, which this push has just read (owner_accepting).
    shift = std::min(sample_shift->load(std::memory_order_relaxed), port::kSampleShift);
    return (pushes++ & ((1u << shift) - 1)) == 0;
  }

  port::PortControl& shared() const {
    return *reinterpret_cast<port::PortControl*>(control.base());
  }
};

Error no_producer(const PortKey& key, const std::string& ns, const std::string& why) {
  return {Errc::no_producer, "no live owner holds port " + to_string(key) + " in namespace '" +
                                 ns + "' (" + why + "); start the port, then push again"};
}

bool gone(Errc code) {
  return code == Errc::not_found || code == Errc::not_ready || code == Errc::owner_dead ||
         code == Errc::closed;
}

}  // namespace

struct detail::PusherImpl {
  std::string ns;
  std::optional<registry::Registry> registry;  // opened when first needed; never created here
  std::uint32_t fork_generation = shm::fork_generation();
  std::unordered_map<PortKey, std::unique_ptr<Attachment>> cache;
  // The last key pushed to: a stream of pushes to one port skips hashing the key.
  PortKey last_key;
  Attachment* last = nullptr;

  void forget(const PortKey& key) {
    cache.erase(key);
    last = nullptr;
  }

  // What a push checks of an attachment: the owner still holds the port and has not begun to
  // stop it (one line of its control segment), and this is the process that attached.
  bool usable(const Attachment& a) const noexcept {
    return fork_generation == shm::fork_generation() && port::owner_accepting(a.shared());
  }
  Result<Attachment*> attach(const PortKey& key);
  Result<Attachment*> attach_fresh(const PortKey& key);
  Status push(const PortKey& key, std::span<const std::byte> head,
              std::span<const std::byte> payload, const lockfree::Patience& patience,
              bool later) {
    auto attached = attach(key);
    if (!attached) return std::move(attached).error();
    return push_into(key, **attached, head, payload, patience, later);
  }
  // A Sender's push: its Impl serves one key, so `last` is that key's attachment (or null) and
  // no key is compared. Anything unusual (no attachment, an owner gone, a fork, an open loan)
  // goes through attach(), which re-attaches or reports it.
  Status push_bound(const PortKey& key, std::span<const std::byte> head,
                    std::span<const std::byte> payload, const lockfree::Patience& patience) {
    Attachment* a = last;
    if (!a || open_loan || !usable(*a)) [[unlikely]] {
      auto attached = attach(key);
      if (!attached) return std::move(attached).error();
      a = *attached;
    }
    if (payload.size() > a->config.max_payload) [[unlikely]]
      return push_into(key, *a, head, payload, patience, false);  // says why
    return with_stamp(*a, head, [&](std::span<const std::byte> h) {
      return reported(key, *a, a->in->push(h, payload, patience));
    });
  }
  // Calls f(head), the head stamped now if the port keeps time in queue and this push is one
  // to stamp (meta_codec.hpp, time_in_queue.hpp). The stamp is taken before the push may park:
  // time in queue includes a pusher's wait for room.
  template <class F>
  [[gnu::always_inline]] static Status with_stamp(Attachment& a, std::span<const std::byte> head,
                                                  F&& f) {
    std::uint32_t shift;
    if (!a.stamped || !a.take_stamp(shift)) return f(head);
    std::array<std::byte, kMetaWireMax> stamped;  // only head.size() + 8 bytes are written
    return f(MetaCodec::stamped(head, port::make_stamp(port::stamp_now(a.clock), shift),
                                stamped.data()));
  }
  Status push_into(const PortKey& key, Attachment& a, std::span<const std::byte> head,
                   std::span<const std::byte> payload, const lockfree::Patience& patience,
                   bool later);

  // The loan handed out and not yet committed or aborted (one at a time): its attachment is
  // never forgotten meanwhile, so the ring under the loan's bytes stays mapped.
  struct OpenLoan {
    PortKey key;
    lockfree::ChainPusher* ring = nullptr;
    lockfree::RingLoan loan;
    std::size_t meta_len = 0;  // the stamp included
    bool stamped = false;
    std::uint32_t shift = 0;
    port::StampClock clock = port::StampClock::steady;
  };
  std::optional<OpenLoan> open_loan;
  Result<std::span<std::byte>> loan(const PortKey& key, std::size_t bytes,
                                    std::span<const std::byte> head,
                                    const lockfree::Patience& patience);
  Status commit_loan(std::size_t used);
  Status push_batch(const PortKey& key, std::span<const std::byte> head,
                    std::span<const std::span<const std::byte>> payloads,
                    const lockfree::Patience& patience, std::size_t& done);
  void abort_loan() noexcept;
  // A call's error, as push reports it: timeouts counted, an owner gone is no_producer.
  Status reported(const PortKey& key, Attachment& a, Status st) {
    if (st) [[likely]]
      return st;
    return report(key, a, std::move(st));
  }
  Status report(const PortKey& key, Attachment& a, Status st);
};

namespace {

// PortKey's ==, for the per-push check against the last key: its parts are a few bytes long,
// where a loop inline beats three calls to memcmp.
bool same_key(const PortKey& a, const PortKey& b) noexcept {
  auto same = [](const std::string& x, const std::string& y) {
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (x[i] != y[i]) return false;
    return true;
  };
  return same(a.in_port, b.in_port) && same(a.node_id, b.node_id) &&
         same(a.network_id, b.network_id);
}

}  // namespace

Result<Attachment*> detail::PusherImpl::attach(const PortKey& key) {
  if (open_loan && same_key(key, open_loan->key)) [[unlikely]]
    return Error{Errc::bad_loan, "this Pusher holds an open loan on port " + to_string(key) +
                                     "; commit or abort it before pushing there again"};
  if (fork_generation != shm::fork_generation()) {  // a child: the attachments are the parent's
    cache.clear();
    last = nullptr;
    fork_generation = shm::fork_generation();
  }
  Attachment* a = last && same_key(key, last_key) ? last : nullptr;
  if (!a) {
    if (auto it = cache.find(key); it != cache.end()) a = it->second.get();
  }
  if (a) {
    if (usable(*a)) {
      if (a != last) {
        last = a;
        last_key = key;
      }
      return a;
    }
    forget(key);  // stopped or died (and maybe replaced): look the key up again
  }
  auto fresh = attach_fresh(key);
  if (fresh) {
    last = *fresh;
    last_key = key;
  }
  return fresh;
}

Result<Attachment*> detail::PusherImpl::attach_fresh(const PortKey& key) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  if (!registry) {
    auto opened = registry::Registry::open(ns, {.create = false});
    if (!opened) {
      if (opened.code() == Errc::not_found)
        return no_producer(key, ns, "no port of the namespace is running");
      return std::move(opened).error();
    }
    registry.emplace(std::move(opened).value());
  }
  auto entry = registry->lookup(key);
  if (!entry) {
    if (entry.code() == Errc::not_found) return no_producer(key, ns, "the key is not registered");
    return std::move(entry).error();
  }
  auto control = shm::Segment::open(ns, entry->segment, shm::SegmentKind::port);
  if (!control) {
    if (gone(control.code())) return no_producer(key, ns, "its owner just stopped it");
    return std::move(control).error();
  }
  if (control->size() != sizeof(port::PortControl))
    return Error{Errc::segment_invalid, "port segment /dev/shm/" + control->name() + " is " +
                                            std::to_string(control->size()) +
                                            " bytes, not a port's; remove it (shmctl rm)"};
  auto a = std::make_unique<Attachment>(std::move(control).value());
  a->control_name = entry->segment;
  a->config = a->shared().config;  // copied once, then only the copy is used
  a->stamped = (a->config.flags & port::kStamped) != 0;
  a->sample_shift = &a->shared().owner.sample_shift;
  a->clock = port::stamp_clock(a->config.flags);
  if (a->config.owner_pid != entry->owner.pid || a->config.max_payload > (64u << 20) ||
      a->config.buffer > lockfree::kMaxBuffer)
    return Error{Errc::segment_invalid, "port segment /dev/shm/" + a->control.name() +
                                            " does not match its registration; remove it "
                                            "(shmctl rm) and restart its owner"};
  if (!port::owner_accepting(a->shared()))
    return no_producer(key, ns, "its owner, pid " + std::to_string(entry->owner.pid) +
                                    ", is gone or stopping it");
  auto in = lockfree::ChainPusher::open(port::in_chain(ns, entry->segment, a->shared(), a->config));
  if (!in) {
    if (gone(in.code())) return no_producer(key, ns, "its owner just stopped it");
    return std::move(in).error();
  }
  a->in.emplace(std::move(in).value());
  Attachment* raw = a.get();
  cache[key] = std::move(a);
  return raw;
}

Status detail::PusherImpl::push_into(const PortKey& key, Attachment& a, std::span<const std::byte> head,
                               std::span<const std::byte> payload,
                               const lockfree::Patience& patience, bool later) {
  if (payload.size() > a.config.max_payload)
    return Error{Errc::payload_too_large,
                 "payload of " + std::to_string(payload.size()) + " bytes exceeds port " +
                     to_string(key) + "'s max_payload of " + std::to_string(a.config.max_payload) +
                     "; split it, or start the port with a larger max_payload"};
  lockfree::ChainPusher* ring = &*a.in;
  if (later) {
    if (!a.later) {
      auto opened = lockfree::ChainPusher::open(
          port::later_chain(ns, a.control_name, a.shared(), a.config));
      if (!opened) {
        if (gone(opened.code())) {
          forget(key);
          return no_producer(key, ns, "its owner just stopped it");
        }
        return std::move(opened).error();
      }
      a.later.emplace(std::move(opened).value());
    }
    // Stamped by the timer thread when it falls due: its time in queue starts there.
    return reported(key, a, a.later->push(head, payload, patience));
  }
  return with_stamp(a, head, [&](std::span<const std::byte> h) {
    return reported(key, a, ring->push(h, payload, patience));
  });
}

Status detail::PusherImpl::report(const PortKey& key, Attachment& a, Status st) {
  if (st.code() == Errc::timeout)  // relaxed: a statistic, on a line only timeouts touch
    a.shared().pushers.timed_out.fetch_add(1, std::memory_order_relaxed);
  if (gone(st.code())) {
    forget(key);
    return no_producer(key, ns, "its owner stopped or died while this push waited");
  }
  return st;
}

Status detail::PusherImpl::push_batch(const PortKey& key, std::span<const std::byte> head,
                                std::span<const std::span<const std::byte>> payloads,
                                const lockfree::Patience& patience, std::size_t& done) {
  auto attached = attach(key);
  if (!attached) return std::move(attached).error();
  Attachment& a = **attached;
  for (const auto& payload : payloads)
    if (payload.size() > a.config.max_payload)
      return Error{Errc::payload_too_large, "a payload of " + std::to_string(payload.size()) +
                                                " bytes in the batch exceeds "
                                                "port " +
                                                to_string(key) + "'s max_payload of " +
                                                std::to_string(a.config.max_payload) +
                                                "; nothing of the batch was pushed"};
  return with_stamp(a, head, [&](std::span<const std::byte> h) {
    return reported(key, a, a.in->push_batch(h, payloads, patience, done));
  });
}

Result<std::span<std::byte>> detail::PusherImpl::loan(const PortKey& key, std::size_t bytes,
                                                std::span<const std::byte> head,
                                                const lockfree::Patience& patience) {
  if (open_loan)
    return Error{Errc::bad_loan, "this Pusher already holds a loan on port " +
                                     to_string(open_loan->key) +
                                     "; commit or abort it first (one loan at a time)"};
  auto attached = attach(key);
  if (!attached) return std::move(attached).error();
  Attachment& a = **attached;
  if (bytes > a.config.max_payload)
    return Error{Errc::payload_too_large,
                 "a loan of " + std::to_string(bytes) + " bytes exceeds port " + to_string(key) +
                     "'s max_payload of " + std::to_string(a.config.max_payload) +
                     "; split it, or start the port with a larger max_payload"};
  // A stamped loan is stamped again at commit: its time in queue starts when it is published.
  std::uint32_t shift = 0;
  const bool stamp = a.stamped && a.take_stamp(shift);
  const std::size_t head_len = head.size() + (stamp ? kStampBytes : 0);
  auto claimed = a.in->loan(static_cast<std::uint32_t>(head_len + bytes), patience);
  if (!claimed) {
    Status st = reported(key, a, std::move(claimed).error());
    return std::move(st).error();
  }
  if (stamp)  // the meta, in front
    MetaCodec::stamped(head, 0, claimed->bytes.data());
  else
    std::memcpy(claimed->bytes.data(), head.data(), head.size());
  open_loan = OpenLoan{key, &*a.in, *claimed, head_len, stamp, shift, a.clock};
  return claimed->bytes.subspan(head_len);
}

Status detail::PusherImpl::commit_loan(std::size_t used) {
  if (!open_loan) return Error{Errc::bad_loan, "the loan has ended; take a new one"};
  OpenLoan l = std::move(*open_loan);
  open_loan.reset();
  if (l.stamped)
    MetaCodec::restamp(l.loan.bytes.first(l.meta_len),
                       port::make_stamp(port::stamp_now(l.clock), l.shift));
  Status st = l.ring->commit(l.loan, static_cast<std::uint32_t>(l.meta_len + used));
  if (st) [[likely]]
    return st;
  if (auto it = cache.find(l.key); it != cache.end()) return reported(l.key, *it->second, st);
  return st;
}

void detail::PusherImpl::abort_loan() noexcept {
  if (!open_loan) return;
  open_loan->ring->abort(open_loan->loan);
  open_loan.reset();
}

Result<Pusher> Pusher::open(std::string_view ns) {
  auto resolved = shm::resolve_namespace(ns);
  if (!resolved) return std::move(resolved).error();
  auto impl = std::make_unique<Impl>();
  impl->ns = std::move(resolved).value();
  return Pusher(std::move(impl));
}

Pusher::Pusher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pusher::Pusher(Pusher&&) noexcept = default;
Pusher& Pusher::operator=(Pusher&&) noexcept = default;
Pusher::~Pusher() = default;

namespace {
// Meta{} encoded: attempt 0, no pairs (MetaCodec's fixed part, all zero).
constexpr std::array<std::byte, kMetaFixed> kNoMetaBytes{};
constexpr std::span<const std::byte> kNoMeta(kNoMetaBytes);
}  // namespace

namespace {
// The process-wide push_timeout as a Patience's timeout.
Status with_push_timeout(lockfree::Patience& patience) {
  auto timeout = push_timeout();
  if (!timeout) return std::move(timeout).error();
  if (*timeout) patience.timeout = **timeout;
  return {};
}
}  // namespace

namespace {
// Calls f(head) with `meta` encoded as the head of the payload (Meta{}, the common case,
// without encoding it).
template <class F>
Status with_meta(const Meta& meta, F&& f) {
  if (meta.attempt == 0 && meta.values.empty()) return f(kNoMeta);
  std::array<std::byte, kMetaMaxBytes> encoded;
  auto n = MetaCodec::encode(meta, encoded);
  if (!n) return std::move(n).error();
  return f(std::span<const std::byte>(encoded).first(*n));
}

// The patience of a push without a deadline: the process-wide push_timeout (the default,
// infinite, skips building a Result per push).
[[gnu::always_inline]] inline Status with_default_patience(lockfree::Patience& patience) {
  if (port::push_timeout_is_infinite()) return {};
  return with_push_timeout(patience);
}
}  // namespace

Status Pusher::push(const PortKey& key, std::span<const std::byte> payload, const Meta& meta) {
  lockfree::Patience patience;
  if (auto st = with_default_patience(patience); !st) return st;
  return with_meta(meta, [&](std::span<const std::byte> head) {
    return impl_->push(key, head, payload, patience, false);
  });
}

Status Pusher::push(const PortKey& key, std::span<const std::byte> payload, const Meta& meta,
                    Deadline deadline) {
  return with_meta(meta, [&](std::span<const std::byte> head) {
    return impl_->push(key, head, payload, {.deadline = deadline}, false);
  });
}

Result<Sender> Sender::open(const PortKey& key, std::string_view ns) {
  if (auto st = validate_key(key); !st) return std::move(st).error();
  auto pusher = Pusher::open(ns);
  if (!pusher) return std::move(pusher).error();
  // Resolved now if the port runs; if not, the first push that finds it does.
  if (auto attached = pusher->impl_->attach(key);
      !attached && attached.code() != Errc::no_producer)
    return std::move(attached).error();
  return Sender(key, std::move(pusher).value());
}

Status Sender::push(std::span<const std::byte> payload, const Meta& meta) {
  lockfree::Patience patience;
  if (auto st = with_default_patience(patience); !st) return st;
  return with_meta(meta, [&](std::span<const std::byte> head) {
    return pusher_.impl_->push_bound(key_, head, payload, patience);
  });
}

Status Sender::push(std::span<const std::byte> payload, const Meta& meta, Deadline deadline) {
  return with_meta(meta, [&](std::span<const std::byte> head) {
    return pusher_.impl_->push_bound(key_, head, payload, {.deadline = deadline});
  });
}

Status Pusher::push_after(const PortKey& key, std::span<const std::byte> payload,
                          const Meta& meta, std::chrono::milliseconds delay) {
  // [due time][meta]: one head in front of the payload.
  std::array<std::byte, port::kDueStamp + kMetaMaxBytes> head;
  auto n = MetaCodec::encode(meta, std::span(head).subspan<port::kDueStamp, kMetaMaxBytes>());
  if (!n) return std::move(n).error();
  // Clamped to 100 years: a longer delay would overflow the clock (and means "never" anyway).
  constexpr std::chrono::milliseconds kLongest = std::chrono::hours(24 * 365 * 100);
  const std::int64_t due_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          (Clock::now() + std::clamp(delay, std::chrono::milliseconds(0), kLongest))
              .time_since_epoch())
          .count();
  std::memcpy(head.data(), &due_ns, sizeof due_ns);
  // The request chain is unbounded: this never waits.
  return impl_->push(key, std::span(head).first(port::kDueStamp + *n), payload, {}, true);
}

namespace {

// The patience of a call without a deadline: the process-wide push_timeout.
Result<lockfree::Patience> default_patience() {
  lockfree::Patience patience;
  if (auto st = with_default_patience(patience); !st) return std::move(st).error();
  return patience;
}

Status batch_with(detail::PusherImpl& impl, const PortKey& key,
                  std::span<const std::span<const std::byte>> payloads, const Meta& meta,
                  const lockfree::Patience& patience, std::size_t* pushed) {
  std::array<std::byte, kMetaMaxBytes> encoded;
  auto n = MetaCodec::encode(meta, encoded);
  if (!n) return std::move(n).error();
  std::size_t done = 0;
  Status st = impl.push_batch(key, std::span(encoded).first(*n), payloads, patience, done);
  if (pushed) *pushed = done;
  return st;
}

Result<std::span<std::byte>> loan_with(detail::PusherImpl& impl, const PortKey& key, std::size_t bytes,
                                       const Meta& meta, const lockfree::Patience& patience) {
  std::array<std::byte, kMetaMaxBytes> encoded;
  auto n = MetaCodec::encode(meta, encoded);
  if (!n) return std::move(n).error();
  return impl.loan(key, bytes, std::span(encoded).first(*n), patience);
}

}  // namespace

Status Pusher::push_batch(const PortKey& key, std::span<const std::span<const std::byte>> payloads,
                          const Meta& meta, std::size_t* pushed) {
  auto patience = default_patience();
  if (!patience) return std::move(patience).error();
  return batch_with(*impl_, key, payloads, meta, *patience, pushed);
}

Status Pusher::push_batch(const PortKey& key, std::span<const std::span<const std::byte>> payloads,
                          const Meta& meta, Deadline deadline, std::size_t* pushed) {
  return batch_with(*impl_, key, payloads, meta, {.deadline = deadline}, pushed);
}

Result<Loan> Pusher::loan(const PortKey& key, std::size_t bytes, const Meta& meta) {
  auto patience = default_patience();
  if (!patience) return std::move(patience).error();
  auto span = loan_with(*impl_, key, bytes, meta, *patience);
  if (!span) return std::move(span).error();
  return Loan(impl_.get(), *span);
}

Result<Loan> Pusher::loan(const PortKey& key, std::size_t bytes, const Meta& meta,
                          Deadline deadline) {
  auto span = loan_with(*impl_, key, bytes, meta, {.deadline = deadline});
  if (!span) return std::move(span).error();
  return Loan(impl_.get(), *span);
}

Loan::Loan(Loan&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), bytes_(std::exchange(other.bytes_, {})) {}

Loan& Loan::operator=(Loan&& other) noexcept {
  if (this != &other) {
    abort();
    owner_ = std::exchange(other.owner_, nullptr);
    bytes_ = std::exchange(other.bytes_, {});
  }
  return *this;
}

Loan::~Loan() {
  abort();
}

Status Loan::commit(std::size_t used) {
  if (!owner_) return Error{Errc::bad_loan, "the loan has ended; take a new one"};
  if (used > bytes_.size())
    return Error{Errc::bad_loan, "a loan of " + std::to_string(bytes_.size()) +
                                     " bytes cannot commit " + std::to_string(used) +
                                     "; commit at most what was loaned (the loan stays open)"};
  detail::PusherImpl* owner = std::exchange(owner_, nullptr);
  bytes_ = {};
  return owner->commit_loan(used);
}

void Loan::abort() noexcept {
  if (!owner_) return;
  std::exchange(owner_, nullptr)->abort_loan();
  bytes_ = {};
}

namespace {

Result<Pusher*> thread_pusher() {
  thread_local std::optional<Pusher> pusher;
  if (!pusher) {
    auto opened = Pusher::open();
    if (!opened) return std::move(opened).error();
    pusher.emplace(std::move(opened).value());
  }
  return &*pusher;
}

}  // namespace

Status push(const PortKey& key, std::span<const std::byte> payload, const Meta& meta) {
  auto p = thread_pusher();
  if (!p) return std::move(p).error();
  return (*p)->push(key, payload, meta);
}

Status push_after(const PortKey& key, std::span<const std::byte> payload, const Meta& meta,
                  std::chrono::milliseconds delay) {
  auto p = thread_pusher();
  if (!p) return std::move(p).error();
  return (*p)->push_after(key, payload, meta, delay);
}

}  // namespace bloccs
