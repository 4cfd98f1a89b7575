// Cross-process round-trip latency: one sample per round trip between two processes pinned to
// different CPUs (the parent and a forked echo process), for each transport in the same run:
//   floor-spin   the parent stores a sequence number in one shared cache line; the echo spins
//                until it sees it and stores it back in another. Nothing can beat it: it is the
//                floor every ratio is taken against.
//   bloccs-spsc  a 64-byte message to the echo through an SPSC ring the echo owns, and back
//                through an SPSC ring the parent owns; each side pushes into the other's ring.
// After Google Benchmark's report, prints each transport's p50/p99 beside the floor's and
// whether bloccs meets its latency target. The target is informational: the exit code is 0
// whatever the numbers, so noise never fails CI.
//
//   BLOCCS_BENCH_ROUNDTRIPS=20000 bloccs-bench-pingpong   # short run (CI); default 200000
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "benchmarks/percentiles.hpp"
#include "lockfree/cpu_relax.hpp"
#include "lockfree/ring.hpp"
#include "shm/segment.hpp"

namespace {

namespace lf = bloccs::lockfree;
using bloccs::Errc;
using bloccs::Error;
using bloccs::Status;
using bloccs::bench::Percentiles;

constexpr const char* kFloor = "floor-spin";
constexpr const char* kSpsc = "bloccs-spsc";
constexpr std::size_t kMessageBytes = 64;
constexpr int kWarmupRoundTrips = 10'000;
constexpr std::uint64_t kDefaultRoundTrips = 200'000;  // per transport, over all rounds
constexpr int kRounds = 5;
constexpr std::uint64_t kMaxRoundTrips = 100'000'000;  // 800 MB of samples
constexpr std::uint64_t kStop = ~std::uint64_t{0};     // the sequence number that ends an echo
// A waiting side checks this often that its peer is still there, so that a crash on one side
// ends the run instead of hanging it.
constexpr auto kPeerCheckInterval = std::chrono::milliseconds(100);
constexpr unsigned kSpinsPerPeerCheck = 1u << 20;  // tens of ms of pause instructions

struct Run {
  int parent_cpu = -1;  // -1: not pinned
  int echo_cpu = -1;
  bool one_cpu = false;  // only one CPU to run on: spinning against a peer would time out slices
  std::map<std::string, std::vector<Percentiles>> results;  // by transport, one per round
};

void skip(benchmark::State& state, const std::string& what, const Error& e) {
  const std::string msg = what + ": " + bloccs::errc_name(e.code) + ": " + e.message;
  state.SkipWithError(msg.c_str());
}

Error peer_gone() {
  return {Errc::owner_dead, "the other process exited (see its message above, if any)"};
}

bool pin(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(pid, sizeof set, &set) == 0;
}

// ---- the echo process ---------------------------------------------------------------------------

// One end of the socketpair between the parent and its echo. The echo sends one byte once it is
// set up; a hang-up tells either side that the other exited or gave up.
struct Link {
  int fd = -1;
  bool peer_gone() const {
    pollfd p{fd, 0, 0};  // POLLHUP and POLLERR are reported without being asked for
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
  }
  bool send_ready() const {
    const char byte = 1;
    return write(fd, &byte, 1) == 1;
  }
};

// Forks an echo process pinned to `cpu` (if >= 0) that runs body(Link) and _exits with its
// result. The child never unwinds into the caller's frames: it holds copies of the parent's
// objects, and their destructors (a Ring unlinks its segment) must run only in their owner.
class Peer {
 public:
  template <class Body>
  Peer(int cpu, Body body) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      // Ctrl-C reaches the whole process group: let only the parent die of it, so that this
      // process sees the hang-up and cleans up after both (see echo_bloccs).
      std::signal(SIGINT, SIG_IGN);
      int code = 1;
      try {
        code = body(Link{fds[1]});
      } catch (...) {
      }
      _exit(code);
    }
    close(fds[1]);
    if (pid_ < 0) {
      close(fds[0]);
      return;
    }
    link_.fd = fds[0];
    if (cpu >= 0 && !pin(pid_, cpu))
      std::fprintf(stderr, "bloccs-bench-pingpong: echo runs unpinned: CPU %d: %s\n", cpu,
                   std::strerror(errno));
  }
  ~Peer() { stop(); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  // Blocks until the echo is set up. An error if it could not start or exited first.
  Status wait_ready() {
    if (link_.fd < 0) return Error{Errc::system_error, "cannot start the echo process (fork)"};
    char byte = 0;
    ssize_t n;
    do n = read(link_.fd, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1) return {};
    return Error{Errc::system_error, "the echo process exited before it was ready"};
  }

  bool gone() const { return link_.peer_gone(); }

  // Hangs up and waits for the echo to exit: its exit code, 128 + the signal that killed it, or
  // -1 if it never started.
  int stop() {
    if (link_.fd >= 0) close(std::exchange(link_.fd, -1));
    if (pid_ <= 0) return -1;
    int status = 0;
    pid_t r;
    do r = waitpid(pid_, &status, 0);
    while (r < 0 && errno == EINTR);
    pid_ = -1;
    if (r < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  Link link_;
};

// ---- the round trip, once per benchmark iteration ----------------------------------------------

// Warms up, then times `round_trip(seq)` once per iteration and reports the percentiles as
// counters (ns) and into the run's summary.
template <class RoundTrip>
void measure(benchmark::State& state, Run& run, const char* transport, RoundTrip round_trip) {
  std::uint64_t seq = 0;
  // Fault in every page, train the branch predictors, and let both CPUs leave their idle states.
  for (int i = 0; i < kWarmupRoundTrips; ++i) {
    if (auto st = round_trip(++seq); !st) return skip(state, "warm-up", st.error());
  }
  std::vector<std::uint64_t> samples;
  samples.reserve(static_cast<std::size_t>(state.max_iterations));
  for (auto _ : state) {
    const auto start = lf::Clock::now();
    const Status st = round_trip(++seq);
    const auto end = lf::Clock::now();
    if (!st) {
      skip(state, "round trip", st.error());
      break;
    }
    samples.push_back(static_cast<std::uint64_t>(std::chrono::nanoseconds(end - start).count()));
  }
  if (state.error_occurred()) return;
  const Percentiles p = bloccs::bench::percentiles(std::move(samples));
  state.counters["p50_ns"] = static_cast<double>(p.p50);
  state.counters["p90_ns"] = static_cast<double>(p.p90);
  state.counters["p99_ns"] = static_cast<double>(p.p99);
  state.counters["p99.9_ns"] = static_cast<double>(p.p999);
  state.counters["max_ns"] = static_cast<double>(p.max);
  run.results[transport].push_back(p);
}

void join(benchmark::State& state, Peer& peer) {
  if (peer.stop() != 0 && !state.error_occurred())
    state.SkipWithError("the echo process failed; see its message above");
}

// ---- floor-spin ---------------------------------------------------------------------------------

// One anonymous MAP_SHARED mapping, made before fork so both processes see it at one address.
// Each word has a cache line of its own: a store to one never invalidates the line the other
// side spins on.
//   0        8                64       72               128
//   +--------+----------------+--------+----------------+
//   | ping   |                | pong   |                |
//   +--------+----------------+--------+----------------+
struct FloorLines {
  alignas(64) std::atomic<std::uint64_t> ping;  // the parent's sequence number
  alignas(64) std::atomic<std::uint64_t> pong;  // the echo's copy of it
};
static_assert(sizeof(FloorLines) == 128);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

struct Unmap {
  void operator()(FloorLines* p) const { munmap(p, sizeof *p); }
};

int echo_floor(FloorLines& lines, Link link) {
  if (!link.send_ready()) return 1;
  std::uint64_t last = 0;
  for (unsigned spins = 1;; ++spins) {
    // acquire: pairs with the parent's release store of ping.
    const std::uint64_t seq = lines.ping.load(std::memory_order_acquire);
    if (seq == kStop) return 0;
    if (seq != last) {
      // release: a real hand-off publishes what came before it (free on x86, as is acquire).
      lines.pong.store(seq, std::memory_order_release);
      last = seq;
      continue;
    }
    lf::cpu_relax();
    if (spins % kSpinsPerPeerCheck == 0 && link.peer_gone()) return 1;
  }
}

void bm_floor_spin(benchmark::State& state, Run& run) {
  if (run.one_cpu) return state.SkipWithError("needs two CPUs: on one, it measures the scheduler");
  void* mem =
      mmap(nullptr, sizeof(FloorLines), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return skip(state, "mmap", {Errc::system_error, std::strerror(errno)});
  std::unique_ptr<FloorLines, Unmap> lines(new (mem) FloorLines{});
  Peer peer(run.echo_cpu, [&lines](Link link) { return echo_floor(*lines, link); });
  if (auto st = peer.wait_ready(); !st) return skip(state, "start echo", st.error());

  measure(state, run, kFloor, [&](std::uint64_t seq) -> Status {
    // release: pairs with the echo's acquire load of ping.
    lines->ping.store(seq, std::memory_order_release);
    for (unsigned spins = 1;; ++spins) {
      // acquire: pairs with the echo's release store of pong.
      if (lines->pong.load(std::memory_order_acquire) == seq) return {};
      lf::cpu_relax();
      if (spins % kSpinsPerPeerCheck == 0 && peer.gone()) return peer_gone();
    }
  });
  // release: as for every ping; the echo exits when it sees kStop.
  lines->ping.store(kStop, std::memory_order_release);
  join(state, peer);
}

// ---- bloccs-spsc --------------------------------------------------------------------------------

lf::RingOptions ring_options() {
  // One message is in flight per round trip, so neither side ever waits for space.
  return {.kind = lf::RingKind::spsc, .buffer = 64, .max_payload = kMessageBytes};
}

std::uint64_t sequence(std::span<const std::byte> message) {
  std::uint64_t seq;
  std::memcpy(&seq, message.data(), sizeof seq);
  return seq;
}

// Pops the next message, waiting at most until `slice_end` at a time so that a dead peer ends
// the wait instead of parking for ever. The caller keeps `slice_end` across calls: renewing it
// on every call would put a clock read on every round trip.
template <class Gone>
bloccs::Result<std::size_t> pop_watching(lf::Ring& ring, std::span<std::byte> out,
                                         lf::Deadline& slice_end, Gone gone) {
  for (;;) {
    auto n = ring.pop(out, slice_end);
    if (n || n.code() != Errc::timeout) return n;
    if (gone()) return peer_gone();
    slice_end = lf::Clock::now() + kPeerCheckInterval;
  }
}

int echo_bloccs(const std::string& ns, Link link) {
  auto fail = [](const char* what, const Error& e) {
    std::fprintf(stderr, "bloccs-bench-pingpong: echo: %s: %s: %s\n", what,
                 bloccs::errc_name(e.code), e.message.c_str());
    return 1;
  };
  const pid_t parent = getppid();
  auto ping = lf::Ring::create(ns, "ping", ring_options());
  if (!ping) return fail("create ring ping", ping.error());
  auto pong = lf::RingPusher::open(ns, "pong");  // the parent created it before fork
  if (!pong) return fail("open ring pong", pong.error());
  if (!link.send_ready()) return 1;

  std::array<std::byte, kMessageBytes> message{};
  lf::Deadline slice_end = lf::Clock::now() + kPeerCheckInterval;
  for (;;) {
    auto n = pop_watching(*ping, message, slice_end, [&] { return link.peer_gone(); });
    if (!n) {
      // A parent that was killed could not unlink its ring: do it for it.
      if (getppid() != parent) (void)bloccs::shm::Segment::remove(ns, "pong");
      return fail("pop", n.error());
    }
    if (sequence(message) == kStop) return 0;  // returning destroys ping: its segment is unlinked
    if (auto st = pong->push({message.data(), *n}); !st) return fail("push", st.error());
  }
}

void bm_bloccs_spsc(benchmark::State& state, Run& run) {
  const std::string ns = "bench-" + std::to_string(getpid());  // never collides with another run
  // Created before fork so the echo finds it at once. The echo inherits this handle but _exits
  // without destroying it, so only this process unlinks the segment.
  auto pong = lf::Ring::create(ns, "pong", ring_options());
  if (!pong) return skip(state, "create ring pong", pong.error());
  Peer peer(run.echo_cpu, [&ns](Link link) { return echo_bloccs(ns, link); });
  if (auto st = peer.wait_ready(); !st) return skip(state, "start echo", st.error());
  auto ping = lf::RingPusher::open(ns, "ping");
  if (!ping) return skip(state, "open ring ping", ping.error());

  std::array<std::byte, kMessageBytes> out{};
  std::array<std::byte, kMessageBytes> in{};
  lf::Deadline slice_end = lf::Clock::now() + kPeerCheckInterval;
  measure(state, run, kSpsc, [&](std::uint64_t seq) -> Status {
    std::memcpy(out.data(), &seq, sizeof seq);
    if (auto st = ping->push(out); !st) return st;
    auto n = pop_watching(*pong, in, slice_end, [&] { return peer.gone(); });
    if (!n) return std::move(n).error();
    if (*n != kMessageBytes || sequence(in) != seq)
      return Error{Errc::corrupt, "the echo sent back another message than it was sent"};
    return {};
  });
  if (!state.error_occurred()) {
    std::memcpy(out.data(), &kStop, sizeof kStop);
    if (auto st = ping->push(out); !st) skip(state, "push stop", st.error());
  }
  join(state, peer);  // before `pong` is destroyed, so the echo never pushes into a removed ring
  // An echo that crashed could not unlink its ring; it has exited now, so remove what it left.
  (void)bloccs::shm::Segment::remove(ns, "ping");
}

// ---- main ---------------------------------------------------------------------------------------

// BLOCCS_BENCH_ROUNDTRIPS if set, else the default; 0 if it is not a count in range.
std::uint64_t round_trips_from_env() {
  const char* s = std::getenv("BLOCCS_BENCH_ROUNDTRIPS");
  if (s == nullptr || *s == '\0') return kDefaultRoundTrips;
  if (*s < '0' || *s > '9') return 0;  // strtoull would take a sign or spaces
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(s, &end, 10);
  return errno == 0 && *end == '\0' && n <= kMaxRoundTrips ? n : 0;
}

// Pins this process to the first CPU it may use and picks the second for the echo (CPUs 0 and 1
// on a plain host). Without two CPUs, or if pinning fails, both run unpinned, with a warning.
void pick_cpus(Run& run) {
  cpu_set_t allowed;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  if (cpus.size() < 2) {
    std::fprintf(stderr, "bloccs-bench-pingpong: fewer than 2 CPUs; both processes share one\n");
    run.one_cpu = cpus.size() == 1;
    return;
  }
  if (!pin(0, cpus[0])) {
    std::fprintf(stderr, "bloccs-bench-pingpong: running unpinned: CPU %d: %s\n", cpus[0],
                 std::strerror(errno));
    return;
  }
  run.parent_cpu = cpus[0];
  run.echo_cpu = cpus[1];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Each round's p50/p99 of both transports and their ratios, then the median ratio over the
// rounds and the latency target. The machine is shared and its two vCPUs may move between
// physical cores during a run: a ratio is only taken between measurements of the same round.
void print_summary(const Run& run, std::uint64_t per_round) {
  const std::string cpus = run.echo_cpu < 0 ? "unpinned"
                                            : "CPUs " + std::to_string(run.parent_cpu) + " and " +
                                                  std::to_string(run.echo_cpu);
  std::printf("\nRound trips between two processes (%s), %zu-byte messages, %llu per round\n",
              cpus.c_str(), kMessageBytes, static_cast<unsigned long long>(per_round));
  std::printf("%-6s %15s %15s %15s %15s %12s %12s\n", "round", "floor p50 ns", "floor p99 ns",
              "spsc p50 ns", "spsc p99 ns", "p50 / floor", "p99 / floor");
  const auto floor = run.results.find(kFloor);
  const auto spsc = run.results.find(kSpsc);
  if (floor == run.results.end() || spsc == run.results.end()) {
    std::printf("target: not evaluated (needs both %s and %s in one run)\n", kFloor, kSpsc);
    return;
  }
  std::vector<double> p50s, p99s;
  for (std::size_t r = 0; r < std::min(floor->second.size(), spsc->second.size()); ++r) {
    const Percentiles& f = floor->second[r];
    const Percentiles& b = spsc->second[r];
    p50s.push_back(double(b.p50) / double(f.p50));
    p99s.push_back(double(b.p99) / double(f.p99));
    std::printf("%-6zu %15llu %15llu %15llu %15llu %10.2f x %10.2f x\n", r + 1,
                static_cast<unsigned long long>(f.p50), static_cast<unsigned long long>(f.p99),
                static_cast<unsigned long long>(b.p50), static_cast<unsigned long long>(b.p99),
                p50s.back(), p99s.back());
  }
  const double p50 = median(p50s), p99 = median(p99s);
  std::printf("%s p50 = %.2f x %s, p99 = %.2f x %s (median over %zu rounds)\n", kSpsc, p50, kFloor,
              p99, kFloor, p50s.size());
  std::printf("target (%s p50 <= 1.5 x %s p50 and p99 <= 2 x %s p99): %s\n", kSpsc, kFloor, kFloor,
              p50 <= 1.5 && p99 <= 2.0 ? "PASS" : "MISS");
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t round_trips = round_trips_from_env();
  if (round_trips == 0) {
    std::fprintf(stderr, "bloccs-bench-pingpong: BLOCCS_BENCH_ROUNDTRIPS must be 1 to %llu\n",
                 static_cast<unsigned long long>(kMaxRoundTrips));
    return 2;
  }
  Run run;
  pick_cpus(run);
  // Transports take turns, round after round, so that each ratio compares measurements taken
  // close together in time.
  const std::uint64_t per_round = std::max<std::uint64_t>(round_trips / kRounds, 1);
  auto add = [&](const char* name, int round, void (*fn)(benchmark::State&, Run&)) {
    const std::string label = std::string(name) + "/round:" + std::to_string(round);
    benchmark::RegisterBenchmark(label.c_str(), [fn, &run](benchmark::State& s) { fn(s, run); })
        ->Iterations(static_cast<benchmark::IterationCount>(per_round))
        ->UseRealTime();
  };
  for (int round = 1; round <= kRounds; ++round) {
    add(kFloor, round, bm_floor_spin);
    add(kSpsc, round, bm_bloccs_spsc);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary(run, per_round);
  return 0;
}
