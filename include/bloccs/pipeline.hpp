// SPDX-License-Identifier: Apache-2.0
// A pipeline: the graph a launcher starts, as read from a pipeline file (TOML).
//
//   [pipeline]
//   network = "demo"                      # every port of the graph is {demo, <node>, <port>}
//   restart = { base_ms = 100, factor = 2.0, cap_ms = 5000, max_restarts = 10 }
//   dead_letter = { buffer = 1024 }        # the port {demo, dead_letter, in}, kept by the launcher
//   conserved = true                       # 1:1 nodes: check in = delivered + dead + lost at the end
//
//   [nodes.generator]
//   program = "bloccs-demo-generator"     # a path (relative to this file) or a name to look up
//                                         # ("x.py": a Python node, looked for beside this file
//                                         #  first, run by python3 on $PATH or the interpreter
//                                         #  a `python = ` key names)
//   args = ["--messages", "20000"]
//   outputs.out = "transform.in"          # output -> "node.port", or a list of them (fan-out)
//
//   [nodes.transform]
//   program = "bloccs-demo-transform"
//   inputs.in = { buffer = 256 }          # buffer = "unbounded" for an unbounded port
//   outputs.out = ["sink.in"]
//   retry = { max_attempts = 4, base_ms = 20, factor = 2.0, cap_ms = 500, jitter = 0.25 }
//
//   [nodes.sink]
//   program = "bloccs-demo-sink"
//
// Every input port a wire points at exists (declared in `inputs` or not); a node with no input
// port is a source. Every error names the file and line of the offending entry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bloccs/result.hpp"

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

// How a node retries a message its handler failed: the attempt-th retry (attempt = 1, 2, ...)
// waits min(cap, base * factor^(attempt-1)) * (1 + jitter * u), u uniform in [0, 1). A message
// whose handler failed max_attempts times goes to the dead-letter port.
struct RetryPolicy {
  std::uint32_t max_attempts = 3;  // times the handler may run per message; 1: never retry
  std::chrono::milliseconds base{10};
  double factor = 2.0;  // >= 1
  std::chrono::milliseconds cap{1000};
  double jitter = 0.2;  // 0..1
  // The delay before retry number `attempt` (1-based), given u in [0, 1).
  std::chrono::milliseconds delay(std::uint32_t attempt, double u) const;
};

// How the launcher restarts a node that crashed: the n-th restart in a row waits
// min(cap, base * factor^(n-1)); after max_restarts restarts the launcher gives up on the
// pipeline (stops it, exit status 1).
struct RestartPolicy {
  std::chrono::milliseconds base{100};
  double factor = 2.0;
  std::chrono::milliseconds cap{5000};
  std::uint32_t max_restarts = 10;
};

struct InputSpec {
  std::string name;
  std::optional<std::uint32_t> buffer = 1024;  // std::nullopt: unbounded
  std::uint32_t max_payload = 4096;
  std::uint32_t typical_payload = 256;  // what the port's ring is sized by (PortOptions)
  bool latency_histogram = true;        // keep its time in queue (PortOptions)
  int line = 0;  // where it was declared (or first wired to)
};

struct Target {
  std::string node;
  std::string port;
  friend bool operator==(const Target&, const Target&) = default;
};

struct OutputSpec {
  std::string name;
  std::vector<Target> targets;  // fan-out: every message goes to each
  int line = 0;
};

struct NodeSpec {
  std::string id;
  std::filesystem::path program;  // resolved (absolute) unless LoadOptions::check_programs is off
  // What runs `program`: empty to exec it itself; for a Python node (program "x.py", or a
  // `python = ` key) the interpreter, resolved like program (default "python3" on $PATH).
  std::filesystem::path interpreter;
  std::vector<std::string> args;
  std::vector<InputSpec> inputs;  // sorted by name
  std::vector<OutputSpec> outputs;  // sorted by name
  RetryPolicy retry;
  std::uint32_t batch = 64;  // messages handled per drain of a port
  std::string host;          // the host it runs on; empty in a file without [hosts]
  int line = 0;
  bool is_source() const noexcept { return inputs.empty(); }
  const InputSpec* input(std::string_view name) const noexcept;
  const OutputSpec* output(std::string_view name) const noexcept;
};

// A machine a pipeline's nodes may be placed on, and how its launcher reaches the engine that
// carries the wires between hosts (NATS JetStream).
struct HostSpec {
  std::string name;
  std::vector<std::string> nats;        // server URLs (several for a cluster); empty: no engine
  std::filesystem::path credentials;    // a NATS .creds file, or empty
  int line = 0;
};

struct DeadLetterSpec {
  std::optional<std::uint32_t> buffer = 1024;
};

struct PipelineSpec {
  std::filesystem::path file;  // absolute
  std::string network;
  RestartPolicy restart;
  DeadLetterSpec dead_letter;
  // Every node passes each message on as one (1:1): the launcher then checks at the end that
  // every message the sources emitted was delivered (taken by a node without outputs),
  // dead-lettered, or counted lost, and fails the run if not.
  bool conserved = false;
  std::vector<NodeSpec> nodes;  // in file order
  std::vector<HostSpec> hosts;  // in file order; empty: every node on this host, no engine
  const NodeSpec* node(std::string_view id) const noexcept;
  const HostSpec* host(std::string_view name) const noexcept;
  // Nodes in an order where each comes before every node it feeds (sources first); a cycle
  // (allowed through an unbounded port) keeps file order within it.
  std::vector<const NodeSpec*> sources_first() const;
};

// The reserved node id of the dead-letter port {network, dead_letter, in}.
inline constexpr std::string_view kDeadLetterNode = "dead_letter";
inline constexpr std::string_view kDeadLetterPort = "in";

struct LoadOptions {
  // Where a bare program name (no '/') is looked for, before $PATH.
  std::vector<std::filesystem::path> program_dirs;
  bool check_programs = true;  // false: keep `program` as written (tests, tools that only read)
};

// Reads and checks a pipeline file. Errc::bad_config with "<file>:<line>: <what is wrong and
// what to do>" for: TOML syntax, unknown keys, wrong types, bad numbers (negative or zero
// buffer, max_attempts 0, factor < 1, jitter outside 0..1, ...), bad names, a wire to an
// unknown node (or to the reserved dead_letter), a missing or non-executable program, a cycle whose every
// port is bounded (it could deadlock when all its rings are full), and placement: a node on a
// host no [hosts.NAME] declares, a node without a host in a file that places its nodes, a
// malformed engine URL, and a wire between hosts one of which has no engine URL. Errc::not_found
// if the file cannot be read.
Result<PipelineSpec> load_pipeline(const std::filesystem::path& file, const LoadOptions& options = {});
// As load_pipeline, from text; `file` names it in errors and anchors relative program paths.
Result<PipelineSpec> parse_pipeline(std::string_view text, const std::filesystem::path& file,
                                    const LoadOptions& options = {});

}  // namespace bloccs
#pragma GCC visibility pop
