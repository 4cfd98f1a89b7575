// SPDX-License-Identifier: Apache-2.0
// The Prometheus text exposition (format 0.0.4, which OpenMetrics scrapers read too) of what
// the ports and a pipeline's nodes are doing: counters, gauges, and each port's time in queue as
// a histogram with one bucket per power of two from 128 ns to 137 s (the histogram's own
// octaves, so every count is exact), labelled by namespace, network, node and port.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bloccs/node.hpp"
#include "tools/shmctl/inspect.hpp"

namespace bloccs::metrics {

// What the launcher knows of one node of its pipeline.
struct NodeSample {
  std::string ns;
  std::string network;
  std::string node;
  bool up = false;  // its process runs
  std::uint32_t restarts = 0;
  NodeCounters counters;
};

// What the launcher of a placed pipeline's host knows of one wire to or from another host, as
// the engine said at its last look.
struct WireSample {
  std::string ns;
  std::string network;
  std::string direction;  // "out" or "in"
  std::string node, port;  // the wire's target port
  bool engine_up = false;  // the engine answered the last look (the numbers below are its)
  std::uint64_t stored = 0, bound = 0, in_flight = 0, redelivered = 0;
};

class Exposition {
 public:
  // Every port of each namespace looked at.
  void add_ports(const std::vector<shmctl::Looked>& looked);
  void add_nodes(const std::vector<NodeSample>& nodes);
  void add_wires(const std::vector<WireSample>& wires);
  // The text: each family once, with its HELP and TYPE, then its samples.
  std::string text() const;

 private:
  struct Family {
    std::string name, type, help;
    std::vector<std::string> samples;  // "name{labels} value"
  };
  Family& family(const std::string& name, const char* type, const char* help);
  void sample(const std::string& name, const char* type, const char* help,
              const std::string& labels, double value, const std::string& suffix = "");
  std::vector<Family> families_;
};

// A label value as the format writes it: backslash, double quote and newline escaped.
std::string label_value(const std::string& s);

}  // namespace bloccs::metrics
