// SPDX-License-Identifier: Apache-2.0
// The smallest bloccs pipeline: this process starts the port {demo, sink, in}; two other
// processes (this program again, run as "push") push numbered messages to that key, and each
// ends with a push_after that the owner's timer thread delivers later. The owner checks each
// pusher's order and prints what it received and how long it took.
//
//   bloccs-demo                       # owner: starts the port, then two pushers
//   bloccs-demo push --id 1 ...       # a pusher (started by the owner)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bloccs/port.hpp"

namespace {

struct Message {
  std::uint32_t pusher;
  std::uint32_t pad;
  std::uint64_t seq;
  char text[80];
};

const bloccs::PortKey kSink{"demo", "sink", "in"};
constexpr auto kGoodbyeDelay = std::chrono::milliseconds(100);

// Interrupted by Ctrl-C (or kill): the shell's exit code for SIGINT.
constexpr int kInterrupted = 130;

int fail(const bloccs::Error& e) {
  // Ctrl-C reaches the whole process group: the pushers stop with the owner, quietly.
  if (bloccs::stop_requested()) return kInterrupted;
  std::fprintf(stderr, "bloccs-demo: %s: %s\n", bloccs::errc_name(e.code), e.message.c_str());
  return 1;
}

int run_pusher(const std::string& ns, std::uint32_t id, std::uint64_t count) {
  auto pusher = bloccs::Pusher::open(ns);
  if (!pusher) return fail(pusher.error());
  Message m{id, 0, 0, {}};
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    m.seq = seq;
    std::snprintf(m.text, sizeof m.text, "hello #%llu from pusher %u (pid %d)",
                  static_cast<unsigned long long>(seq), id, static_cast<int>(getpid()));
    // Parks while the port is full: the owner's pace sets ours.
    if (auto st = pusher->push(kSink, std::as_bytes(std::span{&m, 1})); !st)
      return fail(st.error());
  }
  // The last message goes through the owner's timer thread, after we are gone.
  m.seq = count;
  std::snprintf(m.text, sizeof m.text, "goodbye from pusher %u, delivered %lld ms after it left",
                id, static_cast<long long>(kGoodbyeDelay.count()));
  bloccs::Meta meta;
  meta.set("from", "pusher " + std::to_string(id));
  if (auto st = pusher->push_after(kSink, std::as_bytes(std::span{&m, 1}), meta, kGoodbyeDelay);
      !st)
    return fail(st.error());
  return 0;
}

pid_t spawn_pusher(const std::string& ns, std::uint32_t id, std::uint64_t count) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string id_s = std::to_string(id), n_s = std::to_string(count);
    execl("/proc/self/exe", "bloccs-demo", "push", "--namespace", ns.c_str(), "--id",
          id_s.c_str(), "--messages", n_s.c_str(), static_cast<char*>(nullptr));
    std::perror("exec");
    _exit(127);
  }
  return pid;
}

int run_owner(const std::string& ns, std::uint64_t count, std::uint32_t buffer) {
  auto port =
      bloccs::Port::start(kSink, {.buffer = buffer, .max_payload = sizeof(Message), .ns = ns});
  if (!port) return fail(port.error());
  std::printf("owner pid %d: started port %s in namespace %s (buffer %u messages)\n",
              static_cast<int>(getpid()), bloccs::to_string(kSink).c_str(), ns.c_str(), buffer);

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
  const std::uint64_t expected = 2 * (count + 1);  // each pusher's messages and its goodbye
  while (received < expected) {
    auto n = port->receive_batch(
        [&](const bloccs::MessageView& msg) {
          Message m{};
          std::memcpy(&m, msg.payload.data(), std::min(msg.payload.size(), sizeof m));
          if (m.pusher > 1 || m.seq != next[m.pusher]) ++out_of_order;
          if (m.pusher <= 1) next[m.pusher] = m.seq + 1;
          if (printed < 4 || m.seq == count) {
            const auto from = msg.meta.get("from");
            const std::string note = from ? " [meta from=" + std::string(*from) + "]" : "";
            std::printf("  received: %s%s\n", m.text, note.c_str());
            ++printed;
          } else if (printed == 4) {
            std::printf("  ...\n");
            ++printed;
          }
          ++received;
        },
        1024, std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
    if (!n && n.code() == bloccs::Errc::stopping) {
      std::printf("interrupted after %llu messages: stopping the port\n",
                  static_cast<unsigned long long>(received));
      reap(0);              // the pushers got the signal too
      return kInterrupted;  // the Port stops as we return: nothing stays in /dev/shm
    }
    if (!n && n.code() != bloccs::Errc::timeout) return fail(n.error());
    if (!n) {
      reap(WNOHANG);
      if (running == 0) break;  // every pusher is gone and nothing more is queued
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  reap(0);
  const auto stats = port->stats();
  std::printf(
      "received %llu messages from 2 pusher processes in %.3f s (%.2f M msgs/s), "
      "%llu out of order, port depth now %llu\n",
      static_cast<unsigned long long>(received), secs, received / secs / 1e6,
      static_cast<unsigned long long>(out_of_order), static_cast<unsigned long long>(stats.depth));
  if (bad_exit) std::fprintf(stderr, "bloccs-demo: %d pusher(s) failed\n", bad_exit);
  return out_of_order == 0 && bad_exit == 0 && received == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bloccs demo: one owner process, two pusher processes, one port"};
  std::string ns;
  std::uint64_t count = 1'000'000;
  std::uint32_t buffer = 1024;
  app.add_option("--namespace", ns,
                 "segment namespace (default: $BLOCCS_NAMESPACE, else demo-<pid>)");
  app.add_option("--messages", count, "messages per pusher")->check(CLI::Range(1ull, 1ull << 40));
  app.add_option("--buffer", buffer, "port bound, in messages")
      ->check(CLI::Range(1u, bloccs::kMaxPortBuffer));
  auto* push =
      app.add_subcommand("push", "push numbered messages into the demo port (run by the owner)");
  std::uint32_t id = 0;
  push->add_option("--id", id, "pusher number")->required();
  push->fallthrough();  // --namespace and --messages also apply after "push"
  CLI11_PARSE(app, argc, argv);

  if (ns.empty()) {
    const char* env = std::getenv("BLOCCS_NAMESPACE");
    ns = env && *env ? env : "demo-" + std::to_string(getpid());
  }
  // Ctrl-C ends the waits with Errc::stopping instead of killing us: the port is cleaned up.
  if (auto st = bloccs::stop_on_signals(); !st) return fail(st.error());
  return push->parsed() ? run_pusher(ns, id, count) : run_owner(ns, count, buffer);
}
