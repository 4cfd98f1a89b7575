// SPDX-License-Identifier: Apache-2.0
#include "tools/bloccs/dead_letters.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

namespace bloccs::launcher {

Result<std::unique_ptr<DeadLetters>> DeadLetters::start(const PipelineSpec& pipeline,
                                                         const std::string& ns,
                                                         const std::string& file) {
  std::unique_ptr<DeadLetters> d(new DeadLetters());
  if (!file.empty()) {
    d->out_ = std::fopen(file.c_str(), "w");
    if (!d->out_)
      return Error{Errc::system_error, "cannot write the dead-letter file " + file + ": " +
                                           std::strerror(errno) + "; pick another path"};
  }
  // A dead letter is a message some node received: the largest input port bounds it.
  std::uint32_t max_payload = 1;
  for (const NodeSpec& n : pipeline.nodes)
    for (const InputSpec& in : n.inputs) max_payload = std::max(max_payload, in.max_payload);
  auto port = Port::start(dead_letter_key(pipeline), {.buffer = pipeline.dead_letter.buffer,
                                                      .max_payload = max_payload,
                                                      .ns = ns,
                                                      .receive_spin = std::chrono::nanoseconds(0)});
  if (!port) {
    if (d->out_) std::fclose(d->out_);
    d->out_ = nullptr;
    return std::move(port).error();
  }
  // The thread is the port's consumer from here on: receive and stop happen there.
  d->thread_ = std::thread(&DeadLetters::run, d.get(), std::move(port).value());
  return d;
}

DeadLetters::~DeadLetters() { finish(); }

void DeadLetters::finish() {
  finishing_.store(true, std::memory_order_relaxed);  // relaxed: the thread looks every 50 ms
  if (thread_.joinable()) thread_.join();
  if (out_) std::fclose(out_);
  out_ = nullptr;
}

DeadLetterTally DeadLetters::tally() const {
  std::lock_guard lock(mutex_);
  return tally_;
}

void DeadLetters::run(Port port) {
  auto take = [this](const MessageView& m) { this->take(m); };
  // relaxed: see finish().
  while (!finishing_.load(std::memory_order_relaxed)) {
    auto n = port.receive_batch(take, 256, Clock::now() + std::chrono::milliseconds(50));
    if (!n && n.code() != Errc::timeout) {
      std::fprintf(stderr, "bloccs: the dead-letter port failed: %s\n", n.error().message.c_str());
      break;
    }
  }
  // The nodes are gone by now: what is queued is all there will be.
  while (true) {
    auto n = port.try_receive_batch(take, 256);
    if (!n || *n == 0) break;
  }
  port.stop();
}

void DeadLetters::take(const MessageView& m) {
  const std::string node(m.meta.get("node").value_or("?"));
  const std::string error(m.meta.get("error").value_or(""));
  if (out_) {
    nlohmann::json meta = nlohmann::json::object();
    m.meta.for_each([&](std::string_view k, std::string_view v) { meta[std::string(k)] = v; });
    const nlohmann::json line = {
        {"node", node},
        {"port", std::string(m.meta.get("port").value_or(""))},
        {"attempt", m.meta.attempt()},
        {"error", error},
        {"meta", meta},
        {"payload", std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size())},
    };
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
  }
  std::lock_guard lock(mutex_);
  ++tally_.total;
  ++tally_.by_node[node];
  tally_.last_node = node;
  tally_.last_error = error;
}

}  // namespace bloccs::launcher
