// SPDX-License-Identifier: Apache-2.0
// Cost of looking a port key up in a namespace's registry, with the table a quarter full and
// the key in its last occupied slot (the worst case of the scan).
#include <unistd.h>

#include <string>

#include <benchmark/benchmark.h>

#include "registry/registry.hpp"

namespace {

namespace reg = bloccs::registry;

void lookup(benchmark::State& state) {
  const std::string ns = "bench-" + std::to_string(getpid());
  const auto slots = static_cast<std::uint32_t>(state.range(0));
  auto r = reg::Registry::open(ns, {.slots = slots});
  if (!r) return state.SkipWithError(r.error().message.c_str());
  for (std::uint32_t i = 0; i < slots / 4; ++i)
    if (!r->register_port({"net", "node", "p" + std::to_string(i)}, "ring", 0))
      return state.SkipWithError("register failed");
  const reg::PortKey last{"net", "node", "p" + std::to_string(slots / 4 - 1)};
  for (auto _ : state) {
    auto e = r->lookup(last);
    if (!e) return state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(e);
  }
  (void)bloccs::shm::Segment::remove(ns, "registry");
}

}  // namespace

BENCHMARK(lookup)->Arg(256)->Arg(4096);

BENCHMARK_MAIN();
