// SPDX-License-Identifier: Apache-2.0
// The suite's results in memory: what results.json, the Markdown table and the plots are made of.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bloccs::bench {

// Nanoseconds; nearest-rank percentiles (see histogram.hpp for their precision).
struct Percentiles {
  std::uint64_t p50 = 0;
  std::uint64_t p90 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t max = 0;
};

// One measured figure: one line of results.json. Fields that do not apply stay empty and are
// left out of the JSON.
struct Figure {
  std::string transport;      // "floor-spin", "bloccs-spsc", "pipe", ... (Transport::name)
  std::string test;           // "rtt", "throughput" or "backpressure"
  std::uint32_t bytes = 0;    // payload bytes per message
  std::uint32_t pushers = 1;  // sending processes
  std::uint64_t count = 0;    // round trips (rtt) or messages (throughput, backpressure) measured
  std::optional<Percentiles> rtt;  // rtt: round-trip time
  std::optional<double> msgs_per_s;  // throughput, backpressure (bytes/s = msgs_per_s * bytes)
  // backpressure: the consumer does a fixed amount of work per message, slower than the pushers
  // push, so they wait for space most of the time.
  std::optional<double> consumer_alone_msgs_per_s;  // its pace on messages already queued
  std::optional<double> pusher_cpu;  // CPU time of each pusher / wall time, averaged (1 = a core)
};

struct Machine {
  std::string date;        // UTC, ISO 8601
  std::string host;
  std::string cpu_model;   // /proc/cpuinfo "model name"
  unsigned cpus = 0;       // CPUs this process may run on
  std::vector<int> pinned;  // the CPUs the sides were pinned to: receiver first; empty: unpinned
  std::string kernel;      // uname -r
  std::string compiler;    // e.g. "GCC 12.2.0"
  std::string build_type;  // CMAKE_BUILD_TYPE of the driver
  std::string command;     // how the run was started
  bool quick = false;      // the short CI run: few samples, figures are only indicative
};

struct Suite {
  Machine machine;
  std::vector<Figure> results;
};

}  // namespace bloccs::bench
