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

// Three (or `n`) nats-servers with JetStream clustered on loopback, each with its store in
// the test's directory; kill(i) SIGKILLs one.
class NatsCluster {
 public:
  explicit NatsCluster(const TempDir& dir, int n = 3) {
    for (int i = 0; i < n; ++i) {
      client_.push_back(free_loopback_port());
      route_.push_back(free_loopback_port());
    }
    for (int i = 0; i < n; ++i) {
      std::string routes;
      for (int j = 0; j < n; ++j)
        if (j != i) routes += (routes.empty() ? "" : ",") + route_url(j);
      const std::string name = "s" + std::to_string(i);
      pids_.push_back(start_program(
          "/usr/sbin/nats-server",
          {"-a", "127.0.0.1", "-p", std::to_string(client_[i]), "-js", "-sd",
           (dir.path() / ("js-" + name)).string(), "--server_name", name, "--cluster_name",
           "bloccs", "--cluster", route_url(i), "--routes", routes},
          dir.path() / ("nats-" + name + ".log")));
    }
  }
  ~NatsCluster() {
    for (pid_t p : pids_)
      if (p > 0) {
        ::kill(p, SIGTERM);
        wait_child(p, std::chrono::seconds(20));
      }
  }
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (int p : client_) out.push_back("nats://127.0.0.1:" + std::to_string(p));
    return out;
  }
  void kill(std::size_t i) {
    if (pids_[i] > 0) {
      ::kill(pids_[i], SIGKILL);
      wait_child(pids_[i], std::chrono::seconds(10));
      pids_[i] = -1;
    }
  }

 private:
  std::string route_url(std::size_t i) const {
    return "nats://127.0.0.1:" + std::to_string(route_[i]);
  }
  std::vector<int> client_, route_;
  std::vector<pid_t> pids_;
};

}  // namespace bloccs::test
