// SPDX-License-Identifier: Apache-2.0
#include "tools/bloccs/supervisor.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "pipeline/node_block.hpp"
#include "tools/shmctl/inspect.hpp"

extern char** environ;

namespace bloccs::launcher {
namespace {

// How long a node may take from exec to its ports being up.
constexpr auto kStartLimit = std::chrono::seconds(10);
// The supervisor wakes at least this often (to restart, stop the next node, draw the status).
constexpr auto kTick = std::chrono::milliseconds(20);
// A stopping node gets its drain limit plus this before it is killed.
constexpr auto kStopSlack = std::chrono::seconds(2);

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return std::string("was killed by SIG") + (name ? name : std::to_string(sig).c_str());
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

sigset_t launcher_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void block_launcher_signals() {
  const sigset_t signals = launcher_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

struct Supervisor::Child {
  const NodeSpec* spec = nullptr;
  std::optional<shm::Segment> block_segment;
  shm::HeldLock maker_lock;  // the launcher made the block; after block_segment: goes first
  pipeline::NodeBlock* block = nullptr;
  pid_t pid = 0;
  enum class State { idle, starting, running, restart_pending, finished, gave_up } state =
      State::idle;
  std::uint32_t restarts = 0;
  Clock::time_point restart_at{}, started_at{}, kill_at{};
  bool stop_sent = false;
  bool killed = false;  // by us, at the end of its drain limit or on a second SIGINT

  bool live() const { return state == State::starting || state == State::running; }
  // Ends the node for good: the nodes that feed it stop waiting for its ports to come back.
  void end(State how) {
    state = how;
    // release: pairs with the acquire load of the nodes that feed it (pipeline/node.cpp).
    block->identity.over.store(1, std::memory_order_release);
  }
  bool over() const { return state == State::finished || state == State::gave_up; }
  const char* state_name() const {
    switch (state) {
      case State::idle: return "waiting";
      case State::starting: return "starting";
      case State::running: {
        // relaxed: a word for people (node_block.hpp).
        const auto s = static_cast<pipeline::NodeState>(
            block->identity.state.load(std::memory_order_relaxed));
        return s == pipeline::NodeState::draining ? "draining" : stop_sent ? "stopping" : "running";
      }
      case State::restart_pending: return "restarting";
      case State::finished: return killed ? "killed" : "done";
      case State::gave_up: return "failed";
    }
    return "?";
  }
};

Supervisor::Supervisor(PipelineSpec pipeline, RunOptions options)
    : pipeline_(std::move(pipeline)), options_(std::move(options)) {
  char id[17];
  std::snprintf(id, sizeof id, "%016llx",
                static_cast<unsigned long long>(std::mt19937_64{std::random_device{}()}()));
  run_id_ = id;
}

Supervisor::~Supervisor() = default;

void Supervisor::say(const std::string& line) const {
  std::fprintf(stderr, "bloccs: %s\n", line.c_str());
}

Status Supervisor::prepare() {
  for (const NodeSpec& spec : pipeline_.nodes) {
    auto c = std::make_unique<Child>();
    c->spec = &spec;
    const std::string name = pipeline::node_block_name(pipeline_.network, spec.id);
    auto seg = shm::Segment::create(options_.ns, name, shm::SegmentKind::node,
                                    sizeof(pipeline::NodeBlock));
    if (!seg) return std::move(seg).error();
    // Declared after `seg`: let go of before it is unmapped, whatever returns.
    auto maker = pipeline::make_node_block(*reinterpret_cast<pipeline::NodeBlock*>(seg->base()));
    if (!maker) return std::move(maker).error();
    if (auto st = seg->publish(); !st) {
      if (st.code() != Errc::already_exists) return st;
      return Error{Errc::already_exists, "node " + spec.id + " of network " + pipeline_.network +
                                             " already runs in namespace " + options_.ns +
                                             " (its block /dev/shm/" + seg->name() +
                                             " exists): stop that run, or use another namespace "
                                             "(--namespace)"};
    }
    c->block = reinterpret_cast<pipeline::NodeBlock*>(seg->base());
    c->block_segment.emplace(std::move(seg).value());
    c->maker_lock = std::move(maker).value();
    children_.push_back(std::move(c));
  }
  for (const NodeSpec* spec : pipeline_.sources_first())
    for (auto& c : children_)
      if (c->spec == spec) stop_order_.push_back(c.get());
  auto dead = DeadLetters::start(pipeline_, options_.ns, options_.dead_letter_file);
  if (!dead) return std::move(dead).error();
  dead_letters_ = std::move(dead).value();
  return {};
}

bool Supervisor::spawn(Child& c) {
  const NodeSpec& spec = *c.spec;
  // Everything the child needs is built before fork: after it, only exec-safe calls.
  std::vector<std::string> args;
  if (!spec.interpreter.empty()) args.push_back(spec.interpreter.string());  // a Python node
  args.push_back(spec.program.string());
  args.insert(args.end(), spec.args.begin(), spec.args.end());
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (!v.starts_with("BLOCCS_PIPELINE=") && !v.starts_with("BLOCCS_NODE=") &&
        !v.starts_with("BLOCCS_NAMESPACE=") && !v.starts_with("BLOCCS_DRAIN_LIMIT_MS=") &&
        !v.starts_with("BLOCCS_RUN_ID="))
      env.emplace_back(v);
  }
  env.push_back("BLOCCS_PIPELINE=" + pipeline_.file.string());
  env.push_back("BLOCCS_NODE=" + spec.id);
  env.push_back("BLOCCS_NAMESPACE=" + options_.ns);
  env.push_back("BLOCCS_DRAIN_LIMIT_MS=" + std::to_string(options_.drain_limit.count()));
  env.push_back("BLOCCS_RUN_ID=" + run_id_);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t launcher = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    say("cannot start node " + spec.id + ": fork: " + std::strerror(errno));
    return false;
  }
  if (pid == 0) {
    // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which stops the
    // nodes in order. If the launcher dies, the node is asked to stop (and drains).
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != launcher) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    const char* why = std::strerror(errno);
    const std::string msg = "bloccs: cannot run " + args[0] + " for node " + spec.id + ": " + why + "\n";
    (void)!write(2, msg.data(), msg.size());
    _exit(127);
  }
  c.pid = pid;
  c.state = Child::State::starting;
  c.started_at = Clock::now();
  c.stop_sent = false;
  // relaxed: a word for people.
  c.block->identity.restarts.store(c.restarts, std::memory_order_relaxed);
  return true;
}

