// SPDX-License-Identifier: Apache-2.0
// Nodes: the processes of a pipeline. A node owns the input ports of its network that the
// pipeline file gives it, runs a handler per message, and emits to named outputs; the runtime
// pushes each emitted message into every input port its output is wired to.
//
//   int main() {
//     auto node = bloccs::Node::from_environment();           // started by `bloccs run`
//     if (!node) return bloccs::Node::fail(node.error());
//     node->on_message([](const bloccs::Delivery& in, bloccs::Outputs& out) -> bloccs::Status {
//       if (in.payload.empty()) return bloccs::Error{bloccs::Errc::bad_config, "empty payload"};
//       return out.emit("out", in.payload, in.meta.copy());
//     });
//     return node->run();                                       // until the launcher stops it
//   }
//
// The contract:
//   waiting   run() waits on all of the node's input ports at once (one futex_waitv over every
//             port's wake-up words: no spinning, no polling) and drains each in batches of up to
//             `batch` messages, port after port.
//   emitting  what a handler emits is sent when the handler returns ok, in emit order; a failed
//             attempt emits nothing. A push parks while the target port is full (back-pressure),
//             once the node is stopping no longer than its drain limit. A target whose owner is
//             gone (crashed, being restarted) is tried again every 20 ms until it is back, the
//             node's drain limit passes, or the launcher marks the target's node over (it
//             finished, or gave up after its restarts): then what was sent to it is lost, counted.
//             Emitted meta arrives as given, except `attempt`, which starts at 0 again: it counts
//             retries at one port.
//   failing   a handler fails a message by returning an Error or throwing. The runtime then
//             push_after()s it into the same port with meta.attempt + 1, after the node's retry
//             policy's delay (exponential, capped, with jitter). The message whose handler has
//             failed `max_attempts` times goes to the dead-letter port {network, dead_letter, in}
//             instead, with meta "error" (the last error's text), "node" and "port" added and
//             attempt = the number of failed attempts. Nothing is dropped silently: a message that
//             cannot be dead-lettered either (no dead-letter port) is counted in `lost`.
//   stopping  SIGINT or SIGTERM (or stop()) asks the node to finish: a source's `stopping()`
//             turns true; a node with inputs keeps handling until its ports are empty and its
//             retries are delivered, then run() returns 0.
//   counting  the node's counters (NodeCounters) live in shared memory, so the launcher shows
//             them live and still reads them after a crash. A node restarted by the launcher
//             continues from its predecessor's counters (a source can resume from `emitted`);
//             they are published after each batch, so a crash can leave the last batch uncounted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bloccs/meta.hpp"
#include "bloccs/pipeline.hpp"
#include "bloccs/port.hpp"
#include "bloccs/result.hpp"

namespace bloccs::detail {  // the hidden insides of the classes below
struct NodeImpl;  // pipeline/node.cpp
}  // namespace bloccs::detail

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

// A message as a handler sees it: valid during the handler call only.
struct Delivery {
  std::string_view port;  // the input port it arrived on
  std::span<const std::byte> payload;
  MetaView meta;  // meta.attempt(): how many times its handler failed before
  std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
  }
};

// Where a handler emits. Messages are held until the handler returns ok, then sent.
class Outputs;

// Room for one message in a target port's ring, handed out by Outputs::loan: valid during the
// handler call only.
class OutputLoan {
 public:
  std::span<std::byte> bytes() const noexcept { return bytes_; }
  // Sends only the first `n` bytes (at most bytes().size()); by default all of them.
  void use(std::size_t n) noexcept;

 private:
  friend class Outputs;
  OutputLoan(Outputs* out, std::size_t held, std::span<std::byte> bytes)
      : out_(out), held_(held), bytes_(bytes) {}
  Outputs* out_;  // null: an output wired nowhere
  std::size_t held_;
  std::span<std::byte> bytes_;
};

class Outputs {
 public:
  // Errc::not_found if the node has no such output (a node whose output is not wired anywhere
  // has it only if the pipeline file declares it); payload and meta are checked when sent.
  Status emit(std::string_view output, std::span<const std::byte> payload, const Meta& meta = {});
  Status emit(std::string_view output, std::string_view text, const Meta& meta = {}) {
    return emit(output, bytes(text), meta);
  }
  // Zero-copy emit, for large messages: room for up to `bytes` bytes in the ring of the port
  // `output` is wired to, written in place, so that the message is written once. It is sent
  // as emit() sends: when the handler returns ok, in emit order, with `meta` (and copied to
  // any further port the output is wired to); a failed attempt sends nothing of it. The room
  // is taken now: this parks while that port is full (as a push would), and the port's
  // consumer waits at the loan until the handler returns. One loan per output per message.
  // An output wired nowhere lends ordinary memory.
  Result<OutputLoan> loan(std::string_view output, std::size_t bytes, const Meta& meta = {});

