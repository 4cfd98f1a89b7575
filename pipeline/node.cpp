// SPDX-License-Identifier: Apache-2.0
// The node runtime: a node's ports, its handlers, routing to wired ports, retries, dead letters.
#include "bloccs/node.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "bloccs/wait_any.hpp"
#include "pipeline/node_block.hpp"
#include "shm/names.hpp"
#include "shm/process.hpp"

namespace bloccs {
namespace {

// How often a push to a port without an owner (its node crashed and is being restarted) is
// tried again.
constexpr auto kOwnerRetryInterval = std::chrono::milliseconds(20);
// A stopping node looks at its ports and its timer this often while it drains.
constexpr auto kDrainPoll = std::chrono::milliseconds(20);
// A push parked on a full target is re-armed this often, so that a stop asked for meanwhile
// bounds it by the drain deadline (a timed-out push enqueued nothing: trying again is safe).
constexpr auto kParkSlice = std::chrono::milliseconds(100);

std::string truncated(std::string_view text, std::size_t max) {
  return std::string(text.substr(0, max));
}

}  // namespace

struct detail::NodeImpl {
  using Handler = Node::Handler;
  PipelineSpec pipeline;
  const NodeSpec* spec = nullptr;  // into `pipeline`
  NodeOptions options;
  std::string ns;
  std::vector<Port> ports;                     // spec->inputs order
  std::vector<Port*> port_ptrs;                // for wait_any
  std::vector<PortKey> port_keys;              // where a retry goes back to
  // push_after requests each port's timer has to take in: this process's retries plus what a
  // take-over re-queued. Until its timer has delivered them all, a stopping node is not drained
  // (a request on its way to the timer shows in no depth).
  std::vector<std::uint64_t> retries_expected;
  std::vector<Handler> handlers;               // per port; empty: `any`
  Handler any;
  std::vector<std::vector<PortKey>> targets;   // per output (spec->outputs order)
  PortKey dead_letter;
  std::optional<Pusher> pusher;
  // Per output, the Pusher its loans are taken through: a loan stays open while the handler
  // runs, and a Pusher holds one at a time (its other pushes go on through `pusher`).
  std::vector<std::optional<Pusher>> loan_pushers;
  std::optional<shm::Segment> block_segment;
  shm::HeldLock maker_lock;  // a block this node made itself (no launcher)
  shm::HeldLock node_lock;   // the block is this running node's; both go before the segment
  pipeline::NodeBlock* block = nullptr;
  NodeCounters counters;
  Outputs outputs;
  std::mt19937_64 rng{std::random_device{}()};
  WakeUp wake;
  std::atomic<std::uint32_t> stop_requested{0};
  bool gave_up = false;  // drain_limit passed: stop waiting for owners
  std::uint64_t unhandled = 0;  // received after the drain limit, counted lost unhandled
  // Set when stopping is first seen: the drain limit bounds the whole drain, so a node whose
  // targets are gone for good (its launcher was killed, say) still ends within it. The launcher
  // may set an earlier one: the whole pipeline's stop has one budget.
  Deadline drain_deadline = kNoDeadline;
  // The blocks of the nodes this one feeds, opened when one of their ports has no owner: their
  // `over` word tells a node restarting from one that will never come back.
  std::map<std::string, std::optional<shm::Segment>, std::less<>> target_blocks;

  void publish() { block->counters.store(counters); }
  void set_state(pipeline::NodeState s) {
    // relaxed: a word for people (see node_block.hpp).
    block->identity.state.store(static_cast<std::uint32_t>(s), std::memory_order_relaxed);
  }
  void say(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n", spec->id.c_str(), what.c_str());
  }
  bool stopping() const { return stop_requested.load(std::memory_order_relaxed) != 0; }
  Deadline drain_until() {
    if (drain_deadline != kNoDeadline) return drain_deadline;
    drain_deadline = Clock::now() + options.drain_limit;
    // acquire: pairs with the launcher's release store before it sent the stop signal.
    const std::int64_t by = block->identity.stop_by.load(std::memory_order_acquire);
    if (by > 0) drain_deadline = std::min(drain_deadline, Deadline(std::chrono::nanoseconds(by)));
    return drain_deadline;
  }
  // Stopping and past the drain limit: from now on nothing waits for a missing owner.
  bool past_drain_limit() {
    if (!gave_up && stopping() && Clock::now() >= drain_until()) gave_up = true;
    return gave_up;
  }

