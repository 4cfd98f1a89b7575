// SPDX-License-Identifier: Apache-2.0
// Errors as values: every fallible bloccs call returns Result<T>.
//
// A Result holds either a value or an Error. An Error carries a code a caller can switch on and a
// message a person can act on: what was wrong and what to do. Nothing on the push/pop path throws.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

enum class Errc {
  timeout,            // the deadline passed; nothing was enqueued (or received)
  payload_too_large,  // payload exceeds the ring's max_payload
  bad_name,           // namespace or segment name has a bad length or character
  bad_config,         // ring/segment options out of range
  already_exists,     // a segment of that name exists; exclusive create refused
  not_found,          // no segment of that name
  permission_denied,  // segment owned by another user or with unsafe mode
  segment_invalid,    // size, magic or checksum wrong: not a bloccs segment, or damaged
  version_mismatch,   // a bloccs segment of another layout version
  wrong_kind,         // the segment holds something else (e.g. a registry, not a ring)
  not_ready,          // the segment's creator has not finished initialising it
  corrupt,            // a length or offset read from shared memory is out of range
  pusher_limit,       // every pusher slot is held by a live process (or SPSC already has one)
  owner_dead,         // the ring's consumer process is gone
  buffer_too_small,   // the caller's buffer cannot hold the next message (it stays queued)
  wrong_process,      // a handle used in a child forked after it was opened
  registry_full,      // every slot of the namespace's registry holds a live port
  system_error,       // an OS call failed; the message names it and errno
  no_producer,        // no live owner holds the port's key (never started, stopped, or dead)
  closed,             // the ring's owner closed it (the port stopped); nothing was enqueued
  bad_meta,           // meta over its limits (bloccs/meta.hpp); nothing was enqueued
  out_of_memory,      // shared memory (/dev/shm) is full; nothing was enqueued
  stopping,           // the process was asked to stop (stop_on_signals); the wait ended
  bad_loan,           // a loan committed past its size, or used after it ended
};

// A stable name for each code, for logs and tests.
constexpr const char* errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::timeout:
      return "timeout";
    case Errc::payload_too_large:
      return "payload_too_large";
    case Errc::bad_name:
      return "bad_name";
    case Errc::bad_config:
      return "bad_config";
    case Errc::already_exists:
      return "already_exists";
    case Errc::not_found:
      return "not_found";
    case Errc::permission_denied:
      return "permission_denied";
    case Errc::segment_invalid:
      return "segment_invalid";
    case Errc::version_mismatch:
      return "version_mismatch";
    case Errc::wrong_kind:
      return "wrong_kind";
    case Errc::not_ready:
      return "not_ready";
    case Errc::corrupt:
      return "corrupt";
    case Errc::pusher_limit:
      return "pusher_limit";
    case Errc::owner_dead:
      return "owner_dead";
    case Errc::buffer_too_small:
      return "buffer_too_small";
    case Errc::wrong_process:
      return "wrong_process";
    case Errc::registry_full:
      return "registry_full";
    case Errc::system_error:
      return "system_error";
    case Errc::no_producer:
      return "no_producer";
    case Errc::closed:
      return "closed";
    case Errc::bad_meta:
      return "bad_meta";
    case Errc::out_of_memory:
      return "out_of_memory";
    case Errc::stopping:
      return "stopping";
    case Errc::bad_loan:
      return "bad_loan";
  }
  return "unknown";
}

struct Error {
  Errc code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design, like std::expected
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  T& operator*() & { return value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }
  Errc code() const { return error().code; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;  // success: nothing to build, nothing to destroy (the push/pop fast path)
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  Error&& error() && {
    assert(!ok());
    return std::move(*error_);
  }
  Errc code() const { return error().code; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace bloccs
#pragma GCC visibility pop