void Supervisor::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    Child* c = nullptr;
    for (auto& child : children_)
      if (child->pid == pid && child->live()) c = child.get();
    if (!c) continue;
    c->pid = 0;
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (clean || c->killed || phase_ == Phase::killing) {
      c->end(Child::State::finished);
      if (!clean && !c->killed) c->killed = true;
      continue;
    }
    const std::string what = "node " + c->spec->id + " (pid " + std::to_string(pid) + ") " +
                             describe(status);
    if (signalled_) {  // a stop asked for by a signal restarts nothing
      c->end(Child::State::gave_up);
      failed_ = true;
      say(what + " while the pipeline stops on a signal: not restarting it");
      continue;
    }
    if (c->restarts >= pipeline_.restart.max_restarts) {
      c->end(Child::State::gave_up);
      failed_ = true;
      say(what + "; it was restarted " + std::to_string(c->restarts) +
          " times already (restart.max_restarts): giving up, stopping the pipeline");
      begin_stop();
      continue;
    }
    ++c->restarts;
    const RestartPolicy& r = pipeline_.restart;
    const double grown = static_cast<double>(r.base.count()) *
                         std::pow(r.factor, static_cast<double>(c->restarts - 1));
    const auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(
        std::min(grown, static_cast<double>(r.cap.count()))));
    c->restart_at = Clock::now() + delay;
    c->state = Child::State::restart_pending;
    say(what + "; restarting it in " + std::to_string(delay.count()) + " ms (restart " +
        std::to_string(c->restarts) + " of at most " + std::to_string(r.max_restarts) + ")");
  }
}

void Supervisor::restart_due() {
  const auto now = Clock::now();
  for (auto& c : children_) {
    if (c->state == Child::State::restart_pending && now >= c->restart_at && !spawn(*c)) {
      c->end(Child::State::gave_up);
      failed_ = true;
    }
    if (c->state == Child::State::starting) {
      // relaxed: words for people; a node sets `running` once its ports are up.
      const bool up =
          c->block->identity.pid.load(std::memory_order_relaxed) ==
              static_cast<std::uint32_t>(c->pid) &&
          c->block->identity.state.load(std::memory_order_relaxed) >=
              static_cast<std::uint32_t>(pipeline::NodeState::running);
      if (up) c->state = Child::State::running;
      else if (now - c->started_at > kStartLimit && !c->killed) {
        say("node " + c->spec->id + " did not start its ports within " +
            std::to_string(std::chrono::seconds(kStartLimit).count()) + " s; killing it");
        kill(c->pid, SIGKILL);  // reaped as a crash: restarted with backoff
      }
    }
  }
}

