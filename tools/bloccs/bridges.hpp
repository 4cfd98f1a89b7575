// SPDX-License-Identifier: Apache-2.0
// `bloccs bridge out|in --host NAME`: the bridges of a placed pipeline's wires between hosts
// (placement.hpp), run by the launcher as nodes of its host's part, with the node runtime's
// environment ($BLOCCS_PIPELINE, $BLOCCS_NODE, $BLOCCS_NAMESPACE).
//
//   out  takes what the nodes here push into a remote node's port and publishes it to the
//        port's stream, waiting for the server's ack; while the stream is full it tries again
//        and takes nothing more, so its port fills and the pushers here park. When the launcher
//        stops it, it drains its port, then publishes the end of this host's messages.
//   in   pulls from the stream of a port here and pushes each message into it (parking while
//        the port is full: the stream then fills, and the remote publishers wait), acking it
//        once the push returned ok; it ends once every host feeding the port has ended.
// At least once: a bridge killed between its push and its ack has the message delivered again.
#pragma once

#include <string>

namespace bloccs::launcher {

// Runs a bridge; returns the process's exit status.
int run_bridge(bool egress, const std::string& host);

}  // namespace bloccs::launcher
