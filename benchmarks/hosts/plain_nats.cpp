// SPDX-License-Identifier: Apache-2.0
// The peers of a wire between hosts, measured against the same nats-server: plain NATS
// publish/subscribe (core: no storage, no ack; a slow subscriber would be dropped), and
// JetStream as a bridge uses it (a publish waits for its ack; a pull consumer acks each
// message), one message at a time, plus round trips: a core request/reply, a JetStream
// publish's ack, and a message's way there and back through two streams as two wires would
// carry it (publish, pull, ack, each way). Prints one JSON object; scripts/bench-hosts.sh runs it beside a
// real two-host pipeline and writes the ratios.
//   bloccs-bench-plain-nats --nats nats://127.0.0.1:4222 --messages 50000 --bytes 64
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bridge/jetstream.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bloccs-bench-plain-nats: %s\n", what.c_str());
  std::exit(1);
}

// As the bridges connect: every message goes out at once (no deferred flush).
natsConnection* connect_to(const std::string& url) {
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK || natsOptions_SetURL(opts, url.c_str()) != NATS_OK ||
      natsOptions_SetSendAsap(opts, true) != NATS_OK || natsConnection_Connect(&nc, opts) != NATS_OK)
    die("cannot connect to " + url);
  natsOptions_Destroy(opts);
  return nc;
}

std::uint64_t p50(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// "\"NAME_p50_ns\": ..., \"NAME_p99_ns\": ..., \"NAME_p999_ns\": ..., \"NAME_max_ns\": ..."
std::string percentiles(const char* name, std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v.empty() ? 0ULL
                     : static_cast<unsigned long long>(
                           v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))]);
  };
  char text[256];
  std::snprintf(text, sizeof text,
                "\"%s_p50_ns\": %llu, \"%s_p99_ns\": %llu, \"%s_p999_ns\": %llu, \"%s_max_ns\": %llu",
                name, at(0.5), name, at(0.99), name, at(0.999), name,
                v.empty() ? 0ULL : static_cast<unsigned long long>(v.back()));
  return text;
}

