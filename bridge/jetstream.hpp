// SPDX-License-Identifier: Apache-2.0
// What the bridges of a pipeline's wires between hosts need of NATS JetStream (the C client,
// Debian libnats-dev): a connection to the engine (several URLs for a cluster, reconnecting by
// itself), a stream per wire made idempotently, publishing with the server's ack, and pulling
// from a durable consumer with an ack per message.
//
// One wire, one stream: subject bloccs.<network>.<node>.<port>, stream bloccs_<network>_<node>_
// <port> (a stream's name may not hold '.'), work-queue retention (an acked message leaves the
// stream), a bound on the messages it holds, and discard new: a publish to a full stream is
// refused, which is how back-pressure crosses hosts.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bloccs/meta.hpp"
#include "bloccs/port_key.hpp"
#include "bloccs/result.hpp"

namespace bloccs::bridge {

struct EngineSpec {
  std::vector<std::string> urls;       // nats://HOST:PORT, one or a cluster's
  std::filesystem::path credentials;   // a .creds file, or empty
  std::string client_name;             // shown by the server (e.g. "bloccs bridge demo/sink/in")
  std::chrono::milliseconds connect_timeout{2000};
};

// The subject, the stream and the ingress's durable consumer of the wire into `target`.
std::string wire_subject(const PortKey& target);
std::string wire_stream(const PortKey& target);
std::string wire_consumer(const PortKey& target);

// What the engine knows of a wire now.
struct WireState {
  std::uint64_t stored = 0;       // messages in its stream: published, not yet acked
  bool pulled = false;            // its consumer exists (an ingress pulled from it)
  std::uint64_t in_flight = 0;    // delivered to the ingress, not yet acked
  std::uint64_t redelivered = 0;  // deliveries beyond each message's first, in the consumer's life
};

// A message taken from a pull consumer: its payload and meta, and its ack.
class Pulled {
 public:
  Pulled(Pulled&&) noexcept;
  Pulled& operator=(Pulled&&) noexcept;
  ~Pulled();
  std::span<const std::byte> payload() const noexcept;
  const Meta& meta() const noexcept { return meta_; }
  std::uint64_t delivered() const noexcept { return delivered_; }  // 1, or more if redelivered
  // Its place in the stream: stream sequences are given in publish order, one per message
  // stored, so a wire's messages are 1, 2, 3, ... with no gap (work queue, discard new).
  std::uint64_t stream_seq() const noexcept { return stream_seq_; }
  // Not a message but the end of what `end_of()` (a host's egress) sends; empty otherwise.
  const std::string& end_of() const noexcept { return end_of_; }
  // Acknowledges it: the stream lets it go. Call only once it is safe elsewhere.
  Status ack();

 private:
  friend class Puller;
  struct Msg;
  explicit Pulled(std::unique_ptr<Msg> m);
  std::unique_ptr<Msg> msg_;
  Meta meta_;
  std::uint64_t delivered_ = 1;
  std::uint64_t stream_seq_ = 0;
  std::string end_of_;
};

class Puller;

class Engine {
 public:
  // Connects (the first URL that answers, then any as they fail over). Errc::not_ready naming
  // the URLs if none answers within connect_timeout; Errc::bad_config if the server has no
  // JetStream.
  static Result<std::unique_ptr<Engine>> connect(const EngineSpec& spec);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Makes the wire's stream, or updates its bound; a stream as asked is left as it is.
  // `replicas`: on how many servers of a cluster it is kept (1 to 5).
  Status ensure_stream(const PortKey& target, std::int64_t max_messages, int replicas = 1);
  // Publishes one message and waits for the server's ack. True: stored. False: the stream is
  // full (its consumer is behind): nothing was stored; try again later. `id`, if not empty,
  // lets the server drop a duplicate of a publish it already stored (within its window).
  Result<bool> publish(const PortKey& target, std::span<const std::byte> payload,
                       const Meta& meta, const std::string& id = {});
  // Publishes the end of what host `from` sends into the wire (after its last message): its
  // ingress stops once every host feeding it has ended. As publish: false while full.
  Result<bool> publish_end(const PortKey& target, const std::string& from);
  // Messages in the wire's stream now (published, not yet acked).
  Result<std::uint64_t> pending(const PortKey& target);
  // The stream sequence of the first message the ingress consumer `durable` has not acked: where
  // a restarted ingress resumes, in order, whatever its predecessor left unacked.
  Result<std::uint64_t> resume_point(const PortKey& target, const std::string& durable);
  // The wire's stream and consumer now (two requests). Errc::not_ready while the connection is
  // away (reconnecting) instead of waiting for a request's timeout.
  Result<WireState> wire_state(const PortKey& target);
  // A pull subscription on the wire's durable consumer `durable` (made if missing).
  Result<std::unique_ptr<Puller>> pull(const PortKey& target, const std::string& durable);

  struct Impl;

 private:
  Result<bool> publish(const PortKey& target, std::span<const std::byte> payload, const Meta& meta,
                       const std::string& id, const std::string& end);
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Puller {
 public:
  ~Puller();
  // Up to `max` messages, waiting up to `wait` for the first; empty if none came.
  Result<std::vector<Pulled>> fetch(int max, std::chrono::milliseconds wait);

  struct Impl;
  explicit Puller(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bloccs::bridge
