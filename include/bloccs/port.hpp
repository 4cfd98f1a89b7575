// SPDX-License-Identifier: Apache-2.0
// Ports: the API a bloccs user calls. A node process starts an input port under a key; any
// process of the host pushes messages (payload + meta) to that key.
//
//   owner:   auto port = bloccs::Port::start({"net", "node", "in"}, {.buffer = 1024});
//            port->receive_batch([](const bloccs::MessageView& m) { ... }, 64);
//   pusher:  bloccs::push({"net", "node", "in"}, payload, meta);      // ok / no_producer / timeout
//            auto out = bloccs::Sender::open({"net", "node", "in"});  // a stream into one port
//            out->push(payload, meta);
//            bloccs::push_after({"net", "node", "in"}, payload, meta, 250ms);
//
// The contract (SPEC.md, "The port"):
//   start        registers the key in the namespace's registry. A key held by a live owner is
//                Errc::already_exists. One left by a dead owner (SIGKILL, a crash) is taken over:
//                before the key is registered again (pushers get no_producer until then), the new
//                port carries over what the dead one still holds, then removes its segments.
//                Port::takeover() and PortStats report it (see "Taking over" below). stop() (or
//                destroying the Port, or the owner exiting normally) unregisters the key and
//                removes the port's segments.
//   push         parks while the port holds `buffer` messages, until space frees, the process-wide
//                push_timeout passes (Errc::timeout, nothing enqueued) or the owner goes away
//                (Errc::no_producer, within 200 ms even if it was SIGKILLed). An unbounded port
//                never parks. A key with no live owner is Errc::no_producer at once.
//   push_after   returns at once; the owner's timer thread enqueues the message after the delay,
//                retrying every millisecond while the port is full, never dropping it. Each port
//                has its own timer thread, so a full port holds up no other port's timers.
//   meta         arrives unchanged (attempt and the user pairs; limits in bloccs/meta.hpp).
//   loan         Pusher::loan: room in the port's ring to write a message in place, published by
//                Loan::commit, parking and failing as push; an aborted or dropped loan is never
//                received. receive_batch hands every message out in place (records never wrap).
//   push_batch   many messages in order, as many as fit at once, parking for the rest; none split.
//   Sender       a pusher bound to one key: resolved once, each push checks only the owner's line
//                (alive, not stopping) and goes into the ring; it looks again once the owner goes.
//
// At stop: messages still queued, and push_after messages not yet due, are discarded with the
// port's segments (stop the pushers first to lose nothing). Pushers parked at that moment wake
// at once with Errc::no_producer; later pushes get it too.
//
// Taking over a dead owner's key (a crashed node restarted), before pushers reach the new port:
//   kept    first the push_after messages that were already due (in its due lane), then every
//           message pushed and not yet received, each pusher's in its order; pushes made after
//           start arrive after them. push_after requests its timer had not taken yet are
//           re-queued with their due times (delivered when due, never before).
//   again   the batch the dead owner was receiving when it died, at least once: the message whose
//           callback was running and those after it. On a single-pusher port, and for push_after
//           messages (their due lane is single-pusher), the batch's earlier ones too. What a
//           receive that returned handed over is never delivered again.
//   lost    counted in PortStats::lost_at_takeover, itemised in PortTakeover with a note:
//           - push_after messages the dead timer held in pages that cannot be read (a peer
//             damaged them; lost_timer_held, from the timer's count);
//           - messages over the new port's max_payload, or past its buffer if it is smaller than
//             what was queued (lost_unfit: the new port has no consumer yet, so it never waits);
//           - records whose meta does not parse (refused, as receive refuses them);
//           - what follows a damaged record, and a claim a live pusher still holds open 1 s into
//             the start with what follows it (lost_unread, counted from the ring's cursors).
//           A ring of another version or with a damaged header is not read: how much it held is
//           unknown, and the note says so.
//   never   queued: a push that returned an error, or whose pusher died mid-push. A push already
//           past its checks when the owner died that claims its space only after the new owner
//           sealed that ring gets an error (Errc::no_producer), never ok.
// A new owner killed during its take-over loses nothing (salvage only reads the dead port; the
// next start carries it over again) but leaves its own unregistered segments to `shmctl gc`.
// Of two starts racing for a dead key, one carries it over, the other gets Errc::already_exists.
//
// A bounded port holds at most `buffer` messages from pushers, plus at most min(buffer, 256)
// push_after messages in the due lane. The timer enqueues a due message while the port holds
// fewer than `buffer`, or, when it found the port full, once the consumer has taken messages
// since: pushers parked on a full port would otherwise take every freed slot first, and
// push_after messages (a node's retries) would wait until the load ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bloccs/deadline.hpp"
#include "bloccs/meta.hpp"
#include "bloccs/port_key.hpp"
#include "bloccs/result.hpp"

