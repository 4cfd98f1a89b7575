// SPDX-License-Identifier: Apache-2.0
// The smallest owner: starts the port {example, printer, in}, prints four messages, stops.
#include <bloccs/port.hpp>
#include <cstdio>

int main() {
  // Ctrl-C ends the receive with Errc::stopping instead of killing us, so the port is cleaned up.
  if (auto st = bloccs::stop_on_signals(); !st) return 1;
  auto port = bloccs::Port::start({"example", "printer", "in"}, {.buffer = 64});
  if (!port) {
    std::fprintf(stderr, "%s\n", port.error().message.c_str());
    return 1;
  }
  for (std::size_t received = 0; received < 4;) {
    auto n = port->receive_batch(
        [](const bloccs::MessageView& m) {
          std::printf("received \"%.*s\" (attempt %u)\n", static_cast<int>(m.payload.size()),
                      reinterpret_cast<const char*>(m.payload.data()), m.meta.attempt());
        },
        16, bloccs::Clock::now() + std::chrono::seconds(10));
    if (!n && n.code() == bloccs::Errc::stopping) return 130;  // interrupted: stop cleanly
    if (!n) {
      std::fprintf(stderr, "%s\n", n.error().message.c_str());
      return 1;
    }
    received += *n;
  }
}  // the Port stops here: the key is unregistered and its segments removed
