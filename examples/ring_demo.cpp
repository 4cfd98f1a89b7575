// The smallest bloccs pipeline: this process owns an MPSC ring; two other processes (this
// program again, run as "push") open it by name and push numbered messages into it; the owner
// prints what it receives and how long it took.
//
//   bloccs-ring-demo                       # owner: creates the ring, starts two pushers
//   bloccs-ring-demo push --id 1 ...       # a pusher (started by the owner)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bloccs/ring.hpp"
#include "shm/names.hpp"

namespace lf = bloccs;

namespace {

struct Message {
  std::uint32_t pusher;
  std::uint32_t pad;
  std::uint64_t seq;
  char text[80];
};

int fail(const bloccs::Error& e) {
  std::fprintf(stderr, "bloccs-ring-demo: %s: %s\n", bloccs::errc_name(e.code), e.message.c_str());
  return 1;
}

int run_pusher(const std::string& ns, std::uint32_t id, std::uint64_t count) {
  auto pusher = lf::RingPusher::open(ns, "demo");
  if (!pusher) return fail(pusher.error());
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    Message m{id, 0, seq, {}};
    std::snprintf(m.text, sizeof m.text, "hello #%llu from pusher %u (pid %d)",
                  static_cast<unsigned long long>(seq), id, static_cast<int>(getpid()));
    if (auto st = pusher->push(std::as_bytes(std::span{&m, 1})); !st) return fail(st.error());
  }
  return 0;
}

pid_t spawn_pusher(const std::string& ns, std::uint32_t id, std::uint64_t count) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string id_s = std::to_string(id), n_s = std::to_string(count);
    execl("/proc/self/exe", "bloccs-ring-demo", "push", "--namespace", ns.c_str(), "--id",
          id_s.c_str(), "--messages", n_s.c_str(), static_cast<char*>(nullptr));
    std::perror("exec");
    _exit(127);
  }
  return pid;
}

int run_owner(const std::string& ns, std::uint64_t count, std::uint32_t buffer) {
  auto ring = lf::Ring::create(
      ns, "demo", {.kind = lf::RingKind::mpsc, .buffer = buffer, .max_payload = sizeof(Message)});
  if (!ring) return fail(ring.error());
  std::printf("owner pid %d: created ring /dev/shm/%s (MPSC, buffer %u messages, %llu bytes)\n",
              static_cast<int>(getpid()), ring->segment().name().c_str(), buffer,
              static_cast<unsigned long long>(ring->config().capacity));

  std::fflush(stdout);  // the pushers are forked: do not hand them our buffered output
  const auto start = std::chrono::steady_clock::now();
  std::vector<pid_t> kids = {spawn_pusher(ns, 0, count), spawn_pusher(ns, 1, count)};
  std::vector<std::uint64_t> next(2, 0);
  std::uint64_t received = 0, out_of_order = 0, printed = 0;
  int bad_exit = 0;
  std::size_t running = kids.size();
  auto reap = [&](int flags) {
    for (pid_t& pid : kids) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, flags) == pid) {
        bad_exit += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        pid = -1;
        --running;
      }
    }
  };
  while (received < 2 * count) {
    auto n = ring->drain(
        [&](std::span<const std::byte> bytes) {
          Message m{};
          std::memcpy(&m, bytes.data(), std::min(bytes.size(), sizeof m));
          if (m.pusher > 1 || m.seq != next[m.pusher]) ++out_of_order;
          if (m.pusher <= 1) next[m.pusher] = m.seq + 1;
          if (printed < 4 || received + 1 == 2 * count) {
            std::printf("  received: %s\n", m.text);
            ++printed;
          } else if (printed == 4) {
            std::printf("  ...\n");
            ++printed;
          }
          ++received;
        },
        1024, std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
    if (!n && n.code() != bloccs::Errc::timeout) return fail(n.error());
    if (!n) {
      reap(WNOHANG);
      if (running == 0) break;  // every pusher is gone and nothing more is queued
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  reap(0);
  const auto stats = ring->stats();
  std::printf(
      "received %llu messages from 2 pusher processes in %.3f s (%.2f M msgs/s), "
      "%llu out of order, ring depth now %llu\n",
      static_cast<unsigned long long>(received), secs, received / secs / 1e6,
      static_cast<unsigned long long>(out_of_order), static_cast<unsigned long long>(stats.depth));
  if (bad_exit) std::fprintf(stderr, "bloccs-ring-demo: %d pusher(s) failed\n", bad_exit);
  return out_of_order == 0 && bad_exit == 0 && received == 2 * count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bloccs ring demo: one owner process, two pusher processes, one shared-memory ring"};
  std::string ns;
  std::uint64_t count = 1'000'000;
  std::uint32_t buffer = 1024;
  app.add_option("--namespace", ns,
                 "segment namespace (default: $BLOCCS_NAMESPACE, else demo-<pid>)");
  app.add_option("--messages", count, "messages per pusher")->check(CLI::Range(1ull, 1ull << 40));
  app.add_option("--buffer", buffer, "ring bound, in messages")
      ->check(CLI::Range(1u, bloccs::lockfree::kMaxBuffer));
  auto* push =
      app.add_subcommand("push", "push numbered messages into the demo ring (run by the owner)");
  std::uint32_t id = 0;
  push->add_option("--id", id, "pusher number")->required();
  push->fallthrough();  // --namespace and --messages also apply after "push"
  CLI11_PARSE(app, argc, argv);

  if (ns.empty() && !std::getenv("BLOCCS_NAMESPACE")) ns = "demo-" + std::to_string(getpid());
  auto resolved = bloccs::shm::resolve_namespace(ns);
  if (!resolved) return fail(resolved.error());
  return push->parsed() ? run_pusher(*resolved, id, count) : run_owner(*resolved, count, buffer);
}