  Status send(const PortKey& key, std::span<const std::byte> payload, const Meta& meta);
  Result<Loan> lend(std::size_t output, std::size_t bytes, const Meta& meta);
  // Runs attempt(deadline) until it is ok or fails for good, as send() does for a push: a full
  // target is waited for (in slices, then within the drain limit once stopping), one whose
  // owner is gone until it is back, unless its node has ended for good.
  template <class Attempt>
  Status keep_trying(const PortKey& key, Attempt&& attempt);
  // Sends what the handler emitted (it returned ok), in emit order.
  void send_held();
  bool gone_for_good(const std::string& node);
  Status send_output(std::size_t output, std::span<const std::byte> payload, const Meta& meta);
  void handle(std::size_t port, const MessageView& m);
  void fail(std::size_t port, const MessageView& m, std::string_view error);
  bool drained() const;
  std::uint64_t queued() const;  // messages not handled yet: queued, or retries on their way
};

namespace {

// The node whose stop() SIGINT and SIGTERM call (one per process: a node is a process).
std::atomic<detail::NodeImpl*> g_signalled{nullptr};

void on_stop_signal(int) {
  // acquire: pairs with the release store that installed it (the Impl is complete).
  if (detail::NodeImpl* impl = g_signalled.load(std::memory_order_acquire)) {
    impl->stop_requested.store(1, std::memory_order_relaxed);  // relaxed: wake orders it
    impl->wake.notify();
  }
}

// The node's counter block: the launcher's, or (run without one) one of its own, whose maker
// lock `maker` then holds.
Result<shm::Segment> open_block(const std::string& ns, const std::string& name, bool& created,
                                shm::HeldLock& maker) {
  for (int attempt = 0;; ++attempt) {
    auto seg = shm::Segment::open(ns, name, shm::SegmentKind::node);
    if (seg) {
      created = false;
      if (seg->size() != sizeof(pipeline::NodeBlock))
        return Error{Errc::version_mismatch, "node block /dev/shm/" + seg->name() +
                                                 " is not of this bloccs version; stop the "
                                                 "launcher that made it"};
      return seg;
    }
    if (seg.code() != Errc::not_found) return seg;
    created = true;
    auto made = shm::Segment::create(ns, name, shm::SegmentKind::node, sizeof(pipeline::NodeBlock));
    if (!made) return made;
    auto lock = pipeline::make_node_block(*reinterpret_cast<pipeline::NodeBlock*>(made->base()));
    if (!lock) return std::move(lock).error();
    if (auto st = made->publish(); !st) {
      if (st.code() == Errc::already_exists && attempt == 0) continue;  // a launcher was quicker
      return std::move(st).error();
    }
    maker = std::move(lock).value();
    return made;
  }
}

}  // namespace

Status Outputs::emit(std::string_view output, std::span<const std::byte> payload,
                     const Meta& meta) {
  for (std::size_t i = 0; i < spec_->outputs.size(); ++i) {
    if (spec_->outputs[i].name != output) continue;
    held_.push_back({i, bytes_.size(), payload.size(), meta});
    held_.back().meta.attempt = 0;  // attempts count retries at one port: a new hop starts at 0
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    return {};
  }
  return Error{Errc::not_found, "node " + spec_->id + " has no output '" + std::string(output) +
                                    "'; wire it in the pipeline file (outputs." +
                                    std::string(output) + " = \"node.port\")"};
}

Result<OutputLoan> Outputs::loan(std::string_view output, std::size_t bytes, const Meta& meta) {
  for (std::size_t i = 0; i < spec_->outputs.size(); ++i) {
    if (spec_->outputs[i].name != output) continue;
    Meta fresh = meta;
    fresh.attempt = 0;                // attempts count retries at one port: a new hop starts at 0
    if (node_->targets[i].empty()) {  // wired nowhere: ordinary memory, sent to nobody
      nowhere_.resize(std::max(nowhere_.size(), bytes));
      return OutputLoan(nullptr, 0, std::span(nowhere_).first(bytes));
    }
    if (loans_[i])
      return Error{Errc::bad_loan, "output '" + std::string(output) +
                                       "' already has a loan for this message; one per output"};
    auto loan = node_->lend(i, bytes, fresh);
    if (!loan) return std::move(loan).error();
    loans_[i].emplace(std::move(loan).value());
    held_.push_back({i, 0, bytes, std::move(fresh), true});
    return OutputLoan(this, held_.size() - 1, loans_[i]->bytes());
  }
  return Error{Errc::not_found, "node " + spec_->id + " has no output '" + std::string(output) +
                                    "'; wire it in the pipeline file (outputs." +
                                    std::string(output) + " = \"node.port\")"};
}

void OutputLoan::use(std::size_t n) noexcept {
  if (out_) out_->held_[held_].payload_size = std::min(n, bytes_.size());
}

Result<Node> Node::from_environment(NodeOptions options) {
  const char* file = std::getenv("BLOCCS_PIPELINE");
  const char* id = std::getenv("BLOCCS_NODE");
  if (!file || !id || !*file || !*id)
    return Error{Errc::bad_config,
                 "BLOCCS_PIPELINE and BLOCCS_NODE are not set: start this program with "
                 "`bloccs run <pipeline file>`, which sets them"};
  auto pipeline = load_pipeline(file, {.program_dirs = {}, .check_programs = false});
  if (!pipeline) return std::move(pipeline).error();
  if (const char* ms = std::getenv("BLOCCS_DRAIN_LIMIT_MS"); ms && *ms) {
    char* end = nullptr;
    const long long v = std::strtoll(ms, &end, 10);
    if (*end != '\0' || v <= 0)
      return Error{Errc::bad_config, std::string("BLOCCS_DRAIN_LIMIT_MS=") + ms +
                                         " is not a positive number of milliseconds"};
    options.drain_limit = std::chrono::milliseconds(v);
  }
  return start(*pipeline, id, std::move(options));
}

Result<Node> Node::start(const PipelineSpec& pipeline, std::string_view id, NodeOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->pipeline = pipeline;
  impl->spec = impl->pipeline.node(id);
  if (!impl->spec)
    return Error{Errc::not_found, "the pipeline " + pipeline.file.string() + " has no node '" +
                                      std::string(id) + "'"};
  const NodeSpec& spec = *impl->spec;
  impl->options = std::move(options);
  auto ns = shm::resolve_namespace(impl->options.ns);
  if (!ns) return std::move(ns).error();
  impl->ns = *ns;

  bool created = false;
  shm::HeldLock maker;
  auto block =
      open_block(impl->ns, pipeline::node_block_name(pipeline.network, spec.id), created, maker);
  if (!block) return std::move(block).error();
  impl->block_segment.emplace(std::move(block).value());
  impl->maker_lock = std::move(maker);
  if (!created) impl->block_segment->disown();  // the launcher's: it outlives this process
  impl->block = reinterpret_cast<pipeline::NodeBlock*>(impl->block_segment->base());
  auto running = shm::HeldLock::take(impl->block->locks.node, "the node lock of " + spec.id);
  if (!running) {
    if (running.code() != Errc::already_exists) return std::move(running).error();
    return Error{Errc::already_exists,
                 "node " + spec.id + " of network " + pipeline.network + " already runs (pid " +
                     std::to_string(impl->block->identity.pid.load(std::memory_order_relaxed)) +
                     ") in namespace " + impl->ns + "; stop it first, or use another namespace"};
  }
  impl->node_lock = std::move(running).value();
  // Counters continue where a crashed predecessor left them (the launcher's segment).
  impl->counters = impl->block->counters.load();
  const shm::ProcessId me = shm::self_process();
  // relaxed: words for people.
  impl->block->identity.pid.store(static_cast<std::uint32_t>(me.pid), std::memory_order_relaxed);
  impl->block->identity.start_time.store(me.start_time, std::memory_order_relaxed);
  impl->set_state(pipeline::NodeState::starting);

  for (const InputSpec& in : spec.inputs) {
    PortKey key = port_key(pipeline, spec.id, in.name);
    auto port = Port::start(key, {.buffer = in.buffer,
                                  .max_payload = in.max_payload,
                                  .typical_payload = in.typical_payload,
                                  .ns = impl->ns,
                                  .receive_spin = std::chrono::nanoseconds(0),
                                  .latency_histogram = in.latency_histogram});
    if (!port) return std::move(port).error();
    // A restart after a crash: the port kept what the dead process left queued.
    if (const PortTakeover& t = port->takeover(); t.taken_over) {
      impl->counters.salvaged += t.salvaged;
      impl->counters.lost_at_takeover += t.lost();
      impl->say("took over " + to_string(key) + " from dead pid " +
                std::to_string(t.dead_owner) + ": " + std::to_string(t.salvaged) +
                " messages kept, " + std::to_string(t.lost()) + " lost" +
                (t.note.empty() ? std::string() : " (" + t.note + ")"));
    }
    impl->retries_expected.push_back(port->takeover().salvaged_after);
    impl->ports.push_back(std::move(port).value());
    impl->port_keys.push_back(std::move(key));
  }
  for (Port& p : impl->ports) impl->port_ptrs.push_back(&p);
  impl->handlers.resize(spec.inputs.size());
  for (const OutputSpec& out : spec.outputs) {
    auto& keys = impl->targets.emplace_back();
    for (const Target& t : out.targets) keys.push_back(port_key(pipeline, t.node, t.port));
  }
  impl->dead_letter = dead_letter_key(pipeline);
  auto pusher = Pusher::open(impl->ns);
  if (!pusher) return std::move(pusher).error();
  impl->pusher.emplace(std::move(pusher).value());
  impl->outputs.spec_ = &spec;
  impl->outputs.node_ = impl.get();
  impl->outputs.loans_.resize(spec.outputs.size());
  impl->loan_pushers.resize(spec.outputs.size());

  if (impl->options.handle_signals) {
    Impl* expected = nullptr;
    // release: the handler sees a complete Impl.
    if (g_signalled.compare_exchange_strong(expected, impl.get(), std::memory_order_release)) {
      struct sigaction sa{};
      sa.sa_handler = on_stop_signal;
      sigemptyset(&sa.sa_mask);
      sigaction(SIGINT, &sa, nullptr);
      sigaction(SIGTERM, &sa, nullptr);
    }
  }
  impl->publish();
  impl->set_state(pipeline::NodeState::running);
  return Node(std::move(impl));
}

int Node::fail(const Error& error) {
  const char* id = std::getenv("BLOCCS_NODE");
  std::fprintf(stderr, "%s: %s\n", id ? id : "node", error.message.c_str());
  return 1;
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::Node(Node&&) noexcept = default;
Node& Node::operator=(Node&&) noexcept = default;
Node::~Node() {
  if (!impl_) return;
  Impl* self = impl_.get();
  // acq_rel: stop signals from reaching a node that is going away.
  g_signalled.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel);
  impl_->publish();
}

void Node::on_message(Handler handler) { impl_->any = std::move(handler); }

void Node::on(std::string_view in_port, Handler handler) {
  for (std::size_t i = 0; i < impl_->spec->inputs.size(); ++i)
    if (impl_->spec->inputs[i].name == in_port) impl_->handlers[i] = std::move(handler);
}

bool Node::stopping() const noexcept { return impl_->stopping(); }

void Node::stop() noexcept {
  impl_->stop_requested.store(1, std::memory_order_relaxed);  // relaxed: notify orders it
  impl_->wake.notify();
}

const NodeSpec& Node::spec() const noexcept { return *impl_->spec; }
const std::string& Node::network() const noexcept { return impl_->pipeline.network; }
NodeCounters Node::counters() const noexcept { return impl_->counters; }

Status Node::emit(std::string_view output, std::span<const std::byte> payload, const Meta& meta) {
  const auto& outs = impl_->spec->outputs;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].name != output) continue;
    Status st;
    if (meta.attempt == 0) {
      st = impl_->send_output(i, payload, meta);
    } else {  // attempts count retries at one port: a new hop starts at 0
      Meta fresh = meta;
      fresh.attempt = 0;
      st = impl_->send_output(i, payload, fresh);
    }
    impl_->publish();
    return st;
  }
  return Error{Errc::not_found, "node " + impl_->spec->id + " has no output '" +
                                    std::string(output) + "'; wire it in the pipeline file"};
}

