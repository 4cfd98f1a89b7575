// SPDX-License-Identifier: Apache-2.0
// bloccs-logs-aggregate: the sink. Adds every record to the aggregate (aggregate.hpp); when the
// launcher stops it and its port has drained (run() returns), writes the report to --out.
// A run that did not drain writes nothing: half a report would look like a whole one.
//
// The aggregate lives in this process's memory: if the node crashes, the launcher restarts it
// with an empty one, and the report then covers only what arrived after the restart.
#include <cstdio>
#include <string>

#include "options.hpp"

#include "aggregate.hpp"
#include "bloccs/node.hpp"

int main(int argc, char** argv) {
  using namespace bloccs;
  std::string file;
  if (int rc = examples::parse_options(
          argc, argv, "bloccs logs example: the aggregate node, writes the report when stopped",
          {{"--out",
            "where to write the report (a relative path is taken from the working directory)",
            &file, true}});
      rc >= 0)
    return rc;

  auto node = Node::from_environment();
  if (!node) return Node::fail(node.error());
  logs::Aggregate aggregate;
  node->on_message([&aggregate](const Delivery& in, Outputs&) -> Status {
    auto record = logs::decode(in.text());
    if (!record) return std::move(record).error();
    aggregate.add(*record);
    return {};
  });
  if (const int rc = node->run(); rc != 0) {
    std::fprintf(stderr, "aggregate: did not drain; no report written to %s\n", file.c_str());
    return rc;
  }
  if (Status st = aggregate.write(file); !st) return Node::fail(st.error());
  std::fprintf(stderr, "aggregate: wrote the report of %llu requests to %s\n",
               static_cast<unsigned long long>(aggregate.requests()), file.c_str());
  return 0;
}
