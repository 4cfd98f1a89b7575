// SPDX-License-Identifier: Apache-2.0
// Helpers for shmctl_test: run the real shmctl binary (fork + execve, stdout and stderr through
// pipes), read its text and JSON output, and reap the processes a test leaves behind.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "port_test_support.hpp"

#ifndef SHMCTL_PATH
#error "SHMCTL_PATH must name the shmctl binary (tests/CMakeLists.txt sets it)"
#endif

extern char** environ;

namespace bloccs::test {

using nlohmann::json;

// What a finished shmctl run gave: its exit code (1000 + signal if killed by one, -1 if it had
// to be killed for running too long), stdout and stderr.
struct ShmctlRun {
  int code = -1;
  std::string out;
  std::string err;
  std::string cmd;  // for failure messages
};

inline std::ostream& operator<<(std::ostream& os, const ShmctlRun& r) {
  return os << "`" << r.cmd << "` exited " << r.code << "\n--- stdout:\n"
            << r.out << "--- stderr:\n"
            << r.err;
}

// A running shmctl: its pid and the read ends of its stdout and stderr.
class ShmctlProcess {
 public:
  // Starts `shmctl [--namespace ns] args...`. `env` entries ("NAME=value") replace or add to the
  // test's environment; an entry "NAME" alone removes NAME. `as`: run it as that user (root only).
  ShmctlProcess(const std::optional<std::string>& ns, const std::vector<std::string>& args,
                const std::vector<std::string>& env = {}, const User* as = nullptr) {
    std::vector<std::string> argv_s{SHMCTL_PATH};
    if (ns) {
      argv_s.push_back("--namespace");
      argv_s.push_back(*ns);
    }
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    for (std::size_t i = 1; i < argv_s.size(); ++i) cmd_ += (i > 1 ? " " : "") + argv_s[i];
    cmd_ = "shmctl " + cmd_;

    std::vector<std::string> env_s;
    for (char** e = environ; *e; ++e) {
      std::string_view entry(*e);
      const std::string_view name = entry.substr(0, entry.find('='));
      bool overridden = false;
      for (const auto& o : env)
        if (std::string_view(o).substr(0, o.find('=')) == name) overridden = true;
      if (!overridden) env_s.emplace_back(entry);
    }
    for (const auto& o : env)
      if (o.find('=') != std::string::npos) env_s.push_back(o);

    // Everything execve needs is built before the fork: the child of a multi-threaded process
    // (a Port runs a timer thread) may only make async-signal-safe calls.
    std::vector<char*> argv, envp;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(devnull, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      if (as && !become(*as)) _exit(126);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(devnull);
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
    if (pid_ < 0) ADD_FAILURE() << "fork: " << std::strerror(errno);
  }
  ~ShmctlProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
    if (err_ >= 0) close(err_);
  }
  ShmctlProcess(const ShmctlProcess&) = delete;
  ShmctlProcess& operator=(const ShmctlProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_buf_; }
  const std::string& err() const { return err_buf_; }

  // Reads what the process wrote, for up to `limit` or until both pipes are closed. True once
  // both are closed.
  bool pump(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      pollfd p[2];
      int n = 0;
      if (out_ >= 0) p[n++] = {out_, POLLIN, 0};
      if (err_ >= 0) p[n++] = {err_, POLLIN, 0};
      if (n == 0) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() < 0) return false;
      const int r = poll(p, static_cast<nfds_t>(n), static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      for (int i = 0; i < n; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[65536];
        const ssize_t got = read(p[i].fd, buf, sizeof buf);
        const bool is_out = p[i].fd == out_;
        if (got > 0) {
          (is_out ? out_buf_ : err_buf_).append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          close(p[i].fd);
          (is_out ? out_ : err_) = -1;
        }
      }
    }
  }

  // Reads until `pred(stdout so far)` holds, the pipes close, or `limit` passes.
  template <class F>
  bool read_until(F&& pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred(out_buf_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (pump(std::min(left, std::chrono::milliseconds(20)))) return pred(out_buf_);
    }
    return true;
  }

