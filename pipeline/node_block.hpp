// SPDX-License-Identifier: Apache-2.0
// A node's counters in shared memory, so that the launcher shows them live and still reads
// them after the node crashed. The launcher creates the segment before it starts the node (it
// outlives restarts); a node started without a launcher creates its own.
//
// Segment "node.<network>.<node>" of the namespace:
//   offset  size  what                                            written by
//   0       64    SegmentHeader (shm/segment.hpp)                 its creator, once
//   64      64    NodeIdentity: pid, state, start time            the node
//                 restarts, over, stop_by                         the launcher
//   128     128   NodeCounterWords (bloccs::NodeCounters)          the node's thread
//   256     128   NodeLocks: the maker's and the node's liveness  their keeper threads (and
//                 locks                                           the kernel)
// Every word is written by one thread with relaxed stores and read by tools with relaxed
// loads: they are counters for people, and order nothing; `over` and `stop_by` are read by
// other nodes and by the node itself, and pair release with acquire. The block is in use while its
// maker (the launcher, which keeps it across the node's restarts, or a node run without one) or its
// node holds its lock (shm/liveness.hpp); `shmctl gc` removes it only when neither does.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bloccs/node.hpp"
#include "shm/liveness.hpp"
#include "shm/segment.hpp"

namespace bloccs::pipeline {

enum class NodeState : std::uint32_t { starting = 0, running = 1, draining = 2, done = 3 };

struct alignas(64) NodeIdentity {
  std::atomic<std::uint32_t> pid;
  std::atomic<std::uint32_t> state;  // NodeState
  std::atomic<std::uint64_t> start_time;
  std::atomic<std::uint32_t> restarts;  // by the launcher
  // By the launcher: 1 once the node is gone for good (finished, gave up, not to be restarted),
  // so that a node feeding it stops waiting for its ports to come back.
  std::atomic<std::uint32_t> over;
  // By the launcher before it asks the node to stop: when the whole pipeline's stop must be
  // done (steady_clock nanoseconds, the same clock in every process of the host); 0: unset.
  std::atomic<std::int64_t> stop_by;
};
static_assert(offsetof(NodeIdentity, over) == 20 && offsetof(NodeIdentity, stop_by) == 24);

struct alignas(64) NodeCounterWords {
  std::atomic<std::uint64_t> received, handled, failed, retried, dead_lettered, emitted, lost,
      salvaged, lost_at_takeover;

  NodeCounters load() const noexcept {
    auto l = [](const std::atomic<std::uint64_t>& w) { return w.load(std::memory_order_relaxed); };
    return {l(received), l(handled), l(failed), l(retried), l(dead_lettered),
            l(emitted),  l(lost),    l(salvaged), l(lost_at_takeover)};
  }
  void store(const NodeCounters& c) noexcept {
    auto s = [](std::atomic<std::uint64_t>& w, std::uint64_t v) {
      w.store(v, std::memory_order_relaxed);
    };
    s(received, c.received), s(handled, c.handled), s(failed, c.failed), s(retried, c.retried);
    s(dead_lettered, c.dead_lettered), s(emitted, c.emitted), s(lost, c.lost);
    s(salvaged, c.salvaged), s(lost_at_takeover, c.lost_at_takeover);
  }
};

struct alignas(64) NodeLocks {
  shm::LivenessLock maker;  // held by the process that made the block
  shm::LivenessLock node;   // held by the node process while it runs
};

struct NodeBlock {
  shm::SegmentHeader segment;
  NodeIdentity identity;
  NodeCounterWords counters;
  NodeLocks locks;
};
static_assert(offsetof(NodeBlock, identity) == 64);
static_assert(offsetof(NodeBlock, counters) == 128);
static_assert(offsetof(NodeBlock, locks) == 256);
static_assert(sizeof(NodeBlock) == 384);

// Prepares a fresh block's locks and makes this process its maker (before the block is named).
inline Result<shm::HeldLock> make_node_block(NodeBlock& block) {
  if (auto st = shm::init_liveness_lock(block.locks.maker, "a node block's maker lock"); !st)
    return std::move(st).error();
  if (auto st = shm::init_liveness_lock(block.locks.node, "a node block's node lock"); !st)
    return std::move(st).error();
  return shm::HeldLock::take(block.locks.maker, "a node block's maker lock");
}

inline std::string node_block_name(const std::string& network, const std::string& node) {
  return "node." + network + "." + node;
}

}  // namespace bloccs::pipeline