bool detail::NodeImpl::gone_for_good(const std::string& node) {
  auto it = target_blocks.find(node);
  if (it == target_blocks.end()) {
    auto seg = shm::Segment::open(ns, pipeline::node_block_name(pipeline.network, node),
                                  shm::SegmentKind::node, {.read_only = true});
    std::optional<shm::Segment> block;
    if (seg && seg->size() == sizeof(pipeline::NodeBlock)) block.emplace(std::move(seg).value());
    // Not there (no launcher, or it is starting): asked again at the next miss.
    if (!block) return false;
    it = target_blocks.emplace(node, std::move(block)).first;
  }
  const auto* b = reinterpret_cast<const pipeline::NodeBlock*>(it->second->base());
  // acquire: pairs with the launcher's release store of `over`.
  return b->identity.over.load(std::memory_order_acquire) != 0;
}

template <class Attempt>
Status detail::NodeImpl::keep_trying(const PortKey& key, Attempt&& attempt) {
  bool said = false;
  for (;;) {
    const Deadline slice = Clock::now() + kParkSlice;
    Status st = attempt(stopping() ? std::min(slice, drain_until()) : slice);
    if (st) return st;
    if (st.code() == Errc::timeout) {  // parked on a full target
      if (past_drain_limit()) return st;
      continue;
    }
    if (st.code() != Errc::no_producer) return st;
    if (gone_for_good(key.node_id))
      return Error{Errc::no_producer, "node " + key.node_id +
                                          " has ended for good (finished, or gave up after its "
                                          "restarts): nothing will receive what was sent to it"};
    // Its node crashed and is being restarted: wait for it, unless we are past our drain limit.
    if (past_drain_limit()) return st;
    if (!said)
      say("port " + to_string(key) + " has no owner (its node is starting or restarting); "
          "waiting for it");
    said = true;
    std::this_thread::sleep_for(kOwnerRetryInterval);
  }
}

