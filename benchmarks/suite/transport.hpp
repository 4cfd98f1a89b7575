// SPDX-License-Identifier: Apache-2.0
// What the suite measures: transports that move fixed-size messages, one direction, from one or
// more sender processes to one receiver process. Every transport, bloccs and its peers alike,
// is driven through this one interface, so the scenarios (round trip, streaming, back-pressure)
// are written once and every figure is taken the same way.
//
// Life of a channel, across fork():
//   1. the parent calls make_channel(spec) before forking anyone (pipes, socket pairs and
//      anonymous mappings must be inherited);
//   2. the receiving process calls open_receiver() once;
//   3. only then, each sending process calls open_sender();
//   4. once every end is open, the parent calls unlink_names(): a named object (a POSIX queue,
//      a Boost queue) lives on while it is open, and nothing is left behind if a process dies;
//   5. when every process is done, the Channel is destroyed.
// Each call happens in the process that uses the end; a Channel object copied into a child by
// fork() is never destroyed there (children leave with _exit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bloccs/result.hpp"

namespace bloccs::bench {

struct ChannelSpec {
  std::string name;           // unique in the process tree: [a-z0-9-], at most 40 characters
  std::string ns;             // the bloccs namespace of this run (also a prefix for other names)
  // Every message is exactly this long: 8 to 4096 bytes for every transport, up to 4 MiB where
  // the transport can carry it (make_channel says why where it cannot).
  std::size_t bytes = 64;
  std::uint32_t capacity = 256;  // messages queued before a sender blocks, where the transport has a bound
  std::uint32_t senders = 1;     // sending processes
};

class Sender {
 public:
  virtual ~Sender() = default;
  // Blocks while the channel is full; returns once the message is queued.
  virtual Status send(std::span<const std::byte> message) = 0;
  // Returns once every message sent has left this process: a sending process calls it before
  // it exits (with _exit, which runs no destructor). Only a transport that queues in a thread
  // of its own (zmq-ipc) has anything to do.
  virtual Status finish() { return {}; }
};

class Receiver {
 public:
  virtual ~Receiver() = default;
  // Blocks until a message is there and copies it into `out` (exactly spec.bytes long).
  virtual Status receive(std::span<std::byte> out) = 0;
  // Blocks until at least one message is there, then takes every message already there, up to
  // `max`, each copied in turn into `scratch` (spec.bytes long): how many it took. Streaming uses
  // it, so each transport can hand over in batches the way a user of it would.
  virtual Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) {
    if (auto st = receive(scratch); !st) return std::move(st).error();
    (void)max;
    return std::size_t{1};
  }
};

class Channel {
 public:
  virtual ~Channel() = default;
  virtual Result<std::unique_ptr<Receiver>> open_receiver() = 0;
  virtual Result<std::unique_ptr<Sender>> open_sender() = 0;
  virtual void unlink_names() {}
};

struct Transport {
  std::string_view name;         // as in results.json: "floor-spin", "bloccs-spsc", "pipe", ...
  std::string_view description;  // one line for the report
  bool multi_sender;             // can take more than one sending process
  bool floor;                    // a physical floor, not a transport a user would pick
  Result<std::unique_ptr<Channel>> (*make_channel)(const ChannelSpec& spec);
  // One queue for all senders: what a sender sent before another sent is received first. False
  // where each sender has a connection of its own, merged at the receiver (zmq-ipc).
  bool one_queue = true;
};

// Each family lives in its own file.
std::span<const Transport> floor_transports();   // floor.cpp:  floor-spin, floor-futex
std::span<const Transport> bloccs_transports();  // bloccs_ports.cpp: bloccs-spsc, -mpsc, -spsc-parked
std::span<const Transport> peer_transports();    // peers.cpp:  boost-mq, posix-mq, uds, pipe
std::span<const Transport> zeromq_transports();  // zeromq.cpp: zmq-ipc

}  // namespace bloccs::bench

namespace bloccs::bench {

// Every transport the suite knows, floors first, then bloccs, then the peers.
std::vector<Transport> all_transports();
// The one named so, or nullptr.
const Transport* find_transport(std::string_view name);

}  // namespace bloccs::bench
