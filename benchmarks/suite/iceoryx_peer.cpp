// SPDX-License-Identifier: Apache-2.0
#include "benchmarks/suite/iceoryx_peer.hpp"

#include "benchmarks/suite/touch.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>
#include <thread>

#include "benchmarks/suite/touch.hpp"
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"

namespace bloccs::bench {
namespace {

using Clock = std::chrono::steady_clock;

// RouDi's memory: a pool per size class, each chunk the payload plus room for iceoryx's chunk
// header. Enough for a subscriber's queue of streamed messages in flight (kStreamQueue, fewer
// for the large ones) and the round trips' one each way.
constexpr const char* kRouDiConfig = R"([general]
version = 1

[[segment]]

[[segment.mempool]]
size = 128
count = 1024

[[segment.mempool]]
size = 1024
count = 256

[[segment.mempool]]
size = 8192
count = 256

[[segment.mempool]]
size = 69632
count = 64

[[segment.mempool]]
size = 1052672
count = 8

[[segment.mempool]]
size = 4198400
count = 8
)";

iox::capro::ServiceDescription service(const char* event, unsigned index) {
  const std::string instance = std::to_string(index);
  return {"bloccs-bench", iox::capro::IdString_t(iox::cxx::TruncateToCapacity, instance.c_str()),
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, event)};
}

void init_runtime(const char* role, unsigned index) {
  // Warnings and errors only: its default prints every registration.
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                           iox::log::LogLevelOutput::kHideLogLevel);
  const std::string name = std::string("bloccs-bench-") + role + "-" + std::to_string(index) + "-" +
                           std::to_string(getpid());
  iox::runtime::PoshRuntime::initRuntime(
      iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
}

iox::popo::PublisherOptions publisher_options() {
  iox::popo::PublisherOptions o;
  o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;  // lose nothing
  return o;
}
iox::popo::SubscriberOptions subscriber_options(std::uint64_t queue = 4) {
  iox::popo::SubscriberOptions o;
  o.queueCapacity = queue;
  o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
  return o;
}