Status detail::NodeImpl::send(const PortKey& key, std::span<const std::byte> payload, const Meta& meta) {
  return keep_trying(key, [&](Deadline d) { return pusher->push(key, payload, meta, d); });
}

Result<Loan> detail::NodeImpl::lend(std::size_t output, std::size_t bytes, const Meta& meta) {
  std::optional<Pusher>& lender = loan_pushers[output];
  if (!lender) {
    auto opened = Pusher::open(ns);
    if (!opened) return std::move(opened).error();
    lender.emplace(std::move(opened).value());
  }
  const PortKey& key = targets[output].front();
  std::optional<Loan> loan;
  Status st = keep_trying(key, [&](Deadline d) -> Status {
    auto l = lender->loan(key, bytes, meta, d);
    if (!l) return std::move(l).error();
    loan.emplace(std::move(l).value());
    return {};
  });
  if (!st) return std::move(st).error();
  return std::move(*loan);
}

Status detail::NodeImpl::send_output(std::size_t output, std::span<const std::byte> payload,
                               const Meta& meta) {
  for (const PortKey& key : targets[output]) {
    if (Status st = send(key, payload, meta); !st) return st;
    ++counters.emitted;
  }
  return {};
}

void detail::NodeImpl::handle(std::size_t port, const MessageView& m) {
  // The counters reach the block after each message, before the port moves past it: a node
  // killed mid-batch leaves no message handled and uncounted (the ledger would call it missing;
  // at worst the message being handled is counted again when it comes again).
  struct PublishAfter {
    NodeImpl& n;
    ~PublishAfter() { n.publish(); }
  } publish_after{*this};
  ++counters.received;
  if (stopping() && past_drain_limit()) {
    // Mid-batch when the stop's budget ran out: not handled (a slow handler would overrun the
    // limit by a whole batch), counted.
    ++counters.lost;
    ++unhandled;
    return;
  }
  const Handler& h = handlers[port] ? handlers[port] : any;
  outputs.bytes_.clear();
  outputs.held_.clear();
  const Delivery delivery{spec->inputs[port].name, m.payload, m.meta};
  std::string error;
  if (!h) {
    error = "no handler for port '" + spec->inputs[port].name + "' (call on_message or on)";
  } else {
    try {
      if (Status st = h(delivery, outputs); !st) {
        error = std::move(st).error().message;
        if (error.empty()) error = "the handler failed (no reason given)";
      }
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "exception";
    } catch (...) {
      error = "unknown exception";
    }
  }
  if (!error.empty()) {
    for (auto& loan : outputs.loans_) loan.reset();  // a failed attempt sends nothing
    return fail(port, m, error);
  }
  ++counters.handled;
  send_held();
}

