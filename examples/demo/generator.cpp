// SPDX-License-Identifier: Apache-2.0
// The demo's source: emits --messages numbered messages on output `out` as fast as the graph
// takes them (a full port downstream parks it: back-pressure), then exits.
#include <cstdio>
#include <string>

#include "bloccs/node.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
  std::uint64_t messages = 20'000;
  std::uint64_t bytes = 0;
  if (int rc = bloccs::examples::parse_options(
          argc, argv, "bloccs demo: the generator node",
          {{"--messages", "how many messages to emit", &messages},
           {"--bytes", "pad each message to this many bytes (benchmarks)", &bytes}});
      rc >= 0)
    return rc;

  auto node = bloccs::Node::from_environment();
  if (!node) return bloccs::Node::fail(node.error());
  const auto start = bloccs::Clock::now();
  std::uint64_t seq = 0;
  for (; seq < messages && !node->stopping(); ++seq) {
    std::string text = "message " + std::to_string(seq);
    if (text.size() < bytes) text.resize(bytes, '.');
    bloccs::Meta meta;
    meta.set("seq", std::to_string(seq));
    if (auto st = node->emit("out", text, meta); !st) return bloccs::Node::fail(st.error());
  }
  const double s = std::chrono::duration<double>(bloccs::Clock::now() - start).count();
  std::fprintf(stderr, "generator: emitted %llu messages in %.2f s%s\n",
               static_cast<unsigned long long>(seq), s, seq < messages ? " (stopped early)" : "");
  return 0;
}
