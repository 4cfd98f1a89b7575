// The smallest owner and pusher, built against an installed bloccs: this process owns a ring;
// a child process opens it by name and pushes three messages; the owner prints them.
#include <sys/wait.h>
#include <unistd.h>

#include <bloccs/ring.hpp>
#include <cstdio>
#include <string>

int main() {
  const std::string ns = "example-" + std::to_string(getpid());
  auto ring = bloccs::Ring::create(ns, "inbox", {.kind = bloccs::RingKind::mpsc, .buffer = 16});
  if (!ring) {
    std::fprintf(stderr, "%s\n", ring.error().message.c_str());
    return 1;
  }
  if (fork() == 0) {  // the pusher: any process that knows the name
    auto pusher = bloccs::RingPusher::open(ns, "inbox");
    if (!pusher) _exit(1);
    for (const std::string msg : {"one", "two", "three"})
      if (!pusher->push(std::as_bytes(std::span{msg.data(), msg.size()}))) _exit(2);
    _exit(0);
  }
  int received = 0;
  while (received < 3) {
    auto n = ring->drain(
        [&](std::span<const std::byte> m) {
          std::printf("received \"%.*s\"\n", static_cast<int>(m.size()),
                      reinterpret_cast<const char*>(m.data()));
          ++received;
        },
        16, bloccs::Clock::now() + std::chrono::seconds(5));
    if (!n) {
      std::fprintf(stderr, "%s\n", n.error().message.c_str());
      return 1;
    }
  }
  int status = 0;
  wait(&status);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
