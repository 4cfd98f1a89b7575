// SPDX-License-Identifier: Apache-2.0
// The demo's middle node: upper-cases each message and passes it on, but fails a share of its
// attempts (--fail-percent), so that retries with backoff and the dead-letter port show. Whether
// an attempt fails is a function of the message and the attempt number, so a message handled
// twice (after a crash) meets the same fate.
#include <cctype>
#include <cstdint>
#include <string>

#include "bloccs/node.hpp"
#include "options.hpp"

namespace {

// splitmix64: a well-mixed 64-bit hash, so failures spread evenly over messages and attempts.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

int main(int argc, char** argv) {
  double fail_percent = 20;
  if (int rc = bloccs::examples::parse_options(
          argc, argv, "bloccs demo: the flaky transform node",
          {{"--fail-percent", "share of attempts that fail, 0..100", &fail_percent, false,
            std::pair{0.0, 100.0}}});
      rc >= 0)
    return rc;

  auto node = bloccs::Node::from_environment();
  if (!node) return bloccs::Node::fail(node.error());
  const auto threshold = static_cast<std::uint64_t>(fail_percent / 100.0 * 1'000'000);
  node->on_message([&](const bloccs::Delivery& in, bloccs::Outputs& out) -> bloccs::Status {
    const std::string seq(in.meta.get("seq").value_or("0"));
    const std::uint64_t h = mix(std::stoull(seq) * 64 + in.meta.attempt());
    if (h % 1'000'000 < threshold)
      return bloccs::Error{bloccs::Errc::bad_config,
                           "simulated failure of message " + seq + " on attempt " +
                               std::to_string(in.meta.attempt() + 1)};
    std::string text(in.text());
    for (char& ch : text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return out.emit("out", text, in.meta.copy());
  });
  return node->run();
}