 private:
  friend class Node;
  friend struct detail::NodeImpl;
  friend class OutputLoan;
  struct Held {
    std::size_t output;
    std::size_t payload_at, payload_size;
    Meta meta;
    bool loaned = false;  // the payload is loans_[output]'s
  };
  detail::NodeImpl* node_ = nullptr;
  const NodeSpec* spec_ = nullptr;
  std::vector<std::byte> bytes_;
  std::vector<Held> held_;
  std::vector<std::optional<Loan>> loans_;  // per output: the loan of the current handler call
  std::vector<std::byte> nowhere_;          // what loans of outputs wired nowhere lend
};

// The node's counters, in shared memory (one writer: the node's thread).
struct NodeCounters {
  std::uint64_t received = 0;       // messages taken from its input ports (a retry counts again)
  std::uint64_t handled = 0;        // handler returned ok
  std::uint64_t failed = 0;         // handler failed (each attempt)
  std::uint64_t retried = 0;        // of those, re-enqueued with push_after
  std::uint64_t dead_lettered = 0;  // of those, sent to the dead-letter port
  std::uint64_t emitted = 0;        // messages pushed into wired ports (each target counts)
  std::uint64_t lost = 0;           // could not be retried nor dead-lettered (never silently)
  std::uint64_t salvaged = 0;       // messages a restart found queued and kept (port takeover)
  std::uint64_t lost_at_takeover = 0;  // ... and the ones it had to count as lost
};

struct NodeOptions {
  std::string ns;  // namespace; empty: $BLOCCS_NAMESPACE, else "default"
  // Handle SIGINT and SIGTERM by stopping the node (off for nodes run inside tests' threads).
  bool handle_signals = true;
  // How long a stopping node goes on draining its ports and retries before it gives up, counted
  // from the stop (or less: the launcher gives the whole pipeline's stop one budget): past it,
  // what it cannot send and what is still queued are counted lost at once, and run() returns 1.
  std::chrono::milliseconds drain_limit{30'000};
};

class Node {
 public:
  using Handler = std::function<Status(const Delivery&, Outputs&)>;

  // The node named by $BLOCCS_NODE in the pipeline file $BLOCCS_PIPELINE (both set by the
  // launcher), in namespace $BLOCCS_NAMESPACE.
  static Result<Node> from_environment(NodeOptions options = {});
  // Starts node `id` of `pipeline`: its input ports, its pushers, its counters.
  static Result<Node> start(const PipelineSpec& pipeline, std::string_view id,
                            NodeOptions options = {});
  // Prints "<node>: <message>" to stderr and returns the exit status for main() (1).
  static int fail(const Error& error);

  Node(Node&&) noexcept;
  Node& operator=(Node&&) noexcept;
  ~Node();

  // The handler for messages on every input port (on_message), or on one (on).
  void on_message(Handler handler);
  void on(std::string_view in_port, Handler handler);

  // Handles messages until the node is stopped and drained: 0, or 1 after printing why not.
  int run();

  // For sources (and anyone outside a handler): pushes to every target of `output` now.
  Status emit(std::string_view output, std::span<const std::byte> payload, const Meta& meta = {});
  Status emit(std::string_view output, std::string_view text, const Meta& meta = {}) {
    return emit(output, bytes(text), meta);
  }

  // True once the node was asked to stop (signal or stop()). Async-signal-safe.
  bool stopping() const noexcept;
  // Asks run() to finish (drain, then return). Async-signal-safe; any thread.
  void stop() noexcept;

  const NodeSpec& spec() const noexcept;
  const std::string& network() const noexcept;
  NodeCounters counters() const noexcept;


 private:
  using Impl = detail::NodeImpl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The port keys of a pipeline: node `node`'s port `port`, and the dead-letter port.
inline PortKey port_key(const PipelineSpec& p, std::string_view node, std::string_view port) {
  return {p.network, std::string(node), std::string(port)};
}
inline PortKey dead_letter_key(const PipelineSpec& p) {
  return port_key(p, kDeadLetterNode, kDeadLetterPort);
}

}  // namespace bloccs
#pragma GCC visibility pop
