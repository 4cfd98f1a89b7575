// SPDX-License-Identifier: Apache-2.0
// A namespace's registry table (registry/registry_layout.hpp) with slots and journal as a peer
// with write access may have left them: the readers every pusher runs (entries, lookup,
// still_current) and a writer registering a port over them (which replays a journal a killed
// writer left). Every entry handed out must be a valid key and segment name; nothing may crash,
// hang, or read past the table. The table's header and mutex are a real one's (a peer that
// breaks the writers' mutex is beyond what a lock-free reader can defend).
//
// Input: [slots: 1 byte, 1..8][retired: 1][journal: 320][slots: 320 each].
#include <cstring>

#include "fuzz_support.hpp"
#include "registry/registry.hpp"
#include "registry/registry_layout.hpp"

using namespace bloccs;
using namespace bloccs::registry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const auto slots = static_cast<std::uint32_t>(1 + in.take(1) % 8);
  const std::uint64_t retired = in.take(1) & 1;
  const std::span<const std::uint8_t> body = in.rest();
  {
    auto made = Registry::open(fuzz::ns(), {.slots = slots});
    fuzz::require(made.ok(), "making the registry");
    std::byte* base = made->segment().base();
    auto* header = reinterpret_cast<RegistryHeader*>(base + sizeof(shm::SegmentHeader));
    header->retired.store(static_cast<std::uint32_t>(retired), std::memory_order_relaxed);
    // relaxed: nobody else maps it; the fuzzer plays every peer itself.
    std::memcpy(base + kJournalOffset, body.data(),
                std::min<std::size_t>(body.size(), sizeof(Journal) + slots * sizeof(RegistrySlot)));
  }  // the table stays: nobody registered in it, so nobody retires it

  if (auto reg = Registry::open(fuzz::ns(), {.create = false})) {
    for (const PortEntry& e : reg->entries()) {
      fuzz::require(validate_key(e.key).ok(), "an entry's key is a valid key");
      fuzz::require(e.segment.size() <= kSegmentNameMax, "an entry's segment name is bounded");
      fuzz::require(e.slot < reg->slot_count(), "an entry's slot is in the table");
      (void)reg->still_current(e.slot, e.generation);
      if (auto found = reg->lookup(e.key))
        fuzz::require(found->key == e.key, "lookup finds the key it was asked for");
    }
    (void)reg->still_current(~0u, 0);  // a slot past the table: false, never a read past it
    const PortKey key{"net", "node", "in"};
    if (auto found = reg->lookup(key))
      fuzz::require(found->key == key, "lookup finds the key it was asked for");
    // A writer over what the peer left: journal replay, a free or dead slot's reuse.
    if (auto r = reg->register_port(key, "port.1.2.net.node.in", 0)) (void)reg->unregister(*r);
  }
  fuzz::remove_file("registry");
  return 0;
}
