// SPDX-License-Identifier: Apache-2.0
// bloccs-bench-data-path: the data path v2 beside its floors, between two processes pinned to
// different CPUs, every figure measured in one run and printed as ratios with PASS / MISS.
//
//   round trips, 64 B to 4 MiB: the pusher writes a message of the size, the consumer reads every
//   byte of it and answers with 8 bytes.
//     floor-touch   the least that can be: one process writes the bytes into a shared buffer,
//                   the other reads them there (a cache-line flag each way)
//     bloccs-loan   Sender::loan, written in place, commit; receive_batch reads in place
//     bloccs-copy   the message written into the pusher's own buffer, push copies it in,
//                   the consumer copies it out of the view into its own buffer and reads it
//     floor-memcpy  (one process) a copy of the size, at memory speed
//   streaming 64 B (messages per second at the consumer):
//     floor-stream      a plain SPSC ring of 64-byte slots, its tail published every message,
//                       and (floor-stream-64) every 64 messages
//     bloccs-spsc       Sender::push, one message at a time; receive_batch in place
//     bloccs-spsc-batch push_batch of 64
//
//   with --iceoryx, beside the round trips and the streams:
//     iceoryx-loan  iceoryx 2.0 (its RouDi daemon started for the run): an untyped publisher's
//                   loan written in place and published, the subscriber reads it in place and
//                   answers with a loaned 8-byte chunk; streaming, a publisher loaning as fast
//                   as it can and a subscriber reading each in place (iceoryx_peer.hpp)
//
//   the peers of bloccs-bench (boost-mq, posix-mq, uds, pipe, zmq-ipc), through the suite's
//   transports, at every size they can carry (a kernel limit says where one cannot: posix-mq's
//   msgsize_max, uds's send buffer): round trips the same way (the message copied out of the
//   transport and read, 8 bytes back), and streams (copied out, read).
//
//   with --plot DIR, the round trips' p50 against size, log-log, as DIR/rtt-by-size.dat and a
//   gnuplot script DIR/rtt-by-size.gp that draws DIR/rtt-by-size.png (scripts/bench.sh runs it).
//
//   bloccs-bench-data-path [--quick] [--iceoryx] [--plot DIR]
//                                        (in $BLOCCS_NAMESPACE if set, else bench-dp-<pid>)
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/suite/iceoryx_peer.hpp"
#include "benchmarks/suite/scenarios.hpp"
#include "benchmarks/suite/touch.hpp"
#include "benchmarks/suite/transport.hpp"
#include "bloccs/port.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using bloccs::PortKey;
using bloccs::bench::g_sink;
using bloccs::bench::pin;
using bloccs::bench::read_all;

inline void relax() {
  __builtin_ia32_pause();
}

struct Percentiles {
  double p50, p99, p999, max;
};
Percentiles percentiles(std::vector<double>& ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * ns.size()))];
  };
  return {at(0.5), at(0.99), at(0.999), ns.back()};
}

