// SPDX-License-Identifier: Apache-2.0
// The launcher's look at its host's wires in the engine (placement.hpp): what only the engine
// knows of each (messages in the stream, in flight to the ingress, redeliveries), for the live
// status and the summary. A thread of its own connects and asks every half second, so that an
// engine that is slow or away never holds the launcher; what it last saw is read at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tools/bloccs/placement.hpp"
#include "tools/bloccs/status.hpp"

namespace bloccs::launcher {

class WireWatch {
 public:
  WireWatch(const HostSpec& host, const std::vector<Bridge>& bridges);
  ~WireWatch();
  WireWatch(const WireWatch&) = delete;
  WireWatch& operator=(const WireWatch&) = delete;

  // What the last look saw.
  std::vector<WireView> views() const;
  // A fresh look (for the end of a run): waits for it, at most `limit`.
  std::vector<WireView> look_now(std::chrono::milliseconds limit = std::chrono::seconds(6));

 private:
  void loop();

  const HostSpec host_;
  const std::vector<Bridge> bridges_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<WireView> views_;
  std::uint64_t looks_ = 0;  // looks finished
  bool looking_ = false;     // a look is under way
  bool asked_ = false;       // look_now wants one at once
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bloccs::launcher