namespace bloccs::detail {  // the hidden insides of the classes below
struct PortImpl;    // port/port_impl.hpp
struct PusherImpl;  // port/pusher.cpp
}  // namespace bloccs::detail

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {


class Port;
class Loan;
class WakeUp;
// Waits on several ports at once (bloccs/wait_any.hpp).
Status wait_any(std::span<Port* const> ports, Deadline deadline, WakeUp* wake_up);

// The largest max_payload a port takes: two of its records (with meta) fill a 64 MiB ring.
inline constexpr std::uint32_t kMaxPortPayload = 33'553'896;
// The largest buffer (messages) a bounded port takes: its ring counts records in 23 bits.
inline constexpr std::uint32_t kMaxPortBuffer = (std::uint32_t{1} << 23) - 1;

struct PortOptions {
  // Bound on queued messages; std::nullopt makes the port unbounded (pushers never park; the
  // ring grows by chaining further segments while it is full).
  std::optional<std::uint32_t> buffer = 1024;
  std::uint32_t max_payload = 4096;  // bytes per payload, meta not counted
  // What the port's ring is sized by: `buffer` messages of this many bytes (a power of two of
  // shared memory at least that, and room for two of max_payload). Pushers of larger messages
  // park once the bytes are used, before `buffer` messages are queued. The default port (1024
  // messages of 256 bytes) takes about 0.7 MB of /dev/shm; set it to max_payload to hold
  // `buffer` messages of any size (a 1024 x 4 KiB port takes about 10 MB).
  std::uint32_t typical_payload = 256;
  bool single_pusher = false;        // SPSC ring: one pushing process (thread) at a time, faster
  std::uint32_t max_pushers = 64;    // MPSC: pushing threads attached at once
  std::string ns{};                  // namespace; empty: $BLOCCS_NAMESPACE, else "default"
  // 0660 lets the namespace's group push: the namespace must be shared with a group (below).
  mode_t mode = 0600;
  // The group the namespace is shared with (a name or number); empty: $BLOCCS_NAMESPACE_GROUP,
  // and if that is unset too, the namespace is private to this user. A namespace's sharing is
  // fixed by the first segment made in it; a process that asks for another gets an error.
  std::string group{};
  // How long receive busy-polls an empty port before it parks on a futex. A hand-off between
  // cores costs ~100 ns, a futex wake-up tens of microseconds: spinning keeps latency near the
  // floor while messages flow; 0 parks at once (no CPU burnt while idle, a wake-up per message).
  // It also says who pays for the wake-up protocol: with a spin, the receiver, each time it
  // parks (a membarrier(2), microseconds), and a push pays no fence; with 0, every push (a
  // fence), so that parking per message stays cheap.
  std::chrono::nanoseconds receive_spin = std::chrono::microseconds(50);
  // Keep a histogram of each message's time in queue, from its push (a push_after message: from
  // when it fell due) to its receipt, in shared memory for tools (PortStats::time_in_queue,
  // shmctl, metrics). Each push stamps its message with the TSC, a few ns (docs/BENCHMARKS.md
  // measures it); false costs nothing.
  bool latency_histogram = true;
};

// A received message, copied out of the ring.
struct Message {
  std::vector<std::byte> payload;
  Meta meta;
};

// A received message in place: valid only during the receive_batch callback.
struct MessageView {
  std::span<const std::byte> payload;
  MetaView meta;
  Message copy() const { return {{payload.begin(), payload.end()}, meta.copy()}; }
};

// How long messages waited in a port's queue, from push (or a push_after falling due) to
// receipt, since the port started: percentiles within 3.2% (the histogram's bucket width).
struct QueueTimes {
  std::uint64_t count = 0;  // messages received with a stamp
  std::chrono::nanoseconds total{0};
  std::chrono::nanoseconds p50{0}, p90{0}, p99{0}, p999{0}, max{0};
};

// A snapshot for tests and tools, in the owner's process; never blocks anyone.
struct PortStats {
  std::uint64_t depth = 0;            // messages ready to receive (pushed, and push_after ones due)
  std::uint32_t parked_pushers = 0;   // pushers asleep waiting for space
  std::uint64_t pending_after = 0;    // push_after messages the timer holds, not yet enqueued
  std::uint64_t after_delivered = 0;  // push_after messages enqueued by the timer
  std::uint64_t after_retries = 0;    // timer attempts that found the port full
  std::uint32_t links = 1;            // segments the ring spans (unbounded ports chain them)
  std::uint64_t refused = 0;          // records dropped because their meta did not parse
  // Taking over a dead owner's key at start (Port::takeover() itemises them):
  std::uint64_t salvaged = 0;          // its messages carried over (push_after ones included)
  std::uint64_t lost_at_takeover = 0;  // its messages that could not be (counted, never silent)
  // Pushers that waited for room (after a short spin, they park):
  std::uint64_t pushes_waited = 0;              // pushes that parked
  std::chrono::nanoseconds waited{0};           // their time parked, in all
  std::chrono::nanoseconds longest_wait{0};     // the longest single park
  std::uint64_t timed_out = 0;                  // pushes that gave up at their deadline
  std::uint64_t no_producer_while_waiting = 0;  // parked pushes ended by the port stopping
  QueueTimes time_in_queue;  // all zero without PortOptions::latency_histogram
};

// What start carried over from a dead owner of the key (the contract's "Taking over"). A node
// can print: "took over {net, node, in} from dead pid 123: 57 messages kept, 3 lost (...note)".
struct PortTakeover {
  bool taken_over = false;  // the key was held by a dead owner
  pid_t dead_owner = 0;
  std::uint64_t salvaged = 0;         // carried over: queued messages, and push_after requests
  std::uint64_t salvaged_after = 0;   // of those, push_after requests (delivered when due)
  std::uint64_t lost_timer_held = 0;  // push_after messages its timer held, in unreadable pages
  std::uint64_t lost_unfit = 0;       // over this port's max_payload, or past its buffer
  std::uint64_t lost_unread = 0;      // in a damaged ring, or behind a claim left open
  std::uint64_t refused = 0;          // records whose meta did not parse
  std::string note;                   // why anything was lost, for a person; empty if nothing
  std::uint64_t lost() const noexcept {
    return lost_timer_held + lost_unfit + lost_unread + refused;
  }
};

// A Port is used by one thread at a time (its consumer): receive, stats and stop from that
// thread. A moved-from Port may only be destroyed or assigned to.
class Port {
 public:
  static Result<Port> start(const PortKey& key, PortOptions options = {});

  Port(Port&&) noexcept;
  Port& operator=(Port&&) noexcept;
  ~Port();  // stop()

  // Unregisters the key, wakes parked pushers (they get no_producer), stops the timer thread and
  // removes the port's segments. Idempotent.
  void stop();

  // Calls f(const MessageView&) for up to `max` queued messages, in arrival order, after waiting
  // (spin briefly, then park) until one is there or `deadline` passes (Errc::timeout).
  template <class F>
  Result<std::size_t> receive_batch(F&& f, std::size_t max, Deadline deadline = kNoDeadline);
  // As receive_batch, without waiting: 0 if nothing is queued.
  template <class F>
  Result<std::size_t> try_receive_batch(F&& f, std::size_t max);
  Result<Message> receive(Deadline deadline = kNoDeadline);
  Result<std::optional<Message>> try_receive();

  const PortKey& key() const noexcept;
  PortStats stats() const;
  // What start carried over from a dead owner of the key; taken_over false if there was none.
  const PortTakeover& takeover() const noexcept;


 private:
  using Impl = detail::PortImpl;
  friend Status wait_any(std::span<Port* const> ports, Deadline deadline, WakeUp* wake_up);
  using Visit = void (*)(void* ctx, const MessageView& m);
  explicit Port(std::unique_ptr<Impl> impl);
  static Status start_impl(Impl& p, const PortKey& key, const std::string& ns,
                           const PortOptions& o);
  Result<std::size_t> drain(Visit visit, void* ctx, std::size_t max, Deadline deadline, bool wait);
  std::unique_ptr<Impl> impl_;
};

// Pushes into ports by key. Looks keys up in the namespace's registry and keeps the attachment
// (re-attaching when the key's registration changes). One Pusher per thread: it is not
// thread-safe, and each attachment holds a pusher slot of the port's ring.
class Pusher {
 public:
  static Result<Pusher> open(std::string_view ns = {});

  Pusher(Pusher&&) noexcept;
  Pusher& operator=(Pusher&&) noexcept;
  ~Pusher();

  // ok, Errc::no_producer (no live owner under the key), Errc::timeout (push_timeout passed,
  // nothing enqueued), Errc::payload_too_large, Errc::bad_meta, Errc::bad_name.
  Status push(const PortKey& key, std::span<const std::byte> payload, const Meta& meta = {});
  // As push, with an explicit deadline instead of the process-wide push_timeout.
  Status push(const PortKey& key, std::span<const std::byte> payload, const Meta& meta,
              Deadline deadline);
  // ok or Errc::no_producer at once, never parks. The owner's timer thread enqueues the message
  // `delay` from now.
  Status push_after(const PortKey& key, std::span<const std::byte> payload, const Meta& meta,
                    std::chrono::milliseconds delay);

  // Pushes every payload of `payloads` as one message each, in order, all with `meta`: as many
  // as fit go in at once (on a single-pusher port with one publication and one wake-up of the
  // consumer), then it parks for the rest as push does; no message is split. The errors are
  // push's; `pushed` (if given) says how many went in, all of them on ok. push_timeout (or
  // `deadline`) bounds the whole batch.
  Status push_batch(const PortKey& key, std::span<const std::span<const std::byte>> payloads,
                    const Meta& meta = {}, std::size_t* pushed = nullptr);
  Status push_batch(const PortKey& key, std::span<const std::span<const std::byte>> payloads,
                    const Meta& meta, Deadline deadline, std::size_t* pushed = nullptr);

  // Zero-copy push: claims room for a payload of up to `bytes` in the port's ring and hands it
  // out to be written in place (Loan::bytes()); Loan::commit(used) then publishes it with
  // `meta`. Parks while the port is full exactly as push does, with the same errors (timeout
  // at push_timeout or `deadline`, no_producer, payload_too_large, bad_meta). Worth it for
  // payloads of a few KiB and up, written straight into the ring (a frame, a decoded record);
  // for small ones push costs the same.
  //   - One loan at a time per Pusher; while it is open, pushes and loans to its key are
  //     Errc::bad_loan (other keys work).
  //   - An open loan holds up the port's consumer at it (and, on a multi-pusher port, every
  //     message pushed after it): write it, then commit or abort promptly.
  //   - Destroying a Loan without a commit aborts it: the consumer sees nothing of it
  //     (counted in the ring's `aborted`). A pusher killed holding a loan loses only that
  //     message, as one killed mid-push does.
  //   - The Loan must not outlive this Pusher.
  Result<Loan> loan(const PortKey& key, std::size_t bytes, const Meta& meta = {});
  Result<Loan> loan(const PortKey& key, std::size_t bytes, const Meta& meta, Deadline deadline);


 private:
  using Impl = detail::PusherImpl;
  friend class Sender;
  explicit Pusher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A message being written in place in a port's ring (Pusher::loan). Move-only.
class Loan {
 public:
  Loan(Loan&& other) noexcept;
  Loan& operator=(Loan&& other) noexcept;
  ~Loan();  // abort() if still open

  // The payload's bytes, in the port's shared memory: write the message here. Valid until
  // commit or abort. (Readable by the port's owner once committed, and by nobody before.)
  std::span<std::byte> bytes() const noexcept { return bytes_; }
  // Publishes the first `used` bytes as one message. Errc::bad_loan if `used` exceeds
  // bytes().size() (the loan stays open) or the loan has ended; Errc::no_producer if the owner
  // stopped or died meanwhile (nothing was enqueued). The loan ends either way.
  Status commit(std::size_t used);
  Status commit() { return commit(bytes_.size()); }
  // Gives the space back: nothing of it is received. Idempotent.
  void abort() noexcept;
  bool open() const noexcept { return owner_ != nullptr; }

 private:
  friend class Pusher;
  Loan(detail::PusherImpl* owner, std::span<std::byte> bytes) : owner_(owner), bytes_(bytes) {}
  detail::PusherImpl* owner_ = nullptr;
  std::span<std::byte> bytes_;
};

// A pusher bound to one port. The key is resolved once, and each push goes to the port's ring
// without a lookup or a key compared: it checks only its owner's liveness line, which stays in
// cache while the port runs. When that owner stops or dies, the next push looks the key up
// again, so a Sender finds a restarted port by itself. Everything else is Pusher's: the errors,
// parking, push_timeout, batches, loans. For a stream into one port (a wire); a Pusher for
// pushes to many keys. One Sender per thread; it holds one pusher slot of the port's ring (a
// single-pusher port admits one Sender or Pusher at a time).
class Sender {
 public:
  // Errc::bad_name for a malformed key or namespace. A port that does not run yet is no error:
  // pushes return no_producer until it does.
  static Result<Sender> open(const PortKey& key, std::string_view ns = {});

  Status push(std::span<const std::byte> payload, const Meta& meta = {});
  Status push(std::span<const std::byte> payload, const Meta& meta, Deadline deadline);
  Status push_after(std::span<const std::byte> payload, const Meta& meta,
                    std::chrono::milliseconds delay) {
    return pusher_.push_after(key_, payload, meta, delay);
  }
  Status push_batch(std::span<const std::span<const std::byte>> payloads, const Meta& meta = {},
                    std::size_t* pushed = nullptr) {
    return pusher_.push_batch(key_, payloads, meta, pushed);
  }
  Status push_batch(std::span<const std::span<const std::byte>> payloads, const Meta& meta,
                    Deadline deadline, std::size_t* pushed = nullptr) {
    return pusher_.push_batch(key_, payloads, meta, deadline, pushed);
  }
  Result<Loan> loan(std::size_t bytes, const Meta& meta = {}) {
    return pusher_.loan(key_, bytes, meta);
  }
  Result<Loan> loan(std::size_t bytes, const Meta& meta, Deadline deadline) {
    return pusher_.loan(key_, bytes, meta, deadline);
  }
  const PortKey& key() const noexcept { return key_; }

 private:
  Sender(PortKey key, Pusher pusher) : key_(std::move(key)), pusher_(std::move(pusher)) {}
  PortKey key_;
  Pusher pusher_;
};

// The process-wide convenience: each thread gets its own Pusher for the default namespace
// ($BLOCCS_NAMESPACE, else "default").
Status push(const PortKey& key, std::span<const std::byte> payload, const Meta& meta = {});
Status push_after(const PortKey& key, std::span<const std::byte> payload, const Meta& meta,
                  std::chrono::milliseconds delay);

// A clean stop on Ctrl-C or `kill`, in one call at the start of main. From the first SIGINT
// or SIGTERM on, every blocking wait of the process returns Errc::stopping: a receive (also one
// that would find a message ready, so that a process under load stops too), wait_any, and a
// push that would park. At once in the thread the signal interrupted, within 100 ms in the
// others. main returns, and the ports' destructors unregister them and remove their segments.
// What does not wait goes on (try_receive, a push that fits), so what is queued can still be
// drained. A second signal ends the process at once (the default action). Errc::system_error
// if the handlers cannot be installed. Not for nodes: bloccs::Node stops on these signals
// itself, after draining.
Status stop_on_signals();
// True once the stop was asked for (by a signal, or by request_stop).
bool stop_requested() noexcept;
// Asks for the stop, as a signal would. Async-signal-safe: a program's own handler may call it.
void request_stop() noexcept;

// How long push may stay parked, process-wide. Default: infinite, unless the environment sets
// BLOCCS_PUSH_TIMEOUT_MS (a whole number of milliseconds, or "infinite"), read at first use.
// set_push_timeout overrides the environment; std::nullopt means infinite.
void set_push_timeout(std::optional<std::chrono::milliseconds> timeout);
// The setting in force; Errc::bad_config if BLOCCS_PUSH_TIMEOUT_MS does not parse (push then
// fails with that error too, rather than guess).
Result<std::optional<std::chrono::milliseconds>> push_timeout();

// Bytes of a string, for payloads: bloccs::push(key, bloccs::bytes("hello")).
inline std::span<const std::byte> bytes(std::string_view s) noexcept {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// ---- inline: receive_batch adapts any callable to the non-template drain ------------------------

template <class F>
Result<std::size_t> Port::receive_batch(F&& f, std::size_t max, Deadline deadline) {
  return drain([](void* ctx, const MessageView& m) { (*static_cast<std::remove_reference_t<F>*>(ctx))(m); },
               &f, max, deadline, true);
}

template <class F>
Result<std::size_t> Port::try_receive_batch(F&& f, std::size_t max) {
  return drain([](void* ctx, const MessageView& m) { (*static_cast<std::remove_reference_t<F>*>(ctx))(m); },
               &f, max, kNoDeadline, false);
}

}  // namespace bloccs
#pragma GCC visibility pop
