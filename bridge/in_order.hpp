// SPDX-License-Identifier: Apache-2.0
// Hands a wire's messages on in stream order. A consumer's server delivers new messages while
// older ones, left unacked by an ingress that died, wait out their ack wait: without this, a
// restarted ingress would push them after newer ones. Messages come in with their stream
// sequence (1, 2, 3, ... per wire: no gaps); the one the next hand-over needs is let out, the
// ones after it are held until it comes (redelivered), each sequence once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

namespace bloccs::bridge {

template <class Message>
class InOrder {
 public:
  explicit InOrder(std::uint64_t next) : next_(next) {}

  // The sequence handed on next.
  std::uint64_t next() const noexcept { return next_; }
  std::size_t held() const noexcept { return held_.size(); }

  // Takes message `seq` in. False if it was handed on before (a late redelivery): the caller
  // acks and drops it. A second delivery of a held sequence replaces the first (its ack is the
  // current one).
  bool offer(std::uint64_t seq, Message&& m) {
    if (seq < next_) return false;
    held_.insert_or_assign(seq, std::move(m));
    return true;
  }

  // The next message in order, if it is here.
  std::optional<Message> take() {
    const auto it = held_.find(next_);
    if (it == held_.end()) return std::nullopt;
    Message m = std::move(it->second);
    held_.erase(it);
    ++next_;
    return m;
  }

  // The stream no longer holds what comes before `first` (it was acked, or removed by hand):
  // stop waiting for it.
  void skip_to(std::uint64_t first) {
    if (first <= next_) return;
    next_ = first;
    held_.erase(held_.begin(), held_.lower_bound(first));
  }

 private:
  std::uint64_t next_;
  std::map<std::uint64_t, Message> held_;
};

}  // namespace bloccs::bridge
