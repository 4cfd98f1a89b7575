// SPDX-License-Identifier: Apache-2.0
// The smallest pipeline node, built against the installed package (bloccs::pipeline): a node
// with no inputs is the source and emits four greetings on `out`; a node with inputs prints
// what it receives. examples/installed/hello.toml wires one of each.
#include <bloccs/node.hpp>
#include <cstdio>
#include <string>

int main() {
  auto node = bloccs::Node::from_environment();  // BLOCCS_PIPELINE, BLOCCS_NODE: from `bloccs run`
  if (!node) return bloccs::Node::fail(node.error());
  if (node->spec().is_source()) {
    for (int i = 0; i < 4 && !node->stopping(); ++i)
      if (auto st = node->emit("out", "hello " + std::to_string(i)); !st)
        return bloccs::Node::fail(st.error());
    return 0;
  }
  node->on_message([](const bloccs::Delivery& in, bloccs::Outputs&) -> bloccs::Status {
    std::printf("printer: \"%.*s\" on port %.*s\n", static_cast<int>(in.text().size()),
                in.text().data(), static_cast<int>(in.port.size()), in.port.data());
    return {};
  });
  return node->run();
}
