// bloccs-logs-filter: passes on output `kept` the records of failed or slow requests
// (filter.hpp: --min-status, --slow-ms) and drops the rest (handled, nothing emitted).
#include <CLI/CLI.hpp>

#include "bloccs/node.hpp"
#include "filter.hpp"

int main(int argc, char** argv) {
  using namespace bloccs;
  CLI::App app{"bloccs logs example: the filter node, keeps failed and slow requests"};
  logs::FilterOptions options;
  logs::add_filter_options(app, options);
  CLI11_PARSE(app, argc, argv);

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