void detail::NodeImpl::send_held() {
  for (const Outputs::Held& held : outputs.held_) {
    Status st;
    if (held.loaned) {
      // Copied to the output's further targets first (the loan's bytes are ours until its
      // commit), then committed where it lies.
      Loan& loan = *outputs.loans_[held.output];
      const std::span<const std::byte> payload = loan.bytes().first(held.payload_size);
      const std::vector<PortKey>& keys = targets[held.output];
      for (std::size_t t = 1; t < keys.size() && st; ++t)
        if ((st = send(keys[t], payload, held.meta))) ++counters.emitted;
      if (st) {
        st = loan.commit(held.payload_size);
        // The owner went away under the loan (a crash): its bytes are still readable, so the
        // message is sent again the copying way, which waits for the owner's restart.
        if (!st && st.code() == Errc::no_producer) st = send(keys.front(), payload, held.meta);
        if (st) ++counters.emitted;
      }
      outputs.loans_[held.output].reset();
    } else {
      const std::span<const std::byte> payload(outputs.bytes_.data() + held.payload_at,
                                               held.payload_size);
      st = send_output(held.output, payload, held.meta);
    }
    if (!st) {
      // The handler succeeded; what it emitted cannot be delivered (too large, bad meta, or
      // the target's node never came back). Counted, and said.
      ++counters.lost;
      say("lost a message emitted to '" + spec->outputs[held.output].name +
          "': " + st.error().message);
    }
  }
}

