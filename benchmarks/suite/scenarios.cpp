// SPDX-License-Identifier: Apache-2.0
#include "benchmarks/suite/scenarios.hpp"

#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include "benchmarks/suite/process.hpp"

namespace bloccs::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kStop = ~std::uint64_t{0};  // the sequence number that ends an echo

void put_sequence(std::vector<std::byte>& message, std::uint64_t seq) {
  std::memcpy(message.data(), &seq, sizeof seq);
}

std::uint64_t sequence(const std::vector<std::byte>& message) {
  std::uint64_t seq;
  std::memcpy(&seq, message.data(), sizeof seq);
  return seq;
}

// In a child: reports what went wrong on stderr, returns its exit code.
int fail(const char* who, const char* what, const Error& e) {
  std::fprintf(stderr, "bloccs-bench: %s: %s: %s: %s\n", who, what, errc_name(e.code),
               e.message.c_str());
  return 1;
}

Error in_context(const std::string& what, Error e) {
  e.message = what + ": " + e.message;
  return e;
}

// Receives messages on `in` and sends each back on `out` until the stop message.
int echo(Channel& in, Channel& out, std::size_t bytes, ParentLink& link) {
  if (!link.wait_release()) return 1;
  auto rx = in.open_receiver();
  if (!rx) return fail("echo", "open receiver", rx.error());
  auto tx = out.open_sender();
  if (!tx) return fail("echo", "open sender", tx.error());
  if (!link.ready()) return 1;
  std::vector<std::byte> message(bytes);
  for (;;) {
    if (auto st = (*rx)->receive(message); !st) return fail("echo", "receive", st.error());
    if (sequence(message) == kStop) {
      if (auto st = (*tx)->finish(); !st) return fail("echo", "finish", st.error());
      return 0;
    }
    if (auto st = (*tx)->send(message); !st) return fail("echo", "send", st.error());
  }
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

}  // namespace

void busy_work(std::chrono::nanoseconds work) {
  const auto end = Clock::now() + work;
  while (Clock::now() < end) {
  }
}

Status measure_round_trips(const Transport& t, const RoundTripPlan& plan, LatencyHistogram& into) {
  const ChannelSpec to_echo{plan.name + "-a", plan.ns, plan.bytes, 64, 1};
  const ChannelSpec from_echo{plan.name + "-b", plan.ns, plan.bytes, 64, 1};
  auto a = t.make_channel(to_echo);
  if (!a) return std::move(a).error();
  auto b = t.make_channel(from_echo);
  if (!b) return std::move(b).error();
  auto child = Child::spawn("the echo process", plan.child_cpu, [&](ParentLink& link) {
    return echo(**a, **b, plan.bytes, link);
  });
  if (!child) return std::move(child).error();
  auto rx = (*b)->open_receiver();
  if (!rx) return in_context("open receiver", std::move(rx).error());
  if (auto st = child->release(); !st) return st;
  if (auto st = child->wait_ready(); !st) return st;
  auto tx = (*a)->open_sender();
  if (!tx) return in_context("open sender", std::move(tx).error());
  (*a)->unlink_names();
  (*b)->unlink_names();

  std::vector<std::byte> out(plan.bytes), in(plan.bytes);
  std::uint64_t seq = 0;
  auto round_trip = [&]() -> Status {
    put_sequence(out, ++seq);
    if (auto st = (*tx)->send(out); !st) return in_context("send", std::move(st).error());
    if (auto st = (*rx)->receive(in); !st) return in_context("receive", std::move(st).error());
    if (sequence(in) != seq)
      return Error{Errc::corrupt, "the echo sent back another message than it was sent"};
    return {};
  };
  for (std::uint64_t i = 0; i < plan.warmup; ++i)
    if (auto st = round_trip(); !st) return st;
  for (std::uint64_t i = 0; i < plan.round_trips; ++i) {
    const auto start = Clock::now();
    const Status st = round_trip();
    const auto end = Clock::now();
    if (!st) return st;
    into.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count()));
  }
  put_sequence(out, kStop);
  if (auto st = (*tx)->send(out); !st) return in_context("send stop", std::move(st).error());
  auto exit = child->join();  // before the channels go, so the echo never sends into a removed one
  if (!exit) return std::move(exit).error();
  return {};
}

Result<StreamResult> measure_stream(const Transport& t, const StreamPlan& plan) {
  const ChannelSpec spec{plan.name, plan.ns, plan.bytes, plan.capacity, plan.pushers};
  auto channel = t.make_channel(spec);
  if (!channel) return std::move(channel).error();
  std::vector<Child> pushers;
  for (std::uint32_t p = 0; p < plan.pushers; ++p) {
    auto child = Child::spawn("pusher " + std::to_string(p + 1), plan.child_cpu,
                              [&](ParentLink& link) {
                                if (!link.wait_release()) return 1;
                                auto tx = (*channel)->open_sender();
                                if (!tx) return fail("pusher", "open sender", tx.error());
                                std::vector<std::byte> message(plan.bytes);
                                // One message before the clock: a first send may attach
                                // (bloccs looks the key up and maps the ring).
                                if (auto st = (*tx)->send(message); !st)
                                  return fail("pusher", "send", st.error());
                                if (!link.ready() || !link.wait_start()) return 1;
                                const double cpu_start = process_cpu_seconds();
                                for (std::uint64_t i = 1; i <= plan.per_pusher; ++i) {
                                  put_sequence(message, i);
                                  if (auto st = (*tx)->send(message); !st)
                                    return fail("pusher", "send", st.error());
                                }
                                // Its CPU while pushing, without fork and set-up.
                                const double cpu = process_cpu_seconds() - cpu_start;
                                if (auto st = (*tx)->finish(); !st)
                                  return fail("pusher", "finish", st.error());
                                return link.report(cpu) ? 0 : 1;
                              });
    if (!child) return std::move(child).error();
    pushers.push_back(std::move(child).value());
  }
  auto rx = (*channel)->open_receiver();
  if (!rx) return in_context("open receiver", std::move(rx).error());
  for (Child& c : pushers)
    if (auto st = c.release(); !st) return std::move(st).error();
  for (Child& c : pushers)
    if (auto st = c.wait_ready(); !st) return std::move(st).error();
  (*channel)->unlink_names();
  std::vector<std::byte> scratch(plan.bytes);
  for (std::uint32_t p = 0; p < plan.pushers; ++p)  // the warm-up messages, before the clock
    if (auto st = (*rx)->receive(scratch); !st) return in_context("receive", std::move(st).error());

  StreamResult result;
  const std::uint64_t total = plan.per_pusher * plan.pushers;
  const auto start = Clock::now();
  for (Child& c : pushers)
    if (auto st = c.start(); !st) return std::move(st).error();
  while (result.messages < total) {
    auto n = (*rx)->receive_some(scratch, std::min<std::uint64_t>(total - result.messages, 64));
    if (!n) return in_context("receive", std::move(n).error());
    result.messages += *n;
    if (plan.work.count() > 0)
      for (std::size_t i = 0; i < *n; ++i) busy_work(plan.work);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (Child& c : pushers) {
    auto exit = c.join();
    if (!exit) return std::move(exit).error();
    result.pusher_cpu_seconds += exit->reported.value_or(exit->cpu_seconds) / plan.pushers;
  }
  if (result.messages != total)
    return Error{Errc::corrupt, "received " + std::to_string(result.messages) + " messages of " +
                                    std::to_string(total) + " pushed"};
  return result;
}

}  // namespace bloccs::bench