  // Reads everything and waits for the exit, killing the process after `limit`.
  ShmctlRun finish(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    ShmctlRun r;
    r.cmd = cmd_;
    if (pid_ <= 0) return r;
    const auto end = std::chrono::steady_clock::now() + limit;
    const bool closed = pump(limit);
    int status = 0;
    for (;;) {
      const pid_t w = waitpid(pid_, &status, closed ? WNOHANG : WNOHANG);
      if (w == pid_) break;
      if (std::chrono::steady_clock::now() > end) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        reaped_ = true;
        r.code = -1;
        r.out = out_buf_;
        r.err = err_buf_ + "\n[test: killed, still running after the limit]";
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    reaped_ = true;
    pump(std::chrono::milliseconds(0));
    r.code = exit_code(status);
    r.out = out_buf_;
    r.err = err_buf_;
    if (std::getenv("SHMCTL_TEST_ECHO")) std::cerr << r << "\n";  // to see what shmctl printed
    return r;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  bool reaped_ = false;
  std::string out_buf_, err_buf_, cmd_;
};

// Runs `shmctl --namespace <ns> args...` to completion.
inline ShmctlRun shmctl(const TestNamespace& ns, const std::vector<std::string>& args,
                        std::chrono::milliseconds limit = std::chrono::seconds(30),
                        const User* as = nullptr) {
  ShmctlProcess p(ns.name(), args, {}, as);
  return p.finish(limit);
}

// As shmctl(), with `--json` before the command; the output must parse as one JSON document.
inline ShmctlRun shmctl_json(const TestNamespace& ns, std::vector<std::string> args, json& doc) {
  args.insert(args.begin(), "--json");
  ShmctlRun r = shmctl(ns, args);
  doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  return r;
}

// ---- reading text output ------------------------------------------------------------------------

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  return out;
}

inline std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

inline std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  const auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// One row of `shmctl ls`: KEY OWNER(pid + alive/dead) KIND BUFFER DEPTH BYTES PARKED AFTER
// [error: ...].
struct LsRow {
  std::string line;
  std::vector<std::string> w;  // the whitespace-separated words
  const std::string& key() const { return w.at(0); }
  long pid() const { return std::stol(w.at(1)); }
  const std::string& liveness() const { return w.at(2); }
  const std::string& kind() const { return w.at(3); }
  const std::string& buffer() const { return w.at(4); }
  std::uint64_t depth() const { return std::stoull(w.at(5)); }
  std::uint64_t bytes_used() const { return std::stoull(w.at(6).substr(0, w.at(6).find('/'))); }
  std::uint64_t capacity() const { return std::stoull(w.at(6).substr(w.at(6).find('/') + 1)); }
  std::uint64_t parked() const { return std::stoull(w.at(7)); }
  std::uint64_t after() const { return std::stoull(w.at(8)); }
  bool has_error() const { return line.find("error") != std::string::npos; }
};

// The rows of `shmctl ls` output by key (the header line, whose first word is KEY, skipped).
inline std::map<std::string, LsRow> ls_rows(const std::string& out) {
  std::map<std::string, LsRow> rows;
  for (const auto& line : lines_of(out)) {
    auto w = words_of(line);
    if (w.empty() || w[0] == "KEY") continue;
    const std::string k = w[0];
    rows[k] = LsRow{line, std::move(w)};
  }
  return rows;
}

// `shmctl show` output as field -> the rest of its line ("pushed" -> "100   (0.0/s)").
inline std::map<std::string, std::string> show_fields(const std::string& out) {
  std::map<std::string, std::string> f;
  for (const auto& line : lines_of(out)) {
    const auto t = trim(line);
    const auto sp = t.find_first_of(" \t");
    if (sp == std::string::npos) continue;
    f[t.substr(0, sp)] = trim(t.substr(sp));
  }
  return f;
}

// The first word of a show field as a number ("100   (20.0/s)" -> 100); ~0 if absent.
inline std::uint64_t show_number(const std::map<std::string, std::string>& f,
                                 const std::string& name) {
  auto it = f.find(name);
  if (it == f.end()) return ~0ull;
  const auto w = words_of(it->second);
  if (w.empty() || !std::isdigit(static_cast<unsigned char>(w[0][0]))) return ~0ull;
  return std::stoull(w[0]);
}

// The JSON port of `key` in an `ls --json` document, or null.
inline json json_port(const json& doc, const std::string& key) {
  if (!doc.is_object() || !doc.contains("ports") || !doc["ports"].is_array()) return nullptr;
  for (const auto& p : doc["ports"])
    if (p.is_object() && p.value("key", "") == key) return p;
  return nullptr;
}

// ---- processes ----------------------------------------------------------------------------------

// The segments of the namespace whose names start with `prefix` after "bloccs.<ns>/".
inline std::vector<std::string> segments_starting(const TestNamespace& ns, const std::string& prefix) {
  std::vector<std::string> out;
  const std::string full = "bloccs." + ns.name() + "/" + prefix;
  for (const auto& e : ns.leftovers())
    if (e.starts_with(full)) out.push_back(e);
  return out;
}

// True if the segment name shmctl printed (with or without "bloccs.<ns>/", a leading '/' or
// "/dev/shm/") names one of `names` (as ns.leftovers() gives them).
inline bool names_one_of(std::string printed, const std::vector<std::string>& names) {
  if (printed.starts_with("/dev/shm/")) printed = printed.substr(9);
  if (printed.starts_with("/")) printed = printed.substr(1);
  for (const auto& n : names)
    if (n == printed ||
        (n.ends_with(printed) && n.size() > printed.size() &&
         (n[n.size() - printed.size() - 1] == '/' || n[n.size() - printed.size() - 1] == '.')))
      return true;
  return false;
}

}  // namespace bloccs::test
