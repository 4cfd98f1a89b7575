// SPDX-License-Identifier: Apache-2.0
#include "tools/bloccs/wire_watch.hpp"

#include "bridge/jetstream.hpp"

namespace bloccs::launcher {
namespace {

constexpr auto kLookInterval = std::chrono::milliseconds(500);

}  // namespace

WireWatch::WireWatch(const HostSpec& host, const std::vector<Bridge>& bridges)
    : host_(host), bridges_(bridges) {
  for (const Bridge& b : bridges_) {
    WireView& v = views_.emplace_back();
    v.node = b.node_id;
    v.direction = b.kind == Bridge::egress ? "out" : "in";
    v.target = b.target;
    v.bound = b.stream_limit;
    v.error = "not connected to the engine yet";
  }
  thread_ = std::thread([this] { loop(); });
}

WireWatch::~WireWatch() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::vector<WireView> WireWatch::views() const {
  std::lock_guard lock(mutex_);
  return views_;
}

std::vector<WireView> WireWatch::look_now(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  // A look under way may have started before now: the one after it, then.
  const std::uint64_t until = looks_ + (looking_ ? 2 : 1);
  asked_ = true;
  wake_.notify_all();
  wake_.wait_for(lock, limit, [&] { return looks_ >= until || stop_; });
  return views_;
}

void WireWatch::loop() {
  std::unique_ptr<bridge::Engine> engine;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    looking_ = true;
    asked_ = false;
    std::vector<WireView> seen = views_;
    lock.unlock();
    if (!engine) {
      auto connected = bridge::Engine::connect({.urls = host_.nats,
                                                .credentials = host_.credentials,
                                                .client_name = "bloccs launcher " + host_.name,
                                                .connect_timeout = std::chrono::seconds(1)});
      if (connected) engine = std::move(connected).value();
      else
        for (WireView& v : seen) v.known = false, v.error = connected.error().message;
    }
    if (engine)
      for (std::size_t i = 0; i < bridges_.size(); ++i) {
        auto state = engine->wire_state(bridges_[i].target);
        WireView& v = seen[i];
        v.known = static_cast<bool>(state);
        v.error = state ? "" : state.error().message;
        if (state) {
          v.stored = state->stored;
          v.in_flight = state->in_flight;
          v.redelivered = state->redelivered;
          v.pulled = state->pulled;
        }
      }
    lock.lock();
    views_ = std::move(seen);
    looking_ = false;
    ++looks_;
    wake_.notify_all();
    wake_.wait_for(lock, kLookInterval, [&] { return stop_ || asked_; });
  }
}

}  // namespace bloccs::launcher
