// SPDX-License-Identifier: Apache-2.0
// bloccs-logs-filter: passes on output `kept` the records of failed or slow requests
// (filter.hpp: --min-status, --slow-ms) and drops the rest (handled, nothing emitted).

#include "bloccs/node.hpp"
#include "filter.hpp"

int main(int argc, char** argv) {
  using namespace bloccs;
  logs::FilterOptions options;
  if (int rc = examples::parse_options(
          argc, argv, "bloccs logs example: the filter node, keeps failed and slow requests",
          logs::filter_options(options));
      rc >= 0)
    return rc;

  auto node = Node::from_environment();
  if (!node) return Node::fail(node.error());
  node->on_message([&options](const Delivery& in, Outputs& out) -> Status {
    auto record = logs::decode(in.text());
    if (!record) return std::move(record).error();
    if (!logs::keep(*record, options)) return {};
    return out.emit("kept", in.payload, in.meta.copy());
  });
  return node->run();
}
