// SPDX-License-Identifier: Apache-2.0
// The metrics endpoint: an HTTP server (cpp-httplib, Debian libcpp-httplib-dev) on its own
// thread that answers GET /metrics with whatever `render` returns at that moment.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "bloccs/result.hpp"

namespace bloccs::metrics {

// "HOST:PORT" split and checked: HOST an IPv4 or IPv6 address ("[::1]" or "::1") or a name,
// PORT 0 (any free port) to 65535. Errc::bad_config saying what is wrong otherwise.
struct ListenAddress {
  std::string host;
  int port = 0;
};
Result<ListenAddress> parse_listen(const std::string& text);

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // Binds and serves. Errc::bad_config for an address that is not this machine's,
  // Errc::already_exists for a port another process listens on; both say what to do.
  static Result<std::unique_ptr<MetricsServer>> start(const ListenAddress& where, Render render);
  ~MetricsServer();  // stops serving; a scrape under way finishes first
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "http://HOST:PORT/metrics", the port as bound (when 0 was asked for).
  std::string url() const;
  int port() const noexcept { return port_; }

 private:
  struct Impl;
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  ListenAddress where_;
  int port_ = 0;
};

}  // namespace bloccs::metrics
