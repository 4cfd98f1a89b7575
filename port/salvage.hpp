// SPDX-License-Identifier: Apache-2.0
// Carrying a dead owner's queued messages over into the port that takes its key over. What is
// kept and what is lost is the contract in include/bloccs/port.hpp ("start"); how, in salvage.cpp.
#pragma once

#include <optional>
#include <string>

#include "port/port_impl.hpp"
#include "registry/registry.hpp"
#include "shm/segment.hpp"

namespace bloccs::port {

struct Salvage {
  PortTakeover report;
  std::string dead_control;           // the dead port's family, to remove once we are registered
  std::optional<shm::Segment> claim;  // its control segment, claimed by us (SalvagerLine)
  shm::HeldLock claim_lock;           // after `claim`: let go of before it is unmapped
};

// Reads the port `dead` names (its owner is dead; its name is its key's own, is_control_name)
// into the rings of `p`, which is started but not registered yet, so nobody else pushes to it
// and pushers of the key still get no_producer. Writes the counts into p's TakeoverLine.
// A dead port that cannot be opened or trusted is no error: the report says why nothing came.
// Errc::already_exists only if another live process has claimed it (it is taking the key over).
Result<Salvage> salvage(detail::PortImpl& p, const registry::PortEntry& dead);

// True if the port `dead` names (its owner is dead) holds nothing a next owner would carry over,
// so that its registry slot may be given to another key: no queued message, no due or pending
// push_after one. A port that cannot be read is kept (what it holds is unknown), unless it is
// gone altogether.
bool holds_nothing(const std::string& ns, const registry::PortEntry& dead);

// Gives the claim back, for a start that fails after salvage(): the dead port is left as it was
// (salvage only reads it), and the next start carries it over again.
void release(Salvage& s) noexcept;

}  // namespace bloccs::port