// The round trip of a wire's engine part alone: publish (and its ack) into stream x, pulled and
// acked by an echo that publishes it into stream y, pulled and acked here; one in flight.
std::vector<std::uint64_t> jetstream_round_trips(const std::string& url, const std::string& payload,
                                                 int count) {
  using bloccs::bridge::Engine;
  const bloccs::PortKey x{"bench", "rttx", "in"}, y{"bench", "rtty", "in"};
  auto here = Engine::connect({.urls = {url}, .credentials = {}, .client_name = "bench ping"});
  auto there = Engine::connect({.urls = {url}, .credentials = {}, .client_name = "bench echo"});
  if (!here || !there) die("cannot connect to " + url);
  if (!(*here)->ensure_stream(x, 64) || !(*here)->ensure_stream(y, 64)) die("cannot make the streams");
  auto from_x = (*there)->pull(x, "echo");
  auto from_y = (*here)->pull(y, "ping");
  if (!from_x || !from_y) die("cannot pull");
  std::atomic<bool> done{false};
  std::thread echo([&] {
    while (!done.load()) {
      auto got = (*from_x)->fetch(1, std::chrono::milliseconds(200));
      if (!got) die(got.error().message);
      for (auto& m : *got) {
        auto stored = (*there)->publish(y, m.payload(), {});
        if (!stored || !*stored || !m.ack()) die("the echo's publish or ack failed");
      }
    }
  });
  const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(payload.data()),
                                        payload.size());
  std::vector<std::uint64_t> rtt;
  for (int i = 0; i < count + 200; ++i) {  // the first 200 warm up
    const auto r0 = Clock::now();
    auto stored = (*here)->publish(x, body, {});
    if (!stored || !*stored) die("a JetStream publish failed");
    auto back = (*from_y)->fetch(1, std::chrono::milliseconds(2000));
    if (!back || back->size() != 1 || !back->front().ack()) die("the round trip stalled");
    if (i >= 200) rtt.push_back(static_cast<std::uint64_t>((Clock::now() - r0).count()));
  }
  done = true;
  echo.join();
  return rtt;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = "nats://127.0.0.1:4222";
  long messages = 50'000, bytes = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--nats") url = argv[i + 1];
    else if (k == "--messages") messages = std::atol(argv[i + 1]);
    else if (k == "--bytes") bytes = std::atol(argv[i + 1]);
    else die("unknown option " + k + "; use --nats URL --messages N --bytes B");
  }
  const std::string payload(static_cast<std::size_t>(bytes), 'x');

  // Core publish/subscribe: what arrives, and how fast.
  natsConnection* sub_conn = connect_to(url);
  natsConnection* pub_conn = connect_to(url);
  std::atomic<long> got{0};
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(
      &sub, sub_conn, "bench.core",
      [](natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
        static_cast<std::atomic<long>*>(closure)->fetch_add(1);
        natsMsg_Destroy(m);
      },
      &got);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  natsConnection_Flush(sub_conn);
  auto t0 = Clock::now();
  for (long i = 0; i < messages; ++i)
    natsConnection_Publish(pub_conn, "bench.core", payload.data(), static_cast<int>(bytes));
  natsConnection_Flush(pub_conn);
  while (got.load() < messages && seconds_since(t0) < 30)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  const double core_s = seconds_since(t0);
  const long core_got = got.load();

  // Core request/reply round trip.
  natsSubscription* echo = nullptr;
  natsConnection_Subscribe(
      &echo, sub_conn, "bench.echo",
      [](natsConnection* nc, natsSubscription*, natsMsg* m, void*) {
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
      },
      nullptr);
  natsConnection_Flush(sub_conn);
  std::vector<std::uint64_t> core_rtt;
  for (int i = 0; i < 2000; ++i) {
    natsMsg* reply = nullptr;
    const auto r0 = Clock::now();
    if (natsConnection_Request(&reply, pub_conn, "bench.echo", payload.data(),
                               static_cast<int>(bytes), 2000) != NATS_OK)
      die("request/reply failed");
    core_rtt.push_back(static_cast<std::uint64_t>((Clock::now() - r0).count()));
    natsMsg_Destroy(reply);
  }

  // JetStream as a bridge uses it.
  auto engine = bloccs::bridge::Engine::connect({.urls = {url}, .credentials = {}, .client_name = "bench"});
  if (!engine) die(engine.error().message);
  const bloccs::PortKey wire{"bench", "plain", "in"};
  if (!(*engine)->ensure_stream(wire, messages + 1)) die("cannot make the stream");
  std::vector<std::uint64_t> ack_rtt;
  const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(payload.data()),
                                        payload.size());
  t0 = Clock::now();
  for (long i = 0; i < messages; ++i) {
    const auto r0 = Clock::now();
    auto stored = (*engine)->publish(wire, body, {});
    if (!stored || !*stored) die("a JetStream publish failed");
    if (i < 2000) ack_rtt.push_back(static_cast<std::uint64_t>((Clock::now() - r0).count()));
  }
  const double js_pub_s = seconds_since(t0);
  auto puller = (*engine)->pull(wire, "bench");
  if (!puller) die(puller.error().message);
  long pulled = 0;
  t0 = Clock::now();
  while (pulled < messages) {
    auto batch = (*puller)->fetch(64, std::chrono::milliseconds(2000));
    if (!batch || batch->empty()) die("the pull stalled");
    for (auto& m : *batch) {
      if (!m.ack()) die("an ack failed");
      ++pulled;
    }
  }
  const double js_pull_s = seconds_since(t0);

  const std::vector<std::uint64_t> js_rtt = jetstream_round_trips(url, payload, 2000);

  std::printf(
      "{\"bytes\": %ld, \"messages\": %ld, \"core_pubsub_msgs_per_s\": %.0f, "
      "\"core_delivered\": %ld, \"core_request_rtt_p50_ns\": %llu, "
      "\"jetstream_publish_msgs_per_s\": %.0f, \"jetstream_pull_ack_msgs_per_s\": %.0f, "
      "\"jetstream_publish_ack_rtt_p50_ns\": %llu, %s, %s}\n",
      bytes, messages, static_cast<double>(core_got) / core_s, core_got,
      static_cast<unsigned long long>(p50(core_rtt)), static_cast<double>(messages) / js_pub_s,
      static_cast<double>(messages) / js_pull_s, static_cast<unsigned long long>(p50(ack_rtt)),
      percentiles("core_rtt", core_rtt).c_str(), percentiles("jetstream_rtt", js_rtt).c_str());
  natsSubscription_Destroy(sub);
  natsSubscription_Destroy(echo);
  natsConnection_Destroy(pub_conn);
  natsConnection_Destroy(sub_conn);
  return 0;
}