void detail::NodeImpl::fail(std::size_t port, const MessageView& m, std::string_view error) {
  ++counters.failed;
  const std::uint32_t failures = m.meta.attempt() + 1;
  Meta meta = m.meta.copy();
  meta.attempt = failures;
  std::string why(error);
  if (failures < spec->retry.max_attempts) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    Status st = pusher->push_after(port_keys[port], m.payload, meta, spec->retry.delay(failures, u));
    if (st) {
      ++counters.retried;
      ++retries_expected[port];
      return;
    }
    why += "; and its retry could not be scheduled: " + st.error().message;
  }
  meta.set("error", truncated(why, kMetaMaxValue));
  meta.set("node", spec->id);
  meta.set("port", spec->inputs[port].name);
  Status st = send(dead_letter, m.payload, meta);
  if (!st && st.code() == Errc::bad_meta) {  // the user's pairs left no room: keep ours
    Meta ours;
    ours.attempt = failures;
    ours.set("error", truncated(why, kMetaMaxValue)).set("node", spec->id);
    ours.set("port", spec->inputs[port].name);
    st = send(dead_letter, m.payload, ours);
  }
  if (st) {
    ++counters.dead_lettered;
    return;
  }
  ++counters.lost;
  say("lost a message after " + std::to_string(failures) + " failed attempts (" + why +
      "): the dead-letter port refused it: " + st.error().message);
}

std::uint64_t detail::NodeImpl::queued() const {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const PortStats s = ports[i].stats();
    const std::uint64_t retries =
        retries_expected[i] > s.after_delivered ? retries_expected[i] - s.after_delivered : 0;
    n += s.depth + std::max(s.pending_after, retries);
  }
  return n;
}

bool detail::NodeImpl::drained() const {
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const PortStats s = ports[i].stats();
    if (s.depth != 0 || s.pending_after != 0 || s.after_delivered < retries_expected[i])
      return false;
  }
  return true;
}

int Node::run() {
  Impl& n = *impl_;
  auto visit = [&](std::size_t port) {
    return [&n, port](const MessageView& m) { n.handle(port, m); };
  };
  for (;;) {
    if (n.stopping() && n.past_drain_limit()) {
      // The stop's budget is spent: what is still here will not be handled. Counted, and said.
      const std::uint64_t queued = n.queued();
      n.counters.lost += queued;
      const std::uint64_t left = queued + n.unhandled;
      n.say("stopping at the end of the drain limit with " + std::to_string(left) +
            " messages still queued or waiting for a retry: counted lost");
      n.publish();
      n.set_state(pipeline::NodeState::done);
      return 1;
    }
    std::size_t got = 0;
    for (std::size_t i = 0; i < n.ports.size(); ++i) {
      auto batch = n.ports[i].try_receive_batch(visit(i), n.spec->batch);
      if (!batch) {
        n.publish();
        n.say("receiving from port '" + n.spec->inputs[i].name + "' failed: " +
              batch.error().message);
        return 1;
      }
      got += *batch;
    }
    if (got) {
      n.publish();
      continue;
    }
    if (!n.stopping()) {
      if (auto st = wait_any(n.port_ptrs, kNoDeadline, &n.wake); !st) {
        n.say("waiting on the ports failed: " + st.error().message);
        return 1;
      }
      continue;
    }
    // Stopping: what is queued, and the retries the timer holds, are handled first.
    n.set_state(pipeline::NodeState::draining);
    if (n.drained()) break;
    if (n.ports.empty()) break;
    (void)wait_any(n.port_ptrs, Clock::now() + kDrainPoll, nullptr);
  }
  n.publish();
  n.set_state(pipeline::NodeState::done);
  if (n.gave_up) {
    n.say("stopped after " + std::to_string(n.options.drain_limit.count()) +
          " ms of draining; what could not be sent meanwhile was counted lost");
    return 1;
  }
  return 0;
}

}  // namespace bloccs
