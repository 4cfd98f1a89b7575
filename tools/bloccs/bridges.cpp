// SPDX-License-Identifier: Apache-2.0
// The bridges' processes (bridges.hpp).
#include "tools/bloccs/bridges.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bloccs/node.hpp"
#include "bridge/in_order.hpp"
#include "bridge/jetstream.hpp"
#include "tools/bloccs/placement.hpp"

namespace bloccs::launcher {
namespace {

using std::chrono::milliseconds;

int fail(const std::string& who, const Error& e) {
  std::fprintf(stderr, "%s: %s\n", who.c_str(), e.message.c_str());
  return 1;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Publishes until stored, waiting while the stream is full or the engine is away (it
// reconnects by itself), until `give_up` says so.
template <class Publish, class GiveUp>
Status publish_until_stored(Publish&& publish, GiveUp&& give_up) {
  milliseconds backoff{1};
  for (;;) {
    Result<bool> stored = publish();
    if (stored && *stored) return {};
    if (give_up())
      return stored ? Status(Error{Errc::timeout, "the stream stayed full"}) : Status(stored.error());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(50));
  }
}

}  // namespace

int run_bridge(bool egress, const std::string& host) {
  const std::string id = env("BLOCCS_NODE");
  const std::string who = std::string("bridge ") + (egress ? "out " : "in ") + id;
  const std::string run = env("BLOCCS_RUN_ID");  // the launcher's (supervisor.hpp)
  if (id.empty() || run.empty())
    return fail(who, {Errc::bad_config, "a bridge is run by `bloccs run --host`, which gives it "
                                        "$BLOCCS_NODE and $BLOCCS_RUN_ID; start the host's part that way"});
  auto full = load_pipeline(env("BLOCCS_PIPELINE"), {.program_dirs = {}, .check_programs = false});
  if (!full) return fail(who, full.error());
  auto part = host_part(*full, host, "/proc/self/exe");
  if (!part) return fail(who, part.error());
  // The engine and the streams first: a bridge that cannot reach them must fail before its
  // node starts, for a port stopped by a clean exit would discard what was pushed into it
  // (while none runs, the pushers here wait for the port to come back).
  auto engine = bridge::Engine::connect(
      {.urls = part->host->nats, .credentials = part->host->credentials, .client_name = who});
  if (!engine) return fail(who, engine.error());
  std::vector<const Bridge*> mine;
  for (const Bridge& b : part->bridges)
    if (b.node_id == id) mine.push_back(&b);
  for (const Bridge* b : mine)
    if (auto st = (*engine)->ensure_stream(b->target, b->stream_limit, b->replicas); !st)
      return fail(who, st.error());
  NodeOptions options{.ns = env("BLOCCS_NAMESPACE")};
  if (const std::string d = env("BLOCCS_DRAIN_LIMIT_MS"); !d.empty())
    options.drain_limit = milliseconds(std::strtoll(d.c_str(), nullptr, 10));
  auto node = Node::start(part->spec, id, options);
  if (!node) return fail(who, node.error());

  if (egress) {
    Clock::time_point give_up_at{};  // once stopping: the drain limit
    // Each message's Nats-Msg-Id: this host, this run, and the message's number among those the
    // egress took. A restarted egress continues its predecessor's count, and takes first the
    // message that one was publishing when it died, so a publish stored whose ack never came
    // is repeated under the same id and the server drops it (within its duplicate window).
    const std::string id_prefix = host + "." + run + ".";
    node->on_message([&](const Delivery& d, Outputs&) -> Status {
      const PortKey target{full->network, id, std::string(d.port)};
      const Meta meta = d.meta.copy();
      const std::string msg_id = id_prefix + std::to_string(node->counters().received);
      const auto stop_by = [&] {
        if (!node->stopping()) return false;
        if (give_up_at == Clock::time_point{}) give_up_at = Clock::now() + options.drain_limit;
        return Clock::now() >= give_up_at;
      };
      return publish_until_stored([&] { return (*engine)->publish(target, d.payload, meta, msg_id); },
                                  stop_by);
    });
    const int rc = node->run();
    // Drained: the end of this host's messages, after its last one.
    const auto until = Clock::now() + options.drain_limit;
    for (const Bridge* b : mine)
      if (auto st = publish_until_stored([&] { return (*engine)->publish_end(b->target, host); },
                                         [&] { return Clock::now() >= until; });
          !st)
        return fail(who, st.error());
    return rc;
  }

  // Ingress: one port, fed by one or more hosts; its messages pushed in stream order.
  const Bridge& b = *mine.front();
  const std::string durable = bridge::wire_consumer(b.target);
  auto puller = (*engine)->pull(b.target, durable);
  if (!puller) return fail(who, puller.error());
  auto resume = (*engine)->resume_point(b.target, durable);
  if (!resume) return fail(who, resume.error());
  bridge::InOrder<bridge::Pulled> order(*resume);
  std::vector<std::string> ended;
  auto progress_at = Clock::now();
  // Hands one message on: into the port (or, for an end marker, into `ended`), then acks it.
  const auto hand_on = [&](bridge::Pulled& m) -> Status {
    if (!m.end_of().empty()) {
      if (std::find(ended.begin(), ended.end(), m.end_of()) == ended.end())
        ended.push_back(m.end_of());
    } else if (auto st = node->emit("out", m.payload(), m.meta()); !st) {
      return st;  // not acked: it comes again to the next bridge
    }
    if (auto st = m.ack(); !st) std::fprintf(stderr, "%s: %s\n", who.c_str(), st.error().message.c_str());
    progress_at = Clock::now();
    return {};
  };
  while (!node->stopping()) {
    auto got = (*puller)->fetch(64, milliseconds(250));
    if (!got) {  // the engine is away: it reconnects by itself
      std::this_thread::sleep_for(milliseconds(100));
      continue;
    }
    for (bridge::Pulled& m : *got) {
      if (m.stream_seq() == 0) {  // no place in the stream known: hand it on as it comes
        if (auto st = hand_on(m); !st) return fail(who, st.error());
      } else if (!order.offer(m.stream_seq(), std::move(m))) {
        (void)m.ack();  // handed on before; the ack may have been lost
      }
    }
    while (auto m = order.take())
      if (auto st = hand_on(*m); !st) return fail(who, st.error());
    // Waiting for a message longer than a redelivery takes: if the stream no longer has it
    // (removed by hand), go on from what it has.
    if (order.held() && Clock::now() - progress_at > milliseconds(5000)) {
      if (auto first = (*engine)->resume_point(b.target, durable); first && *first > order.next()) {
        std::fprintf(stderr, "%s: messages %llu to %llu are gone from the stream; going on\n",
                     who.c_str(), static_cast<unsigned long long>(order.next()),
                     static_cast<unsigned long long>(*first - 1));
        order.skip_to(*first);
        while (auto m = order.take())
          if (auto st = hand_on(*m); !st) return fail(who, st.error());
      }
      progress_at = Clock::now();
    }
    // Every feeder ended, and the stream holds nothing more: not even what a bridge before
    // this one took and never acked (it comes again after the ack wait).
    if (got->empty() && order.held() == 0 && ended.size() >= b.feeding_hosts.size()) {
      auto left = (*engine)->pending(b.target);
      if (left && *left == 0) break;
    }
  }
  return 0;
}

}  // namespace bloccs::launcher
