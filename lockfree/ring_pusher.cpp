// SPDX-License-Identifier: Apache-2.0
// Opening a ring to push into it, whichever its discipline.
#include "lockfree/ring_pusher.hpp"

namespace bloccs::lockfree {

Result<RingPusher> RingPusher::open(std::string_view ns, std::string_view name) {
  auto attached = RingAttachment::open(ns, name);
  if (!attached) return std::move(attached).error();
  if (attached->kind() == RingKind::mpsc)
    return RingPusher(MpscPusher(std::move(attached).value()));
  auto spsc = SpscPusher::resume(std::move(attached).value());
  if (!spsc) return std::move(spsc).error();  // its destructor gave the slot back
  return RingPusher(std::move(spsc).value());
}

}  // namespace bloccs::lockfree
