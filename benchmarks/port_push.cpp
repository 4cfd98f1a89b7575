// SPDX-License-Identifier: Apache-2.0
// In-process cost of the port API on top of the ring: push by key (attachment lookup, liveness
// check, meta encoding), push through a Sender (the key resolved once) and receive (meta
// decoding), beside the bare ring in push_pop.cpp. Everything stays in L1: this is the software
// on the hot path. Each runs with the time-in-queue histogram (the default) and without it
// (*_no_histogram): the difference is what stamping and recording cost per message.
#include <unistd.h>

#include <array>
#include <string>

#include <benchmark/benchmark.h>

#include "bloccs/port.hpp"

namespace {

struct Bench {
  explicit Bench(bool single, bool histogram)
      : ns("bench-" + std::to_string(getpid())),
        port(bloccs::Port::start(key, {.buffer = 64, .max_payload = 64, .single_pusher = single,
                                       .ns = ns, .latency_histogram = histogram})),
        pusher(bloccs::Pusher::open(ns)) {}
  bool ok(benchmark::State& state) const {
    if (!port) state.SkipWithError(port.error().message.c_str());
    return port.ok() && pusher.ok();
  }
  const bloccs::PortKey key{"bench", "node", "in"};
  std::string ns;
  bloccs::Result<bloccs::Port> port;
  bloccs::Result<bloccs::Pusher> pusher;
};

void push_receive(benchmark::State& state, bool single, bool with_meta, bool histogram = true) {
  Bench b(single, histogram);
  if (!b.ok(state)) return;
  std::array<std::byte, 64> in{};
  bloccs::Meta meta;
  if (with_meta) meta.set("trace", "0123456789abcdef");
  std::size_t bytes = 0;
  for (auto _ : state) {
    if (!b.pusher->push(b.key, in, meta)) return state.SkipWithError("push failed");
    auto n = b.port->try_receive_batch(
        [&](const bloccs::MessageView& m) { bytes += m.payload.size() + m.meta.size(); }, 1);
    if (!n || *n != 1) return state.SkipWithError("receive failed");
  }
  benchmark::DoNotOptimize(bytes);
}

void sender_receive(benchmark::State& state, bool single, bool histogram = true) {
  Bench b(single, histogram);
  if (!b.ok(state)) return;
  b.pusher = bloccs::Error{bloccs::Errc::closed, "a Sender pushes here"};  // its slot is free
  auto sender = bloccs::Sender::open(b.key, b.ns);
  if (!sender) return state.SkipWithError(sender.error().message.c_str());
  std::array<std::byte, 64> in{};
  std::size_t bytes = 0;
  for (auto _ : state) {
    if (!sender->push(in)) return state.SkipWithError("push failed");
    auto n = b.port->try_receive_batch(
        [&](const bloccs::MessageView& m) { bytes += m.payload.size() + m.meta.size(); }, 1);
    if (!n || *n != 1) return state.SkipWithError("receive failed");
  }
  benchmark::DoNotOptimize(bytes);
}

void batch(benchmark::State& state, bool single, bool histogram = true) {
  Bench b(single, histogram);
  if (!b.ok(state)) return;
  std::array<std::byte, 64> in{};
  std::size_t bytes = 0;
  for (auto _ : state) {
    for (int i = 0; i < 32; ++i)
      if (!b.pusher->push(b.key, in)) return state.SkipWithError("push failed");
    auto n = b.port->try_receive_batch(
        [&](const bloccs::MessageView& m) { bytes += m.payload.size(); }, 64);
    if (!n || *n != 32) return state.SkipWithError("receive failed");
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations() * 32);
}

}  // namespace

BENCHMARK_CAPTURE(push_receive, spsc, true, false);
BENCHMARK_CAPTURE(push_receive, mpsc, false, false);
BENCHMARK_CAPTURE(push_receive, mpsc_with_meta_pair, false, true);
BENCHMARK_CAPTURE(push_receive, spsc_no_histogram, true, false, false);
BENCHMARK_CAPTURE(push_receive, mpsc_no_histogram, false, false, false);
BENCHMARK_CAPTURE(sender_receive, spsc, true);
BENCHMARK_CAPTURE(sender_receive, mpsc, false);
BENCHMARK_CAPTURE(sender_receive, spsc_no_histogram, true, false);
BENCHMARK_CAPTURE(sender_receive, mpsc_no_histogram, false, false);
BENCHMARK_CAPTURE(batch, spsc, true);
BENCHMARK_CAPTURE(batch, mpsc, false);
BENCHMARK_CAPTURE(batch, spsc_no_histogram, true, false);
BENCHMARK_CAPTURE(batch, mpsc_no_histogram, false, false);

BENCHMARK_MAIN();