// Shared memory both processes map: a flag each way, then the buffer.
struct alignas(64) Line {
  std::atomic<std::uint64_t> v{0};
};
struct Shared {
  Line ping, pong;
  std::byte buf[1];
};
Shared* shared_area(std::size_t bytes) {
  void* p = mmap(nullptr, sizeof(Shared) + bytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return new (p) Shared;
}

std::size_t iterations_for(std::size_t size, bool quick) {
  const std::size_t n = size <= 4096         ? 20'000
                        : size <= 65536      ? 5'000
                        : size <= (1u << 20) ? 600
                                             : 200;
  return quick ? std::max<std::size_t>(n / 20, 10) : n;
}

// ---- floor-touch --------------------------------------------------------------------------

Percentiles floor_touch(std::size_t size, std::size_t n) {
  Shared* s = shared_area(size);
  const pid_t kid = fork();
  if (kid == 0) {
    pin(1);
    for (std::uint64_t seq = 1; seq <= n; ++seq) {
      // acquire: the writer's bytes are visible.
      while (s->ping.v.load(std::memory_order_acquire) != seq) relax();
      g_sink.fetch_xor(read_all(s->buf, size), std::memory_order_relaxed);
      s->pong.v.store(seq, std::memory_order_release);  // release: our reading is done
    }
    _exit(0);
  }
  pin(0);
  std::vector<double> ns;
  ns.reserve(n);
  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    if (seq == 1) std::memset(s->buf, 0, size);  // its pages faulted in before the clock runs
    const auto t0 = Clock::now();
    std::memset(s->buf, static_cast<int>(seq), size);
    s->ping.v.store(seq, std::memory_order_release);  // release: the bytes before it
    while (s->pong.v.load(std::memory_order_acquire) != seq) relax();  // acquire: it has read
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  waitpid(kid, nullptr, 0);
  munmap(s, sizeof(Shared) + size);
  return percentiles(ns);
}

Percentiles floor_memcpy(std::size_t size, std::size_t n) {
  std::vector<std::byte> a(size, std::byte{1}), b(size);
  std::vector<double> ns;
  for (std::size_t i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    std::memcpy(b.data(), a.data(), size);
    g_sink.fetch_xor(static_cast<std::uint64_t>(b[i % size]), std::memory_order_relaxed);
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  return percentiles(ns);
}

// ---- bloccs round trips -------------------------------------------------------------------

// The child owns "ping" (the big messages), the parent owns "pong" (8-byte answers).
Percentiles bloccs_round_trip(const std::string& ns, std::size_t size, std::size_t n, bool loan) {
  const PortKey ping{"bench", "child", "ping"}, pong{"bench", "parent", "pong"};
  Shared* ready = shared_area(0);
  const pid_t kid = fork();
  if (kid == 0) {
    pin(1);
    auto port = bloccs::Port::start(ping, {.buffer = 2,  // one message in flight: the least ring
                                           .max_payload = static_cast<std::uint32_t>(size),
                                           .typical_payload = static_cast<std::uint32_t>(size),
                                           .single_pusher = true,
                                           .ns = ns});
    auto pusher = bloccs::Sender::open(pong, ns);  // the parent's pong port starts later
    if (!port || !pusher) _exit(2);
    ready->ping.v.store(1);
    while (ready->pong.v.load() == 0) relax();  // the parent's pong port is up
    std::vector<std::byte> mine(size);
    const std::uint64_t answer = 0;
    for (std::size_t i = 0; i < n + std::min<std::size_t>(n / 2, 64); ++i) {  // and the warm-up
      auto got = port->receive_batch(
          [&](const bloccs::MessageView& m) {
            if (loan) {
              g_sink.fetch_xor(read_all(m.payload.data(), m.payload.size()),
                               std::memory_order_relaxed);  // in place
            } else {
              std::memcpy(mine.data(), m.payload.data(), m.payload.size());  // copied out
              g_sink.fetch_xor(read_all(mine.data(), m.payload.size()), std::memory_order_relaxed);
            }
          },
          1);
      if (!got) _exit(3);
      if (!pusher->push(std::as_bytes(std::span(&answer, 1)))) _exit(4);
    }
    port->stop();
    _exit(0);
  }
  pin(0);
  auto port = bloccs::Port::start(pong, {.buffer = 4, .single_pusher = true, .ns = ns});
  auto pusher = bloccs::Sender::open(ping, ns);
  if (!port || !pusher) std::exit(5);
  while (ready->ping.v.load() == 0) relax();
  ready->pong.v.store(1);
  std::vector<std::byte> mine(size);
  std::vector<double> samples;
  samples.reserve(n);
  // The first laps of a new ring fault its pages in: warm up over more than the ring holds.
  const std::size_t warm = std::min<std::size_t>(n / 2, 64);
  for (std::size_t i = 0; i < n + warm; ++i) {
    const auto t0 = Clock::now();
    if (loan) {
      auto l = pusher->loan(size);
      if (!l) std::exit(6);
      std::memset(l->bytes().data(), static_cast<int>(i), size);  // written once, in place
      if (!l->commit()) std::exit(7);
    } else {
      std::memset(mine.data(), static_cast<int>(i), size);  // written into our own buffer
      if (!pusher->push(mine)) std::exit(8);                // and copied in
    }
    if (!port->receive_batch([](const bloccs::MessageView&) {}, 1)) std::exit(9);
    if (i >= warm)
      samples.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  waitpid(kid, nullptr, 0);
  munmap(ready, sizeof(Shared));
  return percentiles(samples);
}

// ---- streaming 64 B -----------------------------------------------------------------------

constexpr std::size_t kSlots = 1024;
struct StreamRing {
  Line head, tail;
  alignas(64) std::byte slot[kSlots][64];
};

// Messages per second through a plain ring of 64-byte slots, its tail published every `every`.
double floor_stream(std::size_t every, double seconds) {
  auto* r = new (mmap(nullptr, sizeof(StreamRing), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0)) StreamRing;
  Line* stop = &reinterpret_cast<Shared*>(shared_area(0))->ping;
  const pid_t kid = fork();
  if (kid == 0) {
    pin(1);
    std::uint64_t tail = 0, head = 0;
    std::byte msg[64] = {};
    while (stop->v.load(std::memory_order_relaxed) == 0) {
      if (tail - head + every > kSlots) {
        head = r->head.v.load(std::memory_order_acquire);  // acquire: slots freed
        if (tail - head + every > kSlots) continue;
      }
      for (std::size_t i = 0; i < every; ++i) std::memcpy(r->slot[(tail + i) % kSlots], msg, 64);
      tail += every;
      r->tail.v.store(tail, std::memory_order_release);  // release: the slots before it
    }
    _exit(0);
  }
  pin(0);
  std::uint64_t head = 0, taken = 0;
  const auto t0 = Clock::now();
  const auto end =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    const std::uint64_t tail = r->tail.v.load(std::memory_order_acquire);  // acquire: slots
    for (; head < tail; ++head)
      g_sink.fetch_xor(read_all(r->slot[head % kSlots], 8), std::memory_order_relaxed);
    taken = head;
    r->head.v.store(head, std::memory_order_release);  // release: we are done with them
  }
  const double rate = taken / std::chrono::duration<double>(Clock::now() - t0).count();
  stop->v.store(1);
  waitpid(kid, nullptr, 0);
  return rate;
}

enum class Push { one, batch, loan };

// Messages per second at a consumer that reads every byte of each (of `size` bytes), from a
// pusher that pushes copies of one buffer (one), batches of 64 of them (batch), or writes each
// into a loan (loan).
double bloccs_stream(const std::string& ns, std::size_t size, Push how, double seconds) {
  const PortKey key{"bench", "stream", "in"};
  const auto bytes = static_cast<std::uint32_t>(size);
  // Big frames: a few in flight (more only spread them over more memory than the caches hold).
  const std::uint32_t buffer = size <= 64 ? 1024u : size <= 65536 ? 64u : 4u;
  auto port = bloccs::Port::start(key, {.buffer = buffer,
                                        .max_payload = std::max<std::uint32_t>(bytes, 4096),
                                        .typical_payload = bytes,
                                        .single_pusher = true,
                                        .ns = ns});
  if (!port) std::exit(10);
  Line* stop = &reinterpret_cast<Shared*>(shared_area(0))->ping;
  const pid_t kid = fork();
  if (kid == 0) {
    pin(1);
    auto pusher = bloccs::Sender::open(key, ns);
    if (!pusher) _exit(2);
    std::vector<std::byte> msg(size);
    std::vector<std::span<const std::byte>> spans(64, std::span<const std::byte>(msg));
    while (stop->v.load(std::memory_order_relaxed) == 0) {
      if (how == Push::loan) {
        auto l = pusher->loan(size);
        if (!l) _exit(3);
        std::memset(l->bytes().data(), 1, size);
        if (!l->commit()) _exit(4);
        continue;
      }
      const auto st = how == Push::one ? pusher->push(msg) : pusher->push_batch(spans);
      if (!st) _exit(5);
    }
    _exit(0);
  }
  pin(0);
  // The first laps of a new ring fault its pages in (both processes): not timed.
  for (std::uint64_t warm = 0; warm < 2 * buffer + 16;) {
    auto n = port->receive_batch([](const bloccs::MessageView&) {}, 1024,
                                 Clock::now() + std::chrono::seconds(10));
    if (!n) std::exit(11);
    warm += *n;
  }
  std::uint64_t taken = 0;
  const auto t0 = Clock::now();
  const auto end =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    auto n = port->receive_batch(
        [&](const bloccs::MessageView& m) {
          g_sink.fetch_xor(read_all(m.payload.data(), m.payload.size()), std::memory_order_relaxed);
        },
        1024, Clock::now() + std::chrono::milliseconds(100));
    if (n) taken += *n;
  }
  const double rate = taken / std::chrono::duration<double>(Clock::now() - t0).count();
  stop->v.store(1);
  // Drained until the child is gone, so that its last push (parked on a full port) returns.
  while (waitpid(kid, nullptr, WNOHANG) == 0)
    (void)port->try_receive_batch([](const bloccs::MessageView&) {}, 4096);
  return rate;
}

// ---- the peers, through the suite's transports ----------------------------------------------

constexpr const char* kPeers[] = {"boost-mq", "posix-mq", "uds", "pipe", "zmq-ipc"};
constexpr std::size_t kPeerCount = std::size(kPeers);
static_assert(std::string_view(kPeers[0]) == "boost-mq", "the streaming target reads it at 0");

// The parent sends `size` bytes on one channel; a child pinned to CPU 1 receives them (copied
// out by the transport), reads every byte and answers 8 bytes on another. p50.. of `n` after a
// warm-up; p50 0 and `why` set if the transport cannot carry the size or anything failed.
Percentiles peer_round_trip(const char* peer, const std::string& ns, std::size_t size,
                            std::size_t n, unsigned index, std::string& why) {
  const bloccs::bench::Transport* t = bloccs::bench::find_transport(peer);
  const std::string name = "dp-" + std::to_string(index);
  auto ping = t->make_channel({name + "-a", ns, size, 4, 1});
  auto pong = t->make_channel({name + "-b", ns, 8, 4, 1});
  if (!ping || !pong) {
    why = !ping ? ping.error().message : pong.error().message;
    return {0, 0, 0, 0};
  }
  const std::size_t warm = std::min<std::size_t>(n / 2, 64);
  // Named queues exist once their receiver made them: each side opens its receiver, says so,
  // and opens its sender only once the other side's receiver is there.
  constexpr std::size_t kWhy = 512;  // the echo process's error, if it has one
  Shared* opened = shared_area(kWhy);
  auto wait_for = [](Line& l, std::uint64_t at_least) {
    for (const auto until = Clock::now() + std::chrono::seconds(10); l.v.load() < at_least;)
      if (Clock::now() > until) return false;
    return true;
  };
  std::fflush(nullptr);
  const pid_t kid = fork();
  if (kid == 0) {
    pin(1);
    auto rx = (*ping)->open_receiver();
    if (!rx) {
      std::snprintf(reinterpret_cast<char*>(opened->buf), kWhy, "%s", rx.error().message.c_str());
      opened->ping.v.store(9);
      _exit(2);
    }
    opened->ping.v.store(1);
    if (!wait_for(opened->pong, 1)) _exit(2);
    auto tx = (*pong)->open_sender();
    if (!tx) _exit(2);
    opened->ping.v.store(2);  // both ends open: the names may go
    std::vector<std::byte> in(size), answer(8);
    for (std::size_t i = 0; i < n + warm; ++i) {
      if (!(*rx)->receive(in)) _exit(3);
      g_sink.fetch_xor(read_all(in.data(), size), std::memory_order_relaxed);
      if (!(*tx)->send(answer)) _exit(4);
    }
    _exit((*tx)->finish() ? 0 : 5);
  }
  pin(0);
  auto failed = [&](std::string what) {
    why = std::move(what);
    kill(kid, SIGKILL);
    waitpid(kid, nullptr, 0);
    munmap(opened, sizeof(Shared) + kWhy);
    return Percentiles{0, 0, 0, 0};
  };
  auto rx = (*pong)->open_receiver();
  opened->pong.v.store(1);
  if (!rx) return failed(rx.error().message);
  if (!wait_for(opened->ping, 1)) return failed("its echo process did not open its end");
  if (opened->ping.v.load() == 9) return failed(reinterpret_cast<const char*>(opened->buf));
  auto tx = (*ping)->open_sender();
  if (!tx) return failed(tx.error().message);
  if (!wait_for(opened->ping, 2)) return failed("its echo process did not open its sender");
  (*ping)->unlink_names();  // every end is open (transport.hpp, step 4)
  (*pong)->unlink_names();
  std::vector<std::byte> out(size), back(8);
  std::vector<double> samples;
  samples.reserve(n);
  for (std::size_t i = 0; i < n + warm; ++i) {
    const auto t0 = Clock::now();
    std::memset(out.data(), static_cast<int>(i), size);  // written into the sender's buffer
    if (bloccs::Status st = (*tx)->send(out); !st) return failed(st.error().message);
    if (bloccs::Status st = (*rx)->receive(back); !st) return failed(st.error().message);
    if (i >= warm)
      samples.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  int status = 0;
  waitpid(kid, &status, 0);
  munmap(opened, sizeof(Shared) + kWhy);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    why = "its echo process failed";
    return {0, 0, 0, 0};
  }
  return percentiles(samples);
}

// Messages per second a peer streams at `size` from one pusher process to a consumer that
// copies each out and reads it (scenarios.hpp's streaming), sized by a probe to about
// `seconds`; 0 and `why` set if it cannot carry the size.
double peer_stream(const char* peer, const std::string& ns, std::size_t size, double seconds,
                   unsigned& index, std::string& why) {
  const bloccs::bench::Transport* t = bloccs::bench::find_transport(peer);
  bloccs::bench::StreamPlan plan{ns, "", size, 1, 0, size <= 4096 ? 256u : 4u, {}, 1};
  auto once = [&](std::uint64_t messages) -> double {
    plan.name = "ds-" + std::to_string(index++);
    plan.per_pusher = messages;
    auto r = bloccs::bench::measure_stream(*t, plan);
    if (!r) {
      why = r.error().message;
      return 0;
    }
    return r->msgs_per_s();
  };
  // The probe moves about 4 MiB, or 200 messages.
  const double probe = once(std::max<std::uint64_t>(200, (4u << 20) / size));
  if (probe == 0) return 0;
  return once(static_cast<std::uint64_t>(std::clamp(probe * seconds, 20.0, 50'000'000.0)));
}

// The round trips' p50 by size as a data file and a gnuplot script for a log-log plot. A row:
// size, floor-touch, bloccs-loan, bloccs-copy, iceoryx-loan, then the peers (0: not measured).
using PlotRow = std::array<double, 5 + kPeerCount>;
bool write_plot(const std::string& dir, const std::vector<PlotRow>& rows, bool with_iceoryx) {
  std::FILE* dat = std::fopen((dir + "/rtt-by-size.dat").c_str(), "w");
  std::FILE* gp = std::fopen((dir + "/rtt-by-size.gp").c_str(), "w");
  if (!dat || !gp) {
    std::fprintf(stderr, "bloccs-bench-data-path: cannot write the plot in %s: %s\n", dir.c_str(),
                 std::strerror(errno));
    if (dat) std::fclose(dat);
    if (gp) std::fclose(gp);
    return false;
  }
  std::fprintf(dat, "# bytes floor-touch bloccs-loan bloccs-copy iceoryx-loan");
  for (const char* peer : kPeers) std::fprintf(dat, " %s", peer);
  std::fprintf(dat, " (p50, ns; NaN: not measured)\n");
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      const bool none = r[i] == 0 || (i == 4 && !with_iceoryx);
      std::fprintf(dat, i ? (none ? " NaN" : " %.0f") : "%.0f", r[i]);
    }
    std::fprintf(dat, "\n");
  }
  std::fprintf(gp,
               "# gnuplot rtt-by-size.gp, in this directory: draws rtt-by-size.png\n"
               "set terminal pngcairo noenhanced size 1000,650 font \"Sans,10\"\n"
               "set output \"rtt-by-size.png\"\n"
               "set title \"Round trip p50 by message size (write it, read every byte, answer 8 "
               "bytes)\"\n"
               "set logscale xy\nset grid\nset key outside right\n"
               "set xlabel \"message bytes\"\nset ylabel \"round trip p50 (ns)\"\n"
               "set xtics (\"64\" 64, \"512\" 512, \"4K\" 4096, \"64K\" 65536, \"1M\" "
               "1048576, \"4M\" 4194304)\n"
               "plot \"rtt-by-size.dat\" using 1:2 with linespoints dt 2 lw 2 title "
               "\"floor-touch\", \\\n"
               "     \"\" using 1:3 with linespoints lw 3 title \"bloccs-loan\", \\\n"
               "     \"\" using 1:4 with linespoints lw 3 title \"bloccs-copy\"");
  if (with_iceoryx)
    std::fprintf(gp, ", \\\n     \"\" using 1:5 with linespoints lw 2 title \"iceoryx-loan\"");
  for (std::size_t i = 0; i < kPeerCount; ++i)
    std::fprintf(gp, ", \\\n     \"\" using 1:%zu with linespoints lw 1 title \"%s\"", 6 + i,
                 kPeers[i]);
  std::fprintf(gp, "\n");
  std::fclose(dat);
  std::fclose(gp);
  return true;
}

