// SPDX-License-Identifier: Apache-2.0
// In-process cost of one push and one pop, everything in L1: the software on the hot path,
// without the cache-line transfers a cross-process hand-off adds (bloccs-bench, in suite/, measures those).
#include <unistd.h>

#include <array>
#include <string>

#include <benchmark/benchmark.h>

#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"

namespace {

namespace lf = bloccs::lockfree;

// A ring of 64 messages of up to 64 bytes and one pusher, both in this process.
struct Pair {
  explicit Pair(lf::RingKind kind)
      : ns("bench-" + std::to_string(getpid())),
        ring(lf::Ring::create(ns, "micro", {.kind = kind, .buffer = 64, .max_payload = 64})),
        pusher(ring ? lf::RingPusher::open(ns, "micro")
                    : bloccs::Result<lf::RingPusher>(ring.error())) {}
  bool ok(benchmark::State& state) const {
    if (pusher) return true;
    state.SkipWithError(pusher.error().message.c_str());
    return false;
  }
  std::string ns;
  bloccs::Result<lf::Ring> ring;
  bloccs::Result<lf::RingPusher> pusher;
};

void push_pop(benchmark::State& state, lf::RingKind kind) {
  Pair p(kind);
  if (!p.ok(state)) return;
  auto& ring = p.ring;
  auto& pusher = p.pusher;
  std::array<std::byte, 64> in{}, out{};
  for (auto _ : state) {
    if (!pusher->push(in)) return state.SkipWithError("push failed");
    auto n = ring->pop(out);
    if (!n) return state.SkipWithError(n.error().message.c_str());
    benchmark::DoNotOptimize(out);
  }
}

void drain_batch(benchmark::State& state, lf::RingKind kind) {
  Pair p(kind);
  if (!p.ok(state)) return;
  auto& ring = p.ring;
  auto& pusher = p.pusher;
  std::array<std::byte, 64> in{};
  std::size_t bytes = 0;
  for (auto _ : state) {
    for (int i = 0; i < 32; ++i)
      if (!pusher->push(in)) return state.SkipWithError("push failed");
    auto n = ring->try_drain([&](std::span<const std::byte> m) { bytes += m.size(); });
    if (!n || *n != 32) return state.SkipWithError("drain failed");
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations() * 32);
}

}  // namespace

BENCHMARK_CAPTURE(push_pop, spsc, lf::RingKind::spsc);
BENCHMARK_CAPTURE(push_pop, mpsc, lf::RingKind::mpsc);
BENCHMARK_CAPTURE(drain_batch, spsc, lf::RingKind::spsc);
BENCHMARK_CAPTURE(drain_batch, mpsc, lf::RingKind::mpsc);

BENCHMARK_MAIN();
