// SPDX-License-Identifier: Apache-2.0
// The smallest pusher: three messages now, one a second later through the owner's timer.
#include <bloccs/port.hpp>
#include <cstdio>
#include <thread>

int main() {
  const bloccs::PortKey printer{"example", "printer", "in"};
  for (const char* text : {"one", "two", "three"}) {
    bloccs::Status st = bloccs::push(printer, bloccs::bytes(text));
    for (int tries = 0; !st && st.code() == bloccs::Errc::no_producer && tries < 50; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the owner is starting
      st = bloccs::push(printer, bloccs::bytes(text));
    }
    if (!st) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 1;
    }
  }
  bloccs::Meta meta;
  meta.attempt = 1;
  bloccs::Status st =
      bloccs::push_after(printer, bloccs::bytes("four"), meta, std::chrono::seconds(1));
  if (!st) std::fprintf(stderr, "%s\n", st.error().message.c_str());
  return st ? 0 : 1;  // exits at once: the owner delivers "four" a second from now
}