void Supervisor::stop_next() {
  const auto now = Clock::now();
  for (Child* c : stop_order_) {
    if (c->over()) continue;
    if (c->state == Child::State::running && !c->stop_sent) {
      // release: the node reads it (acquire) when the signal has made it stop.
      c->block->identity.stop_by.store(
          std::chrono::duration_cast<std::chrono::nanoseconds>(stop_by_.time_since_epoch()).count(),
          std::memory_order_release);
      kill(c->pid, SIGTERM);
      c->stop_sent = true;
      c->kill_at = stop_by_ + kStopSlack;
    } else if (c->state == Child::State::running && now >= c->kill_at && !c->killed) {
      say("node " + c->spec->id + " did not finish draining within the drain limit; killing it");
      c->killed = true;
      failed_ = true;
      kill(c->pid, SIGKILL);
    } else if (c->state == Child::State::idle) {
      c->end(Child::State::finished);  // never started
      continue;
    }
    return;  // one node at a time: the next starts once this one is done
  }
}

void Supervisor::begin_stop() {
  if (phase_ != Phase::running) return;
  phase_ = Phase::stopping;
  // One budget for the whole stop, however many nodes drain one after another.
  stop_by_ = Clock::now() + options_.drain_limit;
}

bool Supervisor::all_sources_done() const {
  bool any = false;
  for (const auto& c : children_) {
    if (!c->spec->is_source()) continue;
    any = true;
    if (!c->over()) return false;
  }
  return any;
}

bool Supervisor::all_done() const {
  for (const auto& c : children_)
    if (!c->over()) return false;
  return true;
}

Snapshot Supervisor::snapshot() const {
  Snapshot s;
  s.at = Clock::now();
  for (const auto& c : children_) {
    NodeView v;
    v.spec = c->spec;
    v.counters = c->block->counters.load();
    v.state = c->state_name();
    v.pid = static_cast<std::uint32_t>(c->pid);
    v.restarts = c->restarts;
    v.ports = read_ports(options_.ns, pipeline_, *c->spec);
    s.nodes.push_back(std::move(v));
  }
  if (dead_letters_) s.dead = dead_letters_->tally();
  if (options_.wires) s.wires = options_.wires(false);
  return s;
}

void Supervisor::cleanup() {
  dead_letters_.reset();  // drains and stops the dead-letter port
  for (auto& c : children_) {
    c->maker_lock.release();
    c->block_segment.reset();  // unlinks the node block
  }
  // Ports of nodes that were killed (or crashed for good) are left by dead owners: remove them.
  if (auto reg = shmctl::open_registry(options_.ns)) {
    for (const auto& g : shmctl::find_garbage(options_.ns, &*reg)) shmctl::remove(options_.ns, &*reg, g);
  } else {
    for (const auto& g : shmctl::find_garbage(options_.ns, nullptr)) shmctl::remove(options_.ns, nullptr, g);
  }
}

