// SPDX-License-Identifier: Apache-2.0
// What the launcher shows: a snapshot of every node (its counters, from the node's shared
// block) and of its input ports (depth, parked pushers, from the read-only port view), the
// live status drawn from two snapshots, and the summary at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bloccs/node.hpp"
#include "bloccs/port_key.hpp"
#include "tools/bloccs/dead_letters.hpp"
#include "tools/shmctl/inspect.hpp"

namespace bloccs::launcher {

struct PortLoad {
  std::string name;
  std::uint32_t buffer = 0;  // 0: unbounded
  std::uint64_t depth = 0;           // in the pushers' ring: at most buffer
  std::uint64_t due = 0;             // due retries in the port's due lane, bounded apart
  std::uint32_t parked = 0;          // pushers asleep on this port (back-pressure upstream)
  std::uint64_t pending_after = 0;   // retries waiting in its owner's timer
  bool registered = false;
};

// A wire between hosts (placement.hpp) as the engine sees it (wire_watch.hpp).
struct WireView {
  std::string node;       // the bridge's node id in the part
  std::string direction;  // "out" or "in"
  PortKey target;         // the port the wire goes into
  std::string port() const { return target.network_id + "/" + target.node_id + "/" + target.in_port; }
  std::int64_t bound = 0; // its stream's bound
  bool known = false;     // the engine answered (the numbers below are its answer)
  std::uint64_t stored = 0, in_flight = 0, redelivered = 0;
  bool pulled = false;    // an ingress has pulled from it (its consumer exists)
  std::string error;      // why the last look failed, or empty
};

struct NodeView {
  const NodeSpec* spec = nullptr;
  NodeCounters counters;
  std::string state;  // starting, running, draining, done, restarting, failed, ...
  std::uint32_t pid = 0;
  std::uint32_t restarts = 0;
  std::vector<PortLoad> ports;
};

struct Snapshot {
  Clock::time_point at;
  std::vector<NodeView> nodes;  // pipeline file order
  DeadLetterTally dead;
  std::vector<WireView> wires;  // a placed pipeline's wires to and from this host
};

// The ports of `node` as registered in the namespace now.
std::vector<PortLoad> read_ports(const std::string& ns, const PipelineSpec& pipeline,
                                 const NodeSpec& node);

// A block of lines: one per node, with rates since `before`.
std::string render_status(const Snapshot& now, const Snapshot& before, Clock::time_point started);

// The ledger of a finished run: for a pipeline marked `conserved`, whether every message the
// sources emitted ended delivered (taken by a node without outputs), dead-lettered or counted lost.
struct Ledger {
  std::uint64_t in = 0, delivered = 0, dead_lettered = 0, retried = 0, lost = 0, salvaged = 0;
  std::uint32_t restarts = 0;
  bool adds_up = true;
};
Ledger ledger(const Snapshot& end);
std::string render_summary(const Snapshot& end, const Ledger& l, bool conserved,
                           double seconds);

}  // namespace bloccs::launcher
