// SPDX-License-Identifier: Apache-2.0
// A ring's records as a peer with write access may have left them, read the ways bloccs reads
// them: by the live consumer (try_drain, each record's meta decoded as a port does), by a
// take-over's reader of a dead consumer's ring (OrphanRing: open, seal, read), and by
// a pusher claiming space after either. Cursors, pusher slots and the data area all come from
// the input; the header and config are a real ring's. Every record handed out must lie inside
// the data area and within max_payload; nothing may crash, hang or read outside the mapping.
//
// Input: [mode][head cursor: 8][tail cursor: 8][pusher slots: 2 x 64][data area: up to 1024].
// mode bit 0: MPSC (else SPSC); bit 1: the dead consumer's ring (else the live one); bit 2: push
// after reading.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "fuzz_support.hpp"
#include "lockfree/orphan_ring.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "port/meta_codec.hpp"

using namespace bloccs;
using namespace bloccs::lockfree;

namespace {

constexpr std::uint64_t kCapacity = 1024;
constexpr std::uint32_t kFuzzMaxPayload = 256;
constexpr std::uint32_t kPushers = 2;
// A consumer that is dead for every check: made for a pid no process has, its lock never held.
constexpr shm::ProcessId kDead{.pid = 0x3fffffff, .start_time = 12345};

// What the consumer and the take-over do with each record: check its bounds, decode its meta.
struct Reader {
  const RingConfig& cfg;
  const std::byte* data;
  std::uint64_t records = 0;
  void operator()(std::span<const std::byte> record) {
    fuzz::require(record.size() <= cfg.max_payload, "a record within max_payload");
    // Records never wrap: every one is handed out in place, inside the data area.
    fuzz::require(record.data() >= data && record.data() + record.size() <= data + cfg.capacity,
                  "a record handed out in place, inside the data area");
    MetaView meta;
    std::span<const std::byte> payload;
    std::uint64_t stamp;  // read, not used here
    if (MetaCodec::decode(record, meta, payload, stamp)) fuzz::touch(payload);
    fuzz::touch(record);
    ++records;
  }
};

// Writes the input's cursors, slots and data area over a freshly made ring's.
void scribble(std::byte* base, const RingConfig& cfg, std::uint64_t head, std::uint64_t tail,
              std::span<const std::uint8_t> slots, std::span<const std::uint8_t> area,
              bool write_head) {
  auto* c = reinterpret_cast<RingControl*>(base);
  // relaxed: nobody else maps this ring; the fuzzer plays every peer itself.
  if (write_head) c->consumer.head.store(head, std::memory_order_relaxed);
  c->producer.tail.store(tail, std::memory_order_relaxed);
  std::memcpy(base + cfg.slots_offset, slots.data(),
              std::min<std::size_t>(slots.size(), cfg.slot_count * sizeof(PusherSlot)));
  std::memcpy(base + cfg.data_offset, area.data(),
              std::min<std::size_t>(area.size(), cfg.capacity));
}

// A pusher's attach and push (deadline now: it never waits); false if either failed.
bool push_once() {
  auto pusher = RingPusher::open(fuzz::ns(), "ring");
  if (!pusher) return false;
  const std::byte msg[40] = {};
  return pusher->push(msg, Clock::now()).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const std::uint64_t mode = in.take(1);
  const std::uint64_t head = in.take(8);
  const std::uint64_t tail = in.take(8);
  std::vector<std::uint8_t> slots(kPushers * sizeof(PusherSlot));
  for (auto& b : slots) b = static_cast<std::uint8_t>(in.take(1));
  const std::span<const std::uint8_t> area = in.rest();

  const Cursor start = Cursor::unpack(head);
  const RingOptions options{.kind = (mode & 1) ? RingKind::mpsc : RingKind::spsc,
                            .buffer = 32,
                            .max_payload = kFuzzMaxPayload,
                            .capacity = kCapacity,
                            .max_pushers = kPushers,
                            .abandon_after = std::chrono::microseconds(100),
                            .start_position = start.pos & ~std::uint64_t{7},
                            .start_count = static_cast<std::uint32_t>(start.count)};
  if (!(mode & 2)) {  // the live consumer
    auto ring = Ring::create(fuzz::ns(), "ring", options);
    if (!ring) std::fprintf(stderr, "fuzz: %s\n", ring.error().message.c_str());
    fuzz::require(ring.ok(), "making the ring");
    const RingConfig& cfg = ring->config();
    std::byte* base = ring->segment().base();
    scribble(base, cfg, head, tail, slots, area, false);
    Reader reader{cfg, base + cfg.data_offset};
    for (int round = 0; round < 4; ++round) {
      auto n = ring->try_drain(reader, 64);
      if (!n || *n == 0) break;
    }
    if (mode & 4) (void)push_once();
    return 0;  // ~Ring removes it
  }
  // A dead consumer's ring, read by the take-over.
  fuzz::require(Ring::create_for(fuzz::ns(), "ring", options, kDead).ok(), "making the ring");
  {
    auto seg = shm::Segment::open(fuzz::ns(), "ring", shm::SegmentKind::ring);
    fuzz::require(seg.ok(), "opening the ring to scribble on it");
    auto cfg = validated_config(*seg);
    fuzz::require(cfg.ok(), "our own ring's config checks out");
    scribble(seg->base(), *cfg, head, tail, slots, area, true);
  }
  if (auto orphan = OrphanRing::open(fuzz::ns(), "ring", kDead)) {
    const RingConfig& cfg = orphan->config();
    Reader reader{cfg, orphan->segment().base() + cfg.data_offset};
    if (orphan->seal(Clock::now())) {
      const OrphanRead r = orphan->read(reader, Clock::now());
      fuzz::require(r.read == reader.records, "read counts every record handed over");
      // Review item 1: once sealed, no push is ok: nobody would ever read it. An SPSC ring is
      // sealed where its records end, and a pusher resumes at the shared tail, which lags
      // them; a tail a peer moved past that end (no pusher can) skips the seal, as a peer can
      // lose messages in other ways (zeroing them): that case is left out.
      const bool tail_past_records = !(mode & 1) && pos_before(r.end, Cursor::unpack(tail).pos);
      if ((mode & 4) && !tail_past_records)
        fuzz::require(!push_once(), "no push is ok into a sealed dead ring");
    }
  }
  (void)shm::Segment::remove(fuzz::ns(), "ring");
  return 0;
}