int Supervisor::run() {
  started_ = Clock::now();
  // Signals are taken with sigtimedwait, in this thread: block them before any thread starts.
  const sigset_t signals = launcher_signals();
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &signals, &previous);

  if (Status st = prepare(); !st) {
    say(st.error().message);
    cleanup();
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return 1;
  }
  if (!options_.quiet)
    say("running " + pipeline_.file.string() + ": network " + pipeline_.network + ", " +
        std::to_string(children_.size()) + " nodes, namespace " + options_.ns +
        " (watch it: shmctl --namespace " + options_.ns + " watch)");

  // Sinks first: a node starts once the nodes it feeds have their ports up.
  for (auto it = stop_order_.rbegin(); it != stop_order_.rend(); ++it) {
    Child& c = **it;
    if (!spawn(c)) {
      failed_ = true;
      c.state = Child::State::gave_up;
      continue;
    }
    while (c.state == Child::State::starting && Clock::now() - c.started_at < kStartLimit) {
      reap();
      restart_due();
      if (c.state != Child::State::starting) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  const bool tty = isatty(STDERR_FILENO);
  const bool show = !options_.quiet && options_.status_interval.count() > 0;
  Snapshot before = snapshot();
  auto next_status = Clock::now() + options_.status_interval;
  constexpr auto kObserveInterval = std::chrono::milliseconds(250);
  auto next_observe = Clock::now();
  std::size_t drawn_lines = 0;
  auto draw = [&](const Snapshot& now) {
    const std::string block = render_status(now, before, started_);
    if (tty && drawn_lines) std::fprintf(stderr, "\x1b[%zuA\x1b[J", drawn_lines);
    std::fputs(block.c_str(), stderr);
    drawn_lines = static_cast<std::size_t>(std::count(block.begin(), block.end(), '\n'));
  };

  while (!all_done()) {
    timespec tick{0, std::chrono::nanoseconds(kTick).count()};
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      if (!signalled_ && phase_ != Phase::killing) {
        signalled_ = true;
        begin_stop();
        drawn_lines = 0;
        say(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": stopping the pipeline from the sources down, draining what is queued for up "
            "to " +
            std::to_string(options_.drain_limit.count()) +
            " ms (send it again to kill every node at once)");
        for (auto& c : children_)
          if (c->state == Child::State::restart_pending) {
            say("node " + c->spec->id + " was waiting to be restarted: not restarting it");
            c->end(Child::State::gave_up);
            failed_ = true;
          }
      } else if (phase_ != Phase::killing) {
        phase_ = Phase::killing;
        drawn_lines = 0;
        say("stopping now: killing every node; what is still queued is lost");
        failed_ = true;
        for (auto& c : children_) {
          if (c->live()) kill(c->pid, SIGKILL), c->killed = true;
          if (c->state == Child::State::restart_pending || c->state == Child::State::idle)
            c->end(Child::State::finished);
        }
      }
    }
    reap();
    if (phase_ != Phase::killing) restart_due();
    if (phase_ == Phase::running && all_sources_done()) {
      begin_stop();
      drawn_lines = 0;
      if (!options_.quiet) say("every source has finished: stopping the pipeline, sources first");
    }
    if (phase_ == Phase::stopping) stop_next();
    if (options_.observer && Clock::now() >= next_observe) {
      options_.observer(snapshot());
      next_observe = Clock::now() + kObserveInterval;
    }
    if (show && Clock::now() >= next_status) {
      Snapshot now = snapshot();
      draw(now);
      before = std::move(now);
      next_status = Clock::now() + options_.status_interval;
    }
  }

  if (dead_letters_) dead_letters_->finish();
  Snapshot end = snapshot();
  if (options_.wires) end.wires = options_.wires(true);  // what is left in the streams now
  if (options_.observer) options_.observer(end);
  const Ledger l = ledger(end);
  const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  if (!options_.quiet) std::fputs(render_summary(end, l, pipeline_.conserved, seconds).c_str(), stdout);
  if (pipeline_.conserved && !l.adds_up) failed_ = true;
  if (!options_.summary_json.empty()) {
    nlohmann::json j = {{"network", pipeline_.network}, {"namespace", options_.ns},
                        {"seconds", seconds},           {"ok", !failed_},
                        {"in", l.in},                   {"delivered", l.delivered},
                        {"dead_lettered", l.dead_lettered}, {"retried", l.retried},
                        {"lost", l.lost},               {"salvaged", l.salvaged},
                        {"restarts", l.restarts},       {"adds_up", l.adds_up},
                        {"conserved", pipeline_.conserved},
                        {"ended_at", std::chrono::duration<double>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()}};
    for (const NodeView& n : end.nodes) {
      const NodeCounters& c = n.counters;
      j["nodes"][n.spec->id] = {{"received", c.received},     {"handled", c.handled},
                                {"failed", c.failed},         {"retried", c.retried},
                                {"dead_lettered", c.dead_lettered}, {"emitted", c.emitted},
                                {"lost", c.lost},             {"salvaged", c.salvaged},
                                {"lost_at_takeover", c.lost_at_takeover},
                                {"restarts", n.restarts},     {"state", n.state}};
    }
    // The bridges of wires between hosts (placement.hpp): which way, what they carried, and
    // what the engine said of their streams at the end.
    for (const WireView& w : end.wires) {
      nlohmann::json& node = j["nodes"][w.node];
      const bool out = w.direction == "out";
      node["bridge"] = {{"direction", w.direction},
                        {"port", w.port()},
                        {"carried", node.value(out ? "handled" : "emitted", std::uint64_t{0})},
                        {"stream_bound", w.bound}};
      if (w.known)
        node["bridge"]["stream"] = {{"stored", w.stored},
                                    {"in_flight", w.in_flight},
                                    {"redelivered", w.redelivered}};
      else
        node["bridge"]["engine_error"] = w.error;
    }
    if (!pipeline_.hosts.empty()) j["host"] = pipeline_.nodes.empty() ? "" : pipeline_.nodes[0].host;
    std::ofstream(options_.summary_json) << j.dump(2) << "\n";
  }
  cleanup();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return failed_ ? 1 : 0;
}

}  // namespace bloccs::launcher
