// SPDX-License-Identifier: Apache-2.0
// What shmctl knows about ports, read from the registry and the segments without ever taking a
// lock or writing a byte a pusher or the owner uses (every mapping is read-only, except the
// registry's, which gc and rm change under its writer lock).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bloccs/meta.hpp"
#include "port/time_in_queue.hpp"
#include "bloccs/result.hpp"
#include "registry/registry.hpp"
#include "shm/segment.hpp"

namespace bloccs::shmctl {

struct PortCounters {
  std::uint64_t pushed = 0;    // received from the pushers' ring + queued there + skipped
  std::uint64_t received = 0;  // taken by the owner, from the pushers' ring and the due lane
  std::uint64_t timed_out = 0;
  std::uint64_t retried = 0;  // push_after enqueues that found the port full
  std::uint64_t abandoned = 0;
  std::uint64_t refused = 0;
  std::uint64_t after_delivered = 0;
};

struct PortView {
  registry::PortEntry entry;
  bool owner_alive = false;
  std::optional<std::string> error;  // the port's segments could not be read: why
  bool spsc = false;
  std::uint32_t buffer = 0;  // 0: unbounded
  std::uint32_t max_payload = 0;
  std::uint64_t depth = 0;  // queued: in the pushers' ring plus `due`
  // Of depth, push_after messages already due, waiting in the due lane: bounded on their own
  // (min(buffer, 256)), so a full port's depth can exceed its buffer by these.
  std::uint64_t due = 0;
  std::uint64_t bytes_used = 0;
  std::uint64_t capacity = 0;
  std::uint32_t links = 0;
  std::uint32_t parked_pushers = 0;
  std::uint64_t pending_after = 0;  // held by the timer, plus requests on their way to it
  PortCounters counters;
  // Pushers that waited for room: pushes that parked, their time parked in all, the longest,
  // and those sent away (no_producer) by the port stopping while they were parked.
  std::uint64_t pushes_waited = 0;
  std::chrono::nanoseconds waited{0};
  std::chrono::nanoseconds longest_wait{0};
  std::uint64_t no_producer_while_waiting = 0;
  bool histogram = false;                // the port keeps time in queue
  port::QueueTimeSnapshot time_in_queue;  // since the port started
};

struct PeekedMessage {
  std::vector<std::byte> payload;
  Meta meta;
};

// "net/node/in" -> key; Errc::bad_name with the reason otherwise.
Result<PortKey> parse_key(const std::string& text);
std::string key_text(const PortKey& key);

// The namespace's registry, or Errc::not_found if no port of it runs.
Result<registry::Registry> open_registry(const std::string& ns);

PortView inspect(const std::string& ns, const registry::PortEntry& entry);

// Every port of one namespace, as seen at one moment.
struct Looked {
  std::string ns;
  std::vector<PortView> ports;
};
// The ports of each namespace named (one that has none, or that we may not read, is left out).
std::vector<Looked> look_at(const std::vector<std::string>& namespaces);

// The next `n` messages queued in the pushers' ring, oldest first, without consuming them. A
// message the owner consumed while it was being read is left out.
Result<std::vector<PeekedMessage>> peek(const std::string& ns, const registry::PortEntry& entry,
                                        std::size_t n);

// A port family, or a pipeline node's counter block, in /dev/shm that gc may remove.
struct Garbage {
  // The family's control segment name (without "bloccs.<ns>."); empty when the slot names a
  // segment that is not its own port's (then only the slot is freed). For a node block, the
  // block's name ("node.<network>.<node>").
  std::string control;
  std::optional<registry::PortEntry> entry;  // the registry slot pointing at it, if any
  std::uint32_t owner_pid = 0;
  std::vector<std::string> segments;  // full names in /dev/shm
  shm::SegmentKind kind = shm::SegmentKind::port;  // port, or node for a node block
};

// Families whose owner is dead: registered ones, and ones no slot points at; and the counter
// blocks of pipeline nodes (pipeline/node_block.hpp) whose maker (a launcher, or a node run on
// its own) and node are both dead, as a SIGKILLed `bloccs run` leaves them.
std::vector<Garbage> find_garbage(const std::string& ns, registry::Registry* registry);
// The segments of one family, as they are in /dev/shm now.
std::vector<std::string> family_segments(const std::string& ns, const std::string& control);
// Frees the slot (if any) and removes the family, unless the slot changed since it was looked
// at or (without `even_if_alive`) a living process made the family (for a node block: unless
// its maker or its node came back to life). False if the slot had changed.
bool remove(const std::string& ns, registry::Registry* registry, const Garbage& g,
            bool even_if_alive = false);

}  // namespace bloccs::shmctl
