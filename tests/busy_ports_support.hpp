// SPDX-License-Identifier: Apache-2.0
// Two ports with known traffic, for the tools' tests (shmctl top, metrics): ports a (buffer
// 512) and b (buffer 64) in this process; a pusher in another process pushes 300 into a and 40
// into b; this process then receives 100 of a's. So a: pushed 300, received 100, depth 200;
// b: pushed 40, received 0, depth 40.
#pragma once

#include <optional>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "port_test_support.hpp"

namespace bloccs::test {

struct BusyPorts {
  TestNamespace ns;
  std::optional<Port> a, b;
  void start() {
    auto pa = Port::start({"net", "a", "in"}, {.buffer = 512, .ns = ns.name()});
    auto pb = Port::start({"net", "b", "in"}, {.buffer = 64, .ns = ns.name()});
    ASSERT_TRUE(pa && pb);
    a.emplace(std::move(pa).value());
    b.emplace(std::move(pb).value());
    const pid_t kid = spawn([&] {
      auto p = Pusher::open(ns.name());
      if (!p) return 2;
      for (int i = 0; i < 300; ++i)
        if (!p->push({"net", "a", "in"}, num(i))) return 3;
      for (int i = 0; i < 40; ++i)
        if (!p->push({"net", "b", "in"}, num(i))) return 4;
      return 0;
    });
    ASSERT_EQ(exit_code(wait_child(kid)), 0);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(a->receive(in(5s)));
  }
};

}  // namespace bloccs::test