// Waits until `pub` has its subscriber and `sub` its publisher (RouDi connects them).
bool connected(iox::popo::UntypedPublisher& pub, iox::popo::UntypedSubscriber& sub) {
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (!pub.hasSubscribers() || sub.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Spins on take() until a chunk arrives, bounded; nullptr at the bound.
const void* take_spinning(iox::popo::UntypedSubscriber& sub) {
  const auto end = Clock::now() + std::chrono::seconds(10);
  for (unsigned i = 0;; ++i) {
    auto got = sub.take();
    if (!got.has_error()) return got.value();
    if ((i & 1023) == 0 && Clock::now() > end) return nullptr;
    __builtin_ia32_pause();
  }
}

int echo(std::size_t size, std::size_t total, unsigned index) {
  pin(1);
  init_runtime("echo", index);
  iox::popo::UntypedSubscriber sub(service("ping", index), subscriber_options());
  iox::popo::UntypedPublisher pub(service("pong", index), publisher_options());
  if (!connected(pub, sub)) return 3;
  for (std::size_t i = 0; i < total; ++i) {
    const void* chunk = take_spinning(sub);
    if (!chunk) return 4;
    g_sink.fetch_xor(read_all(chunk, size), std::memory_order_relaxed);  // read in place
    sub.release(chunk);
    auto answer = pub.loan(8);
    if (answer.has_error()) return 5;
    std::memset(answer.value(), 0, 8);
    pub.publish(answer.value());
  }
  return 0;
}

int ping(std::size_t size, std::size_t n, std::size_t warm, unsigned index, double* samples) {
  pin(0);
  init_runtime("ping", index);
  iox::popo::UntypedPublisher pub(service("ping", index), publisher_options());
  iox::popo::UntypedSubscriber sub(service("pong", index), subscriber_options());
  if (!connected(pub, sub)) return 3;
  for (std::size_t i = 0; i < n + warm; ++i) {
    const auto t0 = Clock::now();
    auto chunk = pub.loan(static_cast<std::uint32_t>(size));
    if (chunk.has_error()) return 4;
    std::memset(chunk.value(), static_cast<int>(i), size);  // written once, in place
    pub.publish(chunk.value());
    const void* answer = take_spinning(sub);
    if (!answer) return 5;
    sub.release(answer);
    if (i >= warm)
      samples[i - warm] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  }
  return 0;
}

// The child leaves with exit(), not _exit(): the runtime's destructor unregisters it from
// RouDi, which otherwise waits for it when it stops (and, killed meanwhile, leaves its shared
// memory behind).
// ---- streaming: a publisher loans and publishes as fast as it can, the subscriber takes
// every chunk, reads every byte in place and releases it.

struct StreamBoard {
  std::atomic<int> ready{0};  // each side adds 1 once connected
  std::atomic<int> go{0}, stop{0}, producer_done{0};
  std::atomic<std::uint64_t> taken{0};
  std::atomic<std::int64_t> elapsed_ns{0};
};

// A queue deep enough to stream small messages, within what the pools hold of large ones.
std::uint64_t stream_queue(std::size_t size) {
  return size <= 8000 ? 128 : size <= 65536 ? 32 : 4;
}

int stream_consumer(std::size_t size, unsigned index, StreamBoard* b) {
  pin(0);
  init_runtime("sink", index);
  iox::popo::UntypedSubscriber sub(service("stream", index),
                                   subscriber_options(stream_queue(size)));
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (sub.getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
    if (Clock::now() > end) return 3;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  b->ready.fetch_add(1);
  while (b->go.load() == 0) __builtin_ia32_pause();
  const auto t0 = Clock::now();
  std::uint64_t n = 0;
  while (b->stop.load(std::memory_order_relaxed) == 0) {
    auto got = sub.take();
    if (got.has_error()) {
      __builtin_ia32_pause();
      continue;
    }
    g_sink.fetch_xor(read_all(got.value(), size), std::memory_order_relaxed);  // in place
    sub.release(got.value());
    ++n;
  }
  b->elapsed_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  b->taken.store(n);
  // Drained until the producer is gone: it may wait on our full queue.
  while (b->producer_done.load() == 0) {
    auto got = sub.take();
    if (!got.has_error()) sub.release(got.value());
  }
  return 0;
}

int stream_producer(std::size_t size, unsigned index, StreamBoard* b) {
  pin(1);
  init_runtime("source", index);
  iox::popo::UntypedPublisher pub(service("stream", index), publisher_options());
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (!pub.hasSubscribers()) {
    if (Clock::now() > end) return 3;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  b->ready.fetch_add(1);
  while (b->go.load() == 0) __builtin_ia32_pause();
  while (b->stop.load(std::memory_order_relaxed) == 0) {
    auto chunk = pub.loan(static_cast<std::uint32_t>(size));
    if (chunk.has_error()) {  // every chunk of the pool in flight: wait for one back
      __builtin_ia32_pause();
      continue;
    }
    std::memset(chunk.value(), 1, size);  // written once, in place
    pub.publish(chunk.value());
  }
  b->producer_done.store(1);
  return 0;
}

pid_t fork_running(int (*body)(void*), void* arg) {
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::exit(body(arg));
  }
  return pid;
}

int exit_code(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

}  // namespace

std::string RouDi::start() {
  starter_ = getpid();
  char dir[] = "/tmp/bloccs-bench-iceoryx-XXXXXX";
  if (!mkdtemp(dir)) return std::string("iceoryx: mkdtemp in /tmp: ") + std::strerror(errno);
  dir_ = dir;
  const std::string config = dir_ + "/roudi_config.toml", log = dir_ + "/roudi.log";
  std::ofstream(config) << kRouDiConfig;
  pid_ = fork();
  if (pid_ < 0) return std::string("iceoryx: fork for iox-roudi: ") + std::strerror(errno);
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGINT);  // a bench that dies takes RouDi along, cleanly
    std::FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out) dup2(fileno(out), 2);
    execlp("iox-roudi", "iox-roudi", "-c", config.c_str(), "-m", "off", "-l", "info", "-k", "1",
           static_cast<char*>(nullptr));
    std::fprintf(stderr, "exec iox-roudi: %s\n", std::strerror(errno));
    _exit(127);
  }
  const auto end = Clock::now() + std::chrono::seconds(15);
  for (;;) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find("RouDi is ready for clients") != std::string::npos) return {};
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return "iceoryx: iox-roudi exited before it was ready (another RouDi running? is the "
             "iceoryx package installed?); its log:\n" +
             text.str();
    }
    if (Clock::now() > end) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return "iceoryx: iox-roudi was not ready within 15 s; its log:\n" + text.str();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

