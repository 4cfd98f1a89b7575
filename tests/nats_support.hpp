// SPDX-License-Identifier: Apache-2.0
// A NATS server for a test: Debian's nats-server on a free loopback port, with JetStream and
// its store in a directory of the test's own (unless asked without), stopped (SIGTERM) after.
#pragma once

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "net_support.hpp"
#include "test_support.hpp"

namespace bloccs::test {

class NatsServer {
 public:
  explicit NatsServer(const TempDir& dir, bool jetstream = true) : dir_(dir.path()) {
    start(jetstream);
  }
  ~NatsServer() { stop(); }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Waits until it accepts connections.
  bool ready(std::chrono::milliseconds limit = std::chrono::seconds(20)) const {
    return eventually([&] { return accepts_connections(port_); }, limit);
  }
  void kill_now() {  // SIGKILL: what a crash leaves (the store on disk)
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait_child(pid_, std::chrono::seconds(10));
      pid_ = -1;
    }
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      wait_child(pid_, std::chrono::seconds(20));
      pid_ = -1;
    }
  }
  // Starts again on the same port, with the same store.
  void restart(bool jetstream = true) {
    stop();
    start(jetstream);
  }

 private:
  void start(bool jetstream) {
    if (port_ < 0) port_ = free_loopback_port();
    std::vector<std::string> args{"-a", "127.0.0.1", "-p", std::to_string(port_)};
    if (jetstream) {
      args.push_back("-js");
      args.push_back("-sd");
      args.push_back((dir_ / "jetstream").string());
    }
    pid_ = start_program("/usr/sbin/nats-server", args, dir_ / "nats-server.log");
  }
  std::filesystem::path dir_;
  int port_ = -1;
  pid_t pid_ = -1;
};

}  // namespace bloccs::test