const char* verdict(bool ok) {
  return ok ? "PASS" : "MISS";
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, with_iceoryx = false;
  std::string plot_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--iceoryx") {
      with_iceoryx = true;
    } else if (arg == "--plot" && i + 1 < argc) {
      plot_dir = argv[++i];
    } else {
      std::fprintf(stderr,
                   "bloccs-bench-data-path: unknown option '%s'; use [--quick] [--iceoryx] "
                   "[--plot DIR]\n",
                   argv[i]);
      return 2;
    }
  }
  std::vector<PlotRow> by_size;
  // iceoryx's daemon for the run. Static: stopped, and its directory removed, on every way out
  // of this process, std::exit included.
  static std::optional<bloccs::bench::RouDi> roudi;
  if (with_iceoryx) {
    roudi.emplace();
    if (const std::string error = roudi->start(); !error.empty()) {
      std::fprintf(stderr, "bloccs-bench-data-path: %s\n", error.c_str());
      return 1;
    }
  }
  unsigned iox_index = 0, peer_index = 0;
  // Per size, each peer's best round trip; where it cannot carry the size, why.
  std::vector<std::array<Percentiles, kPeerCount>> peer_rows;
  std::array<std::string, kPeerCount> peer_why;
  const char* env_ns = std::getenv("BLOCCS_NAMESPACE");  // the test suite names one
  const std::string ns = env_ns && *env_ns ? env_ns : "bench-dp-" + std::to_string(getpid());
  const unsigned rounds = quick ? 1 : 3;
  std::printf("round trips (ns; p50 / p99 / p99.9 / max; the best p50 of %u alternating rounds)\n",
              rounds);
  std::printf("%8s  %-32s %-32s %-32s %12s  %s%s\n", "size", "floor-touch", "bloccs-loan",
              "bloccs-copy", "floor-memcpy", "loan/touch  loan/copy",
              with_iceoryx ? "  iceoryx-loan (p50 / p99 / p99.9 / max)     loan/iceoryx" : "");
  // (the peers' round trips are printed below the table, and drawn in the plot)
  bool all_met = true;
  for (std::size_t size : {64u, 512u, 4096u, 65536u, 1u << 20, 4u << 20}) {
    const std::size_t n = iterations_for(size, quick);
    Percentiles touch{1e18, 0, 0, 0}, loan{1e18, 0, 0, 0}, copy{1e18, 0, 0, 0}, iox{1e18, 0, 0, 0};
    std::array<Percentiles, kPeerCount> peers;
    peers.fill({1e18, 0, 0, 0});
    for (unsigned r = 0; r < rounds; ++r) {  // alternate within a round: the VM's placement moves
      if (auto p = floor_touch(size, n); p.p50 < touch.p50) touch = p;
      if (auto p = bloccs_round_trip(ns, size, n, true); p.p50 < loan.p50) loan = p;
      if (auto p = bloccs_round_trip(ns, size, n, false); p.p50 < copy.p50) copy = p;
      for (std::size_t i = 0; i < kPeerCount; ++i) {
        if (peers[i].p50 == 0) continue;  // it cannot carry this size
        std::string why;
        const auto p =
            peer_round_trip(kPeers[i], ns, size, std::min<std::size_t>(n, 2000), peer_index++, why);
        if (p.p50 == 0) {
          peers[i] = p;
          peer_why[i] = why;
        } else if (p.p50 < peers[i].p50) {
          peers[i] = p;
        }
      }
      if (!with_iceoryx) continue;
      std::string error;
      auto samples = bloccs::bench::iceoryx_round_trips(size, n, iox_index++, error);
      if (samples.empty()) {
        std::fprintf(stderr, "bloccs-bench-data-path: %s\n", error.c_str());
        return 1;
      }
      if (auto p = percentiles(samples); p.p50 < iox.p50) iox = p;
    }
    PlotRow row{static_cast<double>(size), touch.p50, loan.p50, copy.p50,
                with_iceoryx ? iox.p50 : 0.0};
    for (std::size_t i = 0; i < kPeerCount; ++i) row[5 + i] = peers[i].p50;
    by_size.push_back(row);
    peer_rows.push_back(peers);
    const Percentiles mc = floor_memcpy(size, n);
    auto cell = [](const Percentiles& p) {
      char b[64];
      std::snprintf(b, sizeof b, "%.0f / %.0f / %.0f / %.0f", p.p50, p.p99, p.p999, p.max);
      return std::string(b);
    };
    std::printf("%8zu  %-32s %-32s %-32s %12.0f  %5.2fx      %5.2fx", size, cell(touch).c_str(),
                cell(loan).c_str(), cell(copy).c_str(), mc.p50, loan.p50 / touch.p50,
                loan.p50 / copy.p50);
    if (with_iceoryx) std::printf("  %-42s %5.2fx", cell(iox).c_str(), loan.p50 / iox.p50);
    std::printf("\n");
    if (with_iceoryx && size == 64) {
      const double best = std::min(loan.p50, copy.p50);
      std::printf("          target 64 B p50 >= 8x below iceoryx's: %s (%.1fx below)\n",
                  verdict(iox.p50 >= 8 * best), iox.p50 / best);
    }
    if (with_iceoryx && size >= (1u << 20)) {
      const bool beats_iceoryx = loan.p50 <= iox.p50;
      all_met = all_met && beats_iceoryx;
      std::printf("          target loan no slower than iceoryx's loan: %s (%.2fx)\n",
                  verdict(beats_iceoryx), loan.p50 / iox.p50);
    }
    if (size >= (1u << 20)) {
      const bool near_floor = loan.p50 <= 1.2 * touch.p50, half_copy = loan.p50 <= 0.5 * copy.p50;
      all_met = all_met && near_floor && half_copy;
      std::printf(
          "          target loan <= 1.2x floor-touch: %s (%.2fx); loan <= 0.5x copy: %s (%.2fx)\n",
          verdict(near_floor), loan.p50 / touch.p50, verdict(half_copy), loan.p50 / copy.p50);
    }
  }

  std::printf(
      "\nthe peers' round trips (ns, p50; the same rounds; each copies in and out its own way)\n");
  std::printf("%8s", "size");
  for (const char* peer : kPeers) std::printf("  %10s", peer);
  std::printf("   bloccs-copy / best peer   bloccs-loan / best peer\n");
  for (std::size_t s = 0; s < peer_rows.size(); ++s) {
    double best = 1e18;
    std::printf("%8.0f", by_size[s][0]);
    for (const Percentiles& p : peer_rows[s]) {
      if (p.p50 == 0) {
        std::printf("  %10s", "-");
        continue;
      }
      std::printf("  %10.0f", p.p50);
      best = std::min(best, p.p50);
    }
    if (best < 1e18)
      std::printf("   %.4fx                   %.4fx", by_size[s][3] / best, by_size[s][2] / best);
    std::printf("\n");
  }
  for (std::size_t i = 0; i < kPeerCount; ++i)
    if (!peer_why[i].empty()) std::printf("  %s, where '-': %s\n", kPeers[i], peer_why[i].c_str());

  const double secs = quick ? 0.1 : 0.5;
  double fs1 = 0, fs64 = 0, b1 = 0, b64 = 0, ix64 = 0;
  std::array<double, kPeerCount> peer64{};
  // iceoryx's streaming rate at `size`, or exits on an error (only with --iceoryx).
  auto iceoryx_rate = [&](std::size_t size) {
    std::string error;
    const double rate = bloccs::bench::iceoryx_stream(size, secs, iox_index++, error);
    if (rate == 0) {
      std::fprintf(stderr, "bloccs-bench-data-path: %s\n", error.c_str());
      std::exit(1);
    }
    return rate;
  };
  // The best of the rounds, per peer, at `size`; 0 where it cannot carry it.
  auto peer_rates = [&](std::size_t size, std::array<double, kPeerCount>& best) {
    for (std::size_t i = 0; i < kPeerCount; ++i) {
      std::string why;
      best[i] = std::max(best[i], peer_stream(kPeers[i], ns, size, secs, peer_index, why));
    }
  };
  for (unsigned r = 0; r < rounds; ++r) {
    fs1 = std::max(fs1, floor_stream(1, secs));
    fs64 = std::max(fs64, floor_stream(64, secs));
    b1 = std::max(b1, bloccs_stream(ns, 64, Push::one, secs));
    b64 = std::max(b64, bloccs_stream(ns, 64, Push::batch, secs));
    if (with_iceoryx) ix64 = std::max(ix64, iceoryx_rate(64));
    peer_rates(64, peer64);
  }
  std::printf("\nstreaming 64 B (M msgs/s, the best of %u alternating rounds)\n", rounds);
  std::printf(
      "  floor-stream %.1f   floor-stream-64 %.1f   bloccs-spsc %.1f   bloccs-spsc-batch %.1f",
      fs1 / 1e6, fs64 / 1e6, b1 / 1e6, b64 / 1e6);
  if (with_iceoryx)
    std::printf("   iceoryx-loan %.1f (bloccs-spsc %.2fx, batch %.2fx)", ix64 / 1e6, b1 / ix64,
                b64 / ix64);
  std::printf("\n ");
  // The target is against the peers that cross the kernel per message; boost-mq is a
  // shared-memory queue itself, so it is printed beside them but judged apart.
  double best_peer64 = 0, best_syscall64 = 0;
  for (std::size_t i = 0; i < kPeerCount; ++i) {
    std::printf("  %s %.2f", kPeers[i], peer64[i] / 1e6);
    best_peer64 = std::max(best_peer64, peer64[i]);
    if (std::string_view(kPeers[i]) != "boost-mq")
      best_syscall64 = std::max(best_syscall64, peer64[i]);
  }
  std::printf("   (bloccs-spsc %.1fx the best, batch %.1fx)\n", b1 / best_peer64,
              b64 / best_peer64);
  std::printf("  target bloccs-spsc >= 0.6x floor-stream: %s (%.2fx)\n", verdict(b1 >= 0.6 * fs1),
              b1 / fs1);
  std::printf("  target bloccs-spsc-batch >= 0.3x floor-stream-64: %s (%.2fx)\n",
              verdict(b64 >= 0.3 * fs64), b64 / fs64);
  std::printf("  target bloccs-spsc-batch >= 10x the best system-call peer: %s (%.1fx; "
              "boost-mq, shared memory: %.1fx)\n",
              verdict(b64 >= 10 * best_syscall64), b64 / best_syscall64, b64 / peer64[0]);
  std::printf("  batch / single: %.2fx\n", b64 / b1);

  std::printf("\nstreaming from 512 B (GB/s at a consumer reading every byte, best of %u)\n",
              rounds);
  for (std::size_t size : {512u, 4096u, 65536u, 1u << 20, 4u << 20}) {
    double one = 0, loaned = 0, ix = 0;
    std::array<double, kPeerCount> peer{};
    for (unsigned r = 0; r < rounds; ++r) {
      one = std::max(one, bloccs_stream(ns, size, Push::one, secs) * size);
      loaned = std::max(loaned, bloccs_stream(ns, size, Push::loan, secs) * size);
      if (with_iceoryx && size <= (1u << 20)) ix = std::max(ix, iceoryx_rate(size) * size);
      peer_rates(size, peer);
    }
    const double mc = size / (floor_memcpy(size, 2000).p50 * 1e-9);
    std::printf(
        "  %8zu B  push %.2f  loan %.2f  floor-memcpy %.2f   target >= 0.7x memcpy: %s "
        "(push %.2fx, loan %.2fx)",
        size, one / 1e9, loaned / 1e9, mc / 1e9, verdict(std::max(one, loaned) >= 0.7 * mc),
        one / mc, loaned / mc);
    if (ix > 0) std::printf("   iceoryx-loan %.2f (loan %.2fx)", ix / 1e9, loaned / ix);
    std::printf("\n            ");
    for (std::size_t i = 0; i < kPeerCount; ++i) {
      if (peer[i] == 0)
        std::printf("  %s -", kPeers[i]);
      else
        std::printf("  %s %.2f", kPeers[i], peer[i] * size / 1e9);
    }
    std::printf("\n");
  }
  std::printf("\n1-4 MiB loan targets: %s\n", all_met ? "all met" : "not all met");
  if (!plot_dir.empty() && !write_plot(plot_dir, by_size, with_iceoryx)) return 1;
  roudi.reset();  // stops it: its shared memory goes with it
  return 0;       // whether the run worked, never whether a target was met: this machine is noisy
}
