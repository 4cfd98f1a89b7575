// SPDX-License-Identifier: Apache-2.0
// The demo's slow end: takes --work-us of work per message (a sleep), so the whole graph slows
// to its pace. Counts what it received and checks that no message came twice; --record writes
// each message's seq in the order they first arrived.
#include <cstdio>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "bloccs/node.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
  int work_us = 200;
  std::string record;
  if (int rc = bloccs::examples::parse_options(
          argc, argv, "bloccs demo: the slow sink node",
          {{"--work-us", "microseconds of work per message", &work_us, false,
            std::pair{0.0, 1e6}},
           {"--record", "at the end, write the seq of every message received here, in the order "
                        "they first arrived", &record}});
      rc >= 0)
    return rc;

  auto node = bloccs::Node::from_environment();
  if (!node) return bloccs::Node::fail(node.error());
  std::unordered_set<std::string> seen;
  std::vector<std::string> arrived;  // first arrivals, in order
  std::uint64_t repeated = 0;
  node->on_message([&](const bloccs::Delivery& in, bloccs::Outputs&) -> bloccs::Status {
    std::string seq(in.meta.get("seq").value_or(""));
    if (seen.insert(seq).second) {
      if (!record.empty()) arrived.push_back(std::move(seq));
    } else {
      ++repeated;
    }
    if (work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(work_us));
    return {};
  });
  const int rc = node->run();
  if (!record.empty()) {
    std::FILE* f = std::fopen(record.c_str(), "w");
    if (!f) return bloccs::Node::fail({bloccs::Errc::system_error, "cannot write " + record});
    for (const auto& seq : arrived) std::fprintf(f, "%s\n", seq.c_str());
    std::fclose(f);
  }
  std::fprintf(stderr, "sink: received %zu distinct messages, %llu more than once\n", seen.size(),
               static_cast<unsigned long long>(repeated));
  return rc;
}