RouDi::~RouDi() {
  if (getpid() != starter_) return;  // a forked child's copy
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);  // RouDi keeps no file open in it
  }
  if (pid_ <= 0) return;
  kill(pid_, SIGINT);  // RouDi removes its shared memory and sockets on SIGINT
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (waitpid(pid_, nullptr, WNOHANG) == 0) {
    if (Clock::now() > end) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<double> iceoryx_round_trips(std::size_t size, std::size_t n, unsigned index,
                                        std::string& error) {
  const std::size_t warm = std::min<std::size_t>(n / 2, 64);
  void* area =
      mmap(nullptr, n * sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) {
    error = std::string("iceoryx: mmap: ") + std::strerror(errno);
    return {};
  }
  struct Job {
    std::size_t size, n, warm;
    unsigned index;
    double* samples;
  } job{size, n, warm, index, static_cast<double*>(area)};
  std::fflush(nullptr);  // the children leave with exit(): they must not print our buffers again
  const pid_t e = fork_running(
      [](void* j) {
        auto* p = static_cast<Job*>(j);
        return echo(p->size, p->n + p->warm, p->index);
      },
      &job);
  const pid_t p = fork_running(
      [](void* j) {
        auto* q = static_cast<Job*>(j);
        return ping(q->size, q->n, q->warm, q->index, q->samples);
      },
      &job);
  const int ping_code = exit_code(p);
  if (ping_code != 0) kill(e, SIGKILL);
  const int echo_code = exit_code(e);
  std::vector<double> samples;
  if (ping_code == 0 && echo_code == 0)
    samples.assign(job.samples, job.samples + n);
  else
    error = "iceoryx: the round trips of " + std::to_string(size) + " bytes failed (ping exit " +
            std::to_string(ping_code) + ", echo exit " + std::to_string(echo_code) +
            "; 3: never connected, 4/5: a loan or take failed)";
  munmap(area, n * sizeof(double));
  return samples;
}

double iceoryx_stream(std::size_t size, double seconds, unsigned index, std::string& error) {
  void* area =
      mmap(nullptr, sizeof(StreamBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) {
    error = std::string("iceoryx: mmap: ") + std::strerror(errno);
    return 0;
  }
  auto* board = new (area) StreamBoard;
  struct Job {
    std::size_t size;
    unsigned index;
    StreamBoard* board;
  } job{size, index, board};
  std::fflush(nullptr);  // the children leave with exit(): they must not print our buffers again
  const pid_t c = fork_running(
      [](void* j) {
        auto* p = static_cast<Job*>(j);
        return stream_consumer(p->size, p->index, p->board);
      },
      &job);
  const pid_t p = fork_running(
      [](void* j) {
        auto* q = static_cast<Job*>(j);
        return stream_producer(q->size, q->index, q->board);
      },
      &job);
  const auto end = Clock::now() + std::chrono::seconds(15);
  while (board->ready.load() < 2 && Clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const bool connected = board->ready.load() == 2;
  board->go.store(1);
  if (connected) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  board->stop.store(1);
  if (!connected) board->producer_done.store(1);  // a side that never connected ends the other
  const int pc = exit_code(p);
  board->producer_done.store(1);
  const int cc = exit_code(c);
  double rate = 0;
  if (connected && pc == 0 && cc == 0 && board->elapsed_ns.load() > 0)
    rate = double(board->taken.load()) / (double(board->elapsed_ns.load()) * 1e-9);
  else
    error = "iceoryx: streaming " + std::to_string(size) + "-byte messages failed (producer exit " +
            std::to_string(pc) + ", consumer exit " + std::to_string(cc) +
            (connected ? ")" : "; they never connected)");
  munmap(area, sizeof(StreamBoard));
  return rate;
}

}  // namespace bloccs::bench
