// SPDX-License-Identifier: Apache-2.0
// The round trip over a wire between hosts, as a pipeline sees it: node `ping` on host a emits
// a message to node `echo` on host b, which emits it back; ping times each return and emits the
// next, one message in flight. Both are this program, run by `bloccs run --host`:
//   bloccs-bench-wire-ping ping --count N --bytes B --out FILE   # writes the percentiles (JSON)
//   bloccs-bench-wire-ping echo
// scripts/bench-hosts.sh writes the pipeline and runs both hosts beside plain NATS.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bloccs/node.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr long kWarmUp = 200;  // round trips not counted: connections, caches, the JIT of nothing

std::uint64_t at(const std::vector<std::uint64_t>& sorted, double q) {
  return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * sorted.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string role = argc > 1 ? argv[1] : "";
  long count = 5000, bytes = 64;
  std::string out_file;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--count") count = std::atol(argv[i + 1]);
    else if (k == "--bytes") bytes = std::atol(argv[i + 1]);
    else if (k == "--out") out_file = argv[i + 1];
  }
  if ((role != "ping" && role != "echo") || count < 1 || bytes < 1 ||
      (role == "ping" && out_file.empty())) {
    std::fprintf(stderr, "usage: bloccs-bench-wire-ping ping --count N --bytes B --out FILE | echo\n");
    return 2;
  }
  auto node = bloccs::Node::from_environment();
  if (!node) return bloccs::Node::fail(node.error());
  if (role == "echo") {
    node->on_message([](const bloccs::Delivery& d, bloccs::Outputs& out) -> bloccs::Status {
      return out.emit("out", d.payload);
    });
    return node->run();
  }

  const std::string payload(static_cast<std::size_t>(bytes), 'p');
  std::vector<std::uint64_t> rtt;
  rtt.reserve(static_cast<std::size_t>(count + kWarmUp));
  Clock::time_point sent = Clock::now();
  node->on_message([&](const bloccs::Delivery&, bloccs::Outputs& out) -> bloccs::Status {
    rtt.push_back(static_cast<std::uint64_t>((Clock::now() - sent).count()));
    if (static_cast<long>(rtt.size()) >= count + kWarmUp) {
      node->stop();
      return {};
    }
    sent = Clock::now();
    return out.emit("out", payload);
  });
  if (auto st = node->emit("out", payload); !st) return bloccs::Node::fail(st.error());
  const int rc = node->run();
  if (static_cast<long>(rtt.size()) < count + kWarmUp) {
    std::fprintf(stderr, "ping: stopped after %zu of %ld round trips\n", rtt.size(), count + kWarmUp);
    return 1;
  }
  std::vector<std::uint64_t> counted(rtt.begin() + kWarmUp, rtt.end());
  std::sort(counted.begin(), counted.end());
  std::ofstream(out_file) << "{\"bytes\": " << bytes << ", \"round_trips\": " << counted.size()
                          << ", \"p50_ns\": " << at(counted, 0.5) << ", \"p99_ns\": "
                          << at(counted, 0.99) << ", \"p999_ns\": " << at(counted, 0.999)
                          << ", \"max_ns\": " << counted.back() << "}\n";
  return rc;
}
