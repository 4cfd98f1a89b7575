// SPDX-License-Identifier: Apache-2.0
// The peers of a wire between hosts, measured against the same nats-server: plain NATS
// publish/subscribe (core: no storage, no ack; a slow subscriber would be dropped), and
// JetStream as a bridge uses it (a publish waits for its ack; a pull consumer acks each
// message), one message at a time, plus the round trip of a core request/reply and of a
// JetStream publish's ack. Prints one JSON object; scripts/bench-hosts.sh runs it beside a
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

  std::printf(
      "{\"bytes\": %ld, \"messages\": %ld, \"core_pubsub_msgs_per_s\": %.0f, "
      "\"core_delivered\": %ld, \"core_request_rtt_p50_ns\": %llu, "
      "\"jetstream_publish_msgs_per_s\": %.0f, \"jetstream_pull_ack_msgs_per_s\": %.0f, "
      "\"jetstream_publish_ack_rtt_p50_ns\": %llu}\n",
      bytes, messages, static_cast<double>(core_got) / core_s, core_got,
      static_cast<unsigned long long>(p50(core_rtt)), static_cast<double>(messages) / js_pub_s,
      static_cast<double>(messages) / js_pull_s, static_cast<unsigned long long>(p50(ack_rtt)));
  natsSubscription_Destroy(sub);
  natsSubscription_Destroy(echo);
  natsConnection_Destroy(pub_conn);
  natsConnection_Destroy(sub_conn);
  return 0;
}
