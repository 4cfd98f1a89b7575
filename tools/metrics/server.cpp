// SPDX-License-Identifier: Apache-2.0
// The metrics endpoint on cpp-httplib (server.hpp).
#include "tools/metrics/server.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <httplib.h>

namespace bloccs::metrics {
namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Why binding `where` failed, asked of the kernel with a socket of our own (cpp-httplib only
// says that it failed).
Error bind_error(const ListenAddress& where) {
  const std::string at = where.host + ":" + std::to_string(where.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(where.host.c_str(), std::to_string(where.port).c_str(), &hints,
                                 &found);
      rc != 0)
    return {Errc::bad_config, "cannot listen on " + at + ": " + gai_strerror(rc) +
                                  "; give an address of this machine, such as 127.0.0.1:9464"};
  int err = 0;
  for (addrinfo* a = found; a; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    err = bind(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (err == 0) err = listen(fd, 1) == 0 ? 0 : errno;
    close(fd);
    if (err) break;
  }
  freeaddrinfo(found);
  if (err == EADDRINUSE)
    return {Errc::already_exists, "cannot listen on " + at +
                                      ": the port is in use; stop what listens there, or give "
                                      "another port"};
  if (err == EADDRNOTAVAIL)
    return {Errc::bad_config, "cannot listen on " + at +
                                  ": no interface of this machine has that address; give one "
                                  "it has, such as 127.0.0.1"};
  if (err == EACCES)
    return {Errc::permission_denied,
            "cannot listen on " + at + ": ports below 1024 need privileges; give a higher port"};
  return {Errc::system_error, "cannot listen on " + at + ": " +
                                  (err ? std::strerror(err) : "the HTTP server refused it")};
}

}  // namespace

Result<ListenAddress> parse_listen(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error{Errc::bad_config, "--listen '" + text + "' " + why +
                                       "; give HOST:PORT, such as 127.0.0.1:9464 or [::1]:9464"};
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("has no port");
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return bad("has an unclosed [");
    host = host.substr(1, host.size() - 2);
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos)
    return bad("has no port number after the last ':'");
  if (port.size() > 5 || std::stoi(port) > 65535) return bad("has a port past 65535");
  const int n = std::stoi(port);
  return ListenAddress{host, n};
}

struct MetricsServer::Impl {
  httplib::Server http;
  std::thread thread;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const ListenAddress& where,
                                                           Render render) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->impl_ = std::make_unique<Impl>();
  s->where_ = where;
  httplib::Server& http = s->impl_->http;
  http.Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), kContentType);
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("bloccs metrics: GET /metrics\n", "text/plain; charset=utf-8");
  });
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second server on
  // the same port binds too and the kernel splits the scrapes between the two.
  http.set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // One scrape at a time is plenty, and keeps a slow client from holding threads.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  if (where.port == 0) {
    s->port_ = http.bind_to_any_port(where.host);
    if (s->port_ < 0) return bind_error(where);
  } else {
    if (!http.bind_to_port(where.host, where.port)) return bind_error(where);
    s->port_ = where.port;
  }
  s->impl_->thread = std::thread([&http] { http.listen_after_bind(); });
  // Serving before we return: a stop() that came before the accept loop began would not end it.
  for (int i = 0; i < 2000 && !http.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return s;
}

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string MetricsServer::url() const {
  const bool v6 = where_.host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + where_.host + "]" : where_.host) + ":" + std::to_string(port_) +
         "/metrics";
}

}  // namespace bloccs::metrics
