// SPDX-License-Identifier: Apache-2.0
// One host's part of a pipeline placed on several (issue 17): the nodes placed on it, plus a
// bridge for every wire that crosses to or from another host, as nodes of the part that the
// launcher supervises like any other.
//
//   egress   a wire from a node here to port P of node R on another host: a node with R's id
//            owns R's port P here (the same key, so the nodes here push to it as to any port)
//            and publishes what it takes to P's JetStream stream.
//   ingress  a wire from another host into port P of node N here: a source node that pulls
//            from P's stream and emits into N's P, acking a message once the push returned ok.
//
// Both run `bloccs bridge out|in --host NAME` (this executable).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bloccs/pipeline.hpp"
#include "bloccs/port_key.hpp"

namespace bloccs::launcher {

// The stream of a wire holds at most this many messages where its port is unbounded.
inline constexpr std::int64_t kUnboundedStream = 100'000;

struct Bridge {
  enum Kind { egress, ingress } kind;
  std::string node_id;  // the pseudo-node's id in the part
  PortKey target;       // the port the wire goes into (its stream's key)
  std::int64_t stream_limit = 0;
  // Servers of a cluster its stream is kept on: as many URLs as a host lists, at most 3.
  int replicas = 1;
  std::vector<std::string> feeding_hosts;  // ingress: the hosts whose egresses feed it
};

struct HostPart {
  PipelineSpec spec;             // the nodes on the host and the bridges' pseudo-nodes
  std::vector<Bridge> bridges;
  const HostSpec* host = nullptr;  // in the full spec
};

// The part of `full` placed on `host`; `bloccs` is this executable, which the bridges run.
// Errc::not_found naming the hosts if `host` is not one of them.
Result<HostPart> host_part(const PipelineSpec& full, const std::string& host,
                           const std::filesystem::path& bloccs);

}  // namespace bloccs::launcher
