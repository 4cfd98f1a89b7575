// SPDX-License-Identifier: Apache-2.0
// The C++ side of the Python binding's tests (tests/python): a pusher or an owner in a process
// of its own, in namespace $BLOCCS_NAMESPACE, on the port {py, peer, in}.
//   cpp_peer push N    pushes "m0".."m<N-1>", attempt 1, meta {i: "<i>"}; exit 0 once all went in
//   cpp_peer own N     starts the port, prints "ready", then each message received as
//                      "<payload> <attempt> <meta i>" (N of them), and stops the port
#include <bloccs/port.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cpp_peer push|own N\n");
    return 2;
  }
  const std::string_view mode = argv[1];
  const int n = std::atoi(argv[2]);
  const bloccs::PortKey key{"py", "peer", "in"};
  if (mode == "push") {
    for (int i = 0; i < n; ++i) {
      bloccs::Meta meta;
      meta.attempt = 1;
      meta.set("i", std::to_string(i));
      const std::string payload = "m" + std::to_string(i);
      bloccs::Status st = bloccs::push(key, bloccs::bytes(payload), meta);
      for (int tries = 0; !st && st.code() == bloccs::Errc::no_producer && tries < 100; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the owner is starting
        st = bloccs::push(key, bloccs::bytes(payload), meta);
      }
      if (!st) {
        std::fprintf(stderr, "cpp_peer push: %s\n", st.error().message.c_str());
        return 1;
      }
    }
    return 0;
  }
  auto port = bloccs::Port::start(key, {.buffer = 64});
  if (!port) {
    std::fprintf(stderr, "cpp_peer own: %s\n", port.error().message.c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (int got = 0; got < n;) {
    auto r = port->receive_batch(
        [&](const bloccs::MessageView& m) {
          std::printf("%.*s %u %s\n", static_cast<int>(m.payload.size()),
                      reinterpret_cast<const char*>(m.payload.data()), m.meta.attempt(),
                      std::string(m.meta.get("i").value_or("-")).c_str());
          ++got;
        },
        64, bloccs::Clock::now() + std::chrono::seconds(20));
    if (!r) {
      std::fprintf(stderr, "cpp_peer own: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  std::fflush(stdout);
  return 0;
}
