// SPDX-License-Identifier: Apache-2.0
// bloccs-logs-parse: turns each line into a record (log_record.hpp) on output `records`. A
// malformed line fails its handler with the reason ("line 17: status '2O0' is not an HTTP
// status (column 67)"); parsing is deterministic, so the pipeline file gives this node
// max_attempts = 1 and such a line goes straight to the dead-letter port, reason and all.
#include <charconv>
#include <string>

#include "bloccs/node.hpp"
#include "log_record.hpp"

namespace {

std::uint64_t meta_number(const bloccs::MetaView& meta, std::string_view key,
                          std::uint64_t fallback) {
  const auto text = meta.get(key);
  if (!text) return fallback;
  std::uint64_t v = fallback;
  (void)std::from_chars(text->data(), text->data() + text->size(), v);  // v stays on failure
  return v;
}

}  // namespace

int main() {
  using namespace bloccs;
  auto node = Node::from_environment();
  if (!node) return Node::fail(node.error());
  node->on_message([](const Delivery& in, Outputs& out) -> Status {
    const std::uint64_t line = meta_number(in.meta, "line", 0);
    const std::size_t full_length = meta_number(in.meta, "cut", in.payload.size());
    auto record = logs::parse_line(in.text(), full_length);
    if (!record) return Error{Errc::corrupt, logs::reject_reason(line, record.error())};
    return out.emit("records", logs::encode(*record), in.meta.copy());
  });
  return node->run();
}
