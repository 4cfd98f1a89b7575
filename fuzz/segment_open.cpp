// SPDX-License-Identifier: Apache-2.0
// Opening a segment a peer with write access may have written anything into: the header's
// checks (shm::Segment::open) for every kind, and for a ring the config's (validated_config),
// the statistics tools read, and a pusher attaching and pushing into it. Each gives a value or
// an error; none may crash, hang, or touch memory outside the mapping.
//
// Input: [kind][flags][file bytes]. flags bit 0 makes the header pass (repair_header), so that
// most inputs reach the body; bit 1 opens read-only, as the tools do.
#include <vector>

#include "fuzz_support.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"

using namespace bloccs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const auto kind = static_cast<shm::SegmentKind>(1 + in.take(1) % 5);
  const auto flags = in.take(1);
  std::vector<std::uint8_t> file(in.rest().begin(), in.rest().end());
  if (flags & 1) {
    if (file.size() < sizeof(shm::SegmentHeader)) file.resize(sizeof(shm::SegmentHeader));
    fuzz::repair_header(file, kind);
  }
  fuzz::write_file("seg", file);
  auto seg = shm::Segment::open(fuzz::ns(), "seg", kind, {.read_only = (flags & 2) != 0});
  if (seg) {
    fuzz::require(seg->size() == file.size(), "an opened segment maps the whole file");
    if (kind == shm::SegmentKind::ring) {
      if (auto cfg = lockfree::validated_config(*seg)) {
        (void)lockfree::read_stats(*seg, *cfg);  // what shmctl shows; reads only
        if (!(flags & 2)) {
          if (auto pusher = lockfree::RingPusher::open(fuzz::ns(), "seg")) {
            const std::byte msg[24] = {};
            (void)pusher->push(msg, lockfree::Clock::now());  // full or not: never waits past now
          }
        }
      }
    }
  }
  fuzz::remove_file("seg");
  return 0;
}
