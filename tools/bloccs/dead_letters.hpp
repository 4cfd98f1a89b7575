// SPDX-License-Identifier: Apache-2.0
// The launcher's dead-letter port {network, dead_letter, in}. A node sends there the messages
// whose handler failed their last attempt; a thread of the launcher takes each one, counts it
// per node, and appends it to a JSON-lines file if asked (one object per line: node, port,
// attempt, error, meta, payload).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "bloccs/node.hpp"

namespace bloccs::launcher {

struct DeadLetterTally {
  std::uint64_t total = 0;
  std::map<std::string, std::uint64_t> by_node;
  std::string last_node, last_error;
};

class DeadLetters {
 public:
  // Starts the port and its thread. `file` empty: count only.
  static Result<std::unique_ptr<DeadLetters>> start(const PipelineSpec& pipeline,
                                                     const std::string& ns,
                                                     const std::string& file);
  ~DeadLetters();  // finish()

  // Takes what is still queued, then stops the port (its segments go). Idempotent.
  void finish();
  DeadLetterTally tally() const;

 private:
  DeadLetters() = default;
  void run(Port port);
  void take(const MessageView& m);

  std::FILE* out_ = nullptr;
  std::atomic<bool> finishing_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  DeadLetterTally tally_;
};

}  // namespace bloccs::launcher
