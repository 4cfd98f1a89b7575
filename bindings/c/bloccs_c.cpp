// SPDX-License-Identifier: Apache-2.0
// The C API (bloccs/bloccs.h) over the C++ one: handles own the C++ objects, errors become a
// code plus the thread's last message, and nothing thrown gets past an entry point.
#include "bloccs/bloccs.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bloccs/port.hpp"
#include "bloccs/version.hpp"

struct bloccs_port {
  bloccs::Port port;
};

struct bloccs_pusher {
  bloccs::Pusher pusher;
};

struct bloccs_loan {
  bloccs::Loan loan;
};

struct bloccs_message {
  bloccs::Message message;
};

namespace {

using bloccs::Errc;

thread_local std::string t_last_error;

// The C codes are Errc's, one up (0 is ok): checked at both ends of the list.
constexpr bloccs_errc to_c(Errc code) { return static_cast<bloccs_errc>(static_cast<int>(code) + 1); }
static_assert(to_c(Errc::timeout) == BLOCCS_TIMEOUT);
static_assert(to_c(Errc::no_producer) == BLOCCS_NO_PRODUCER);
static_assert(to_c(Errc::bad_loan) == BLOCCS_BAD_LOAN);
static_assert(BLOCCS_BAD_ARGUMENT == BLOCCS_BAD_LOAN + 1, "C-only codes follow Errc's");

bloccs_errc fail(bloccs_errc code, std::string message) {
  t_last_error = std::move(message);
  return code;
}

bloccs_errc fail(const bloccs::Error& e) { return fail(to_c(e.code), e.message); }

bloccs_errc status(const bloccs::Status& st) { return st ? BLOCCS_OK : fail(st.error()); }

bloccs_errc null_argument(const char* call, const char* what) {
  return fail(BLOCCS_BAD_ARGUMENT,
              std::string(call) + ": " + what + " is NULL; pass a valid pointer");
}

// Runs `body` (which returns a bloccs_errc) with every C++ exception turned into a code.
template <class F>
bloccs_errc guarded(const char* call, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(BLOCCS_OUT_OF_MEMORY, std::string(call) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(BLOCCS_SYSTEM_ERROR, std::string(call) + ": " + e.what());
  } catch (...) {
    return fail(BLOCCS_SYSTEM_ERROR, std::string(call) + ": an unknown exception");
  }
}

std::optional<bloccs::PortKey> to_key(const bloccs_key* key) {
  if (!key || !key->network || !key->node || !key->in_port) return std::nullopt;
  return bloccs::PortKey{key->network, key->node, key->in_port};
}

bloccs_errc bad_key(const char* call) {
  return fail(BLOCCS_BAD_ARGUMENT,
              std::string(call) + ": the key or one of its parts is NULL; give network, node "
                                  "and in_port");
}

bloccs::Meta to_meta(const bloccs_meta* meta) {
  bloccs::Meta m;
  if (!meta) return m;
  m.attempt = meta->attempt;
  for (std::size_t i = 0; i < meta->n_pairs && meta->pairs; ++i) {
    const bloccs_meta_pair& p = meta->pairs[i];
    m.values.emplace_back(std::string(p.key ? p.key : "", p.key ? p.key_len : 0),
                          std::string(p.value ? p.value : "", p.value ? p.value_len : 0));
  }
  return m;
}

std::span<const std::byte> to_bytes(const void* data, std::size_t size) {
  return {static_cast<const std::byte*>(data), data ? size : 0};
}

// -1: none; 0: now (an expired deadline); > 0: that far from now.
bloccs::Deadline to_deadline(std::int64_t timeout_ns) {
  if (timeout_ns < 0) return bloccs::kNoDeadline;
  return bloccs::Clock::now() + std::chrono::nanoseconds(timeout_ns);
}

}  // namespace

extern "C" {

const char* bloccs_errc_name(bloccs_errc code) {
  // A C caller may pass any int (a code of a newer library, garbage); in C++ a value outside
  // the enum's range must not be read as the enum, so its bytes are read as an int.
  static_assert(sizeof(bloccs_errc) == sizeof(int));
  int raw;
  std::memcpy(&raw, &code, sizeof raw);
  if (raw == BLOCCS_OK) return "ok";
  if (raw == BLOCCS_BAD_ARGUMENT) return "bad_argument";
  if (raw < BLOCCS_OK || raw > BLOCCS_BAD_ARGUMENT) return "unknown";
  return bloccs::errc_name(static_cast<Errc>(raw - 1));
}

const char* bloccs_last_error(void) { return t_last_error.c_str(); }

const char* bloccs_version(void) { return bloccs::version(); }

void bloccs_port_options_init(bloccs_port_options* options) {
  if (!options) return;
  const bloccs::PortOptions d;
  *options = {};
  options->buffer = d.buffer.value_or(0);
  options->max_payload = d.max_payload;
  options->typical_payload = d.typical_payload;
  options->single_pusher = d.single_pusher;
  options->max_pushers = d.max_pushers;
  options->mode = d.mode;
  options->receive_spin_ns = d.receive_spin.count();
  options->latency_histogram = d.latency_histogram;
}

bloccs_errc bloccs_port_start(const bloccs_key* key, const bloccs_port_options* options,
                              bloccs_port** port) {
  return guarded("bloccs_port_start", [&] {
    if (!port) return null_argument("bloccs_port_start", "port");
    *port = nullptr;
    auto k = to_key(key);
    if (!k) return bad_key("bloccs_port_start");
    bloccs_port_options o;
    bloccs_port_options_init(&o);
    if (options) o = *options;
    bloccs::PortOptions po;
    po.buffer = o.buffer ? std::optional<std::uint32_t>(o.buffer) : std::nullopt;
    po.max_payload = o.max_payload;
    po.typical_payload = o.typical_payload;
    po.single_pusher = o.single_pusher != 0;
    po.max_pushers = o.max_pushers;
    po.ns = o.ns ? o.ns : "";
    po.mode = static_cast<mode_t>(o.mode);
    po.group = o.group ? o.group : "";
    po.receive_spin = std::chrono::nanoseconds(o.receive_spin_ns < 0 ? 0 : o.receive_spin_ns);
    po.latency_histogram = o.latency_histogram != 0;
    auto started = bloccs::Port::start(*k, std::move(po));
    if (!started) return fail(started.error());
    *port = new bloccs_port{std::move(*started)};
    return BLOCCS_OK;
  });
}

void bloccs_port_stop(bloccs_port* port) { delete port; }  // ~Port stops it; noexcept

bloccs_errc bloccs_port_receive(bloccs_port* port, std::int64_t timeout_ns,
                                bloccs_message** message) {
  return guarded("bloccs_port_receive", [&] {
    if (!port) return null_argument("bloccs_port_receive", "port");
    if (!message) return null_argument("bloccs_port_receive", "message");
    *message = nullptr;
    if (timeout_ns == 0) {
      auto got = port->port.try_receive();
      if (!got) return fail(got.error());
      if (!*got) return fail(BLOCCS_TIMEOUT, "bloccs_port_receive: nothing is queued");
      *message = new bloccs_message{std::move(**got)};
      return BLOCCS_OK;
    }
    auto got = port->port.receive(to_deadline(timeout_ns));
    if (!got) return fail(got.error());
    *message = new bloccs_message{std::move(*got)};
    return BLOCCS_OK;
  });
}

const void* bloccs_message_data(const bloccs_message* m) {
  return m ? m->message.payload.data() : nullptr;
}
size_t bloccs_message_size(const bloccs_message* m) { return m ? m->message.payload.size() : 0; }
uint32_t bloccs_message_attempt(const bloccs_message* m) {
  return m ? m->message.meta.attempt : 0;
}
size_t bloccs_message_meta_size(const bloccs_message* m) {
  return m ? m->message.meta.values.size() : 0;
}

bloccs_errc bloccs_message_meta_pair(const bloccs_message* m, size_t index,
                                     bloccs_meta_pair* pair) {
  if (!m || !pair) return null_argument("bloccs_message_meta_pair", m ? "pair" : "message");
  const auto& values = m->message.meta.values;
  if (index >= values.size())
    return fail(BLOCCS_BAD_ARGUMENT, "bloccs_message_meta_pair: index " + std::to_string(index) +
                                         " past the " + std::to_string(values.size()) +
                                         " pairs; ask bloccs_message_meta_size");
  const auto& [k, v] = values[index];
  *pair = {k.data(), k.size(), v.data(), v.size()};
  return BLOCCS_OK;
}

void bloccs_message_free(bloccs_message* m) { delete m; }

bloccs_errc bloccs_port_receive_batch(bloccs_port* port, bloccs_visit visit, void* context,
                                      size_t max, std::int64_t timeout_ns, size_t* received) {
  return guarded("bloccs_port_receive_batch", [&] {
    if (received) *received = 0;
    if (!port) return null_argument("bloccs_port_receive_batch", "port");
    if (!visit) return null_argument("bloccs_port_receive_batch", "visit");
    auto each = [&](const bloccs::MessageView& m) {
      const bloccs_message_view view{m.payload.data(), m.payload.size(), m.meta.attempt(),
                                     m.meta.size(), &m};
      visit(context, &view);
    };
    auto n = timeout_ns == 0 ? port->port.try_receive_batch(each, max)
                             : port->port.receive_batch(each, max, to_deadline(timeout_ns));
    if (!n) return fail(n.error());
    if (received) *received = *n;
    if (*n == 0 && timeout_ns == 0)
      return fail(BLOCCS_TIMEOUT, "bloccs_port_receive_batch: nothing is queued");
    return BLOCCS_OK;
  });
}

bloccs_errc bloccs_view_meta_pair(const bloccs_message_view* view, size_t index,
                                  bloccs_meta_pair* pair) {
  if (!view || !view->internal_ || !pair)
    return null_argument("bloccs_view_meta_pair", pair ? "view" : "pair");
  const auto& m = *static_cast<const bloccs::MessageView*>(view->internal_);
  std::size_t i = 0;
  bool found = false;
  m.meta.for_each([&](std::string_view k, std::string_view v) {
    if (i++ == index) {
      *pair = {k.data(), k.size(), v.data(), v.size()};
      found = true;
    }
  });
  if (!found)
    return fail(BLOCCS_BAD_ARGUMENT, "bloccs_view_meta_pair: index " + std::to_string(index) +
                                         " past the view's pairs (n_pairs)");
  return BLOCCS_OK;
}

bloccs_errc bloccs_port_stats_get(const bloccs_port* port, bloccs_port_stats* stats) {
  return guarded("bloccs_port_stats_get", [&] {
    if (!port || !stats) return null_argument("bloccs_port_stats_get", port ? "stats" : "port");
    const bloccs::PortStats s = port->port.stats();
    const bloccs::QueueTimes& q = s.time_in_queue;
    auto ns = [](std::chrono::nanoseconds d) { return static_cast<std::uint64_t>(d.count()); };
    *stats = {s.depth,
              s.parked_pushers,
              s.pending_after,
              s.after_delivered,
              s.after_retries,
              s.links,
              s.refused,
              s.salvaged,
              s.lost_at_takeover,
              s.pushes_waited,
              ns(s.waited),
              ns(s.longest_wait),
              s.timed_out,
              s.no_producer_while_waiting,
              q.count,
              ns(q.total),
              ns(q.p50),
              ns(q.p90),
              ns(q.p99),
              ns(q.p999),
              ns(q.max)};
    return BLOCCS_OK;
  });
}

bloccs_errc bloccs_pusher_open(const char* ns, bloccs_pusher** pusher) {
  return guarded("bloccs_pusher_open", [&] {
    if (!pusher) return null_argument("bloccs_pusher_open", "pusher");
    *pusher = nullptr;
    auto opened = bloccs::Pusher::open(ns ? ns : "");
    if (!opened) return fail(opened.error());
    *pusher = new bloccs_pusher{std::move(*opened)};
    return BLOCCS_OK;
  });
}

void bloccs_pusher_close(bloccs_pusher* pusher) { delete pusher; }

bloccs_errc bloccs_pusher_push(bloccs_pusher* pusher, const bloccs_key* key, const void* data,
                               size_t size, const bloccs_meta* meta, std::int64_t timeout_ns) {
  return guarded("bloccs_pusher_push", [&] {
    if (!pusher) return null_argument("bloccs_pusher_push", "pusher");
    auto k = to_key(key);
    if (!k) return bad_key("bloccs_pusher_push");
    if (!data && size) return null_argument("bloccs_pusher_push", "data");
    const bloccs::Meta m = to_meta(meta);
    if (timeout_ns < 0) return status(pusher->pusher.push(*k, to_bytes(data, size), m));
    return status(pusher->pusher.push(*k, to_bytes(data, size), m, to_deadline(timeout_ns)));
  });
}

bloccs_errc bloccs_pusher_push_after(bloccs_pusher* pusher, const bloccs_key* key,
                                     const void* data, size_t size, const bloccs_meta* meta,
                                     std::uint64_t delay_ms) {
  return guarded("bloccs_pusher_push_after", [&] {
    if (!pusher) return null_argument("bloccs_pusher_push_after", "pusher");
    auto k = to_key(key);
    if (!k) return bad_key("bloccs_pusher_push_after");
    if (!data && size) return null_argument("bloccs_pusher_push_after", "data");
    return status(pusher->pusher.push_after(*k, to_bytes(data, size), to_meta(meta),
                                            std::chrono::milliseconds(delay_ms)));
  });
}

bloccs_errc bloccs_pusher_loan(bloccs_pusher* pusher, const bloccs_key* key, size_t bytes,
                               const bloccs_meta* meta, std::int64_t timeout_ns,
                               bloccs_loan** loan, void** data) {
  return guarded("bloccs_pusher_loan", [&] {
    if (!pusher) return null_argument("bloccs_pusher_loan", "pusher");
    if (!loan || !data) return null_argument("bloccs_pusher_loan", loan ? "data" : "loan");
    *loan = nullptr;
    *data = nullptr;
    auto k = to_key(key);
    if (!k) return bad_key("bloccs_pusher_loan");
    const bloccs::Meta m = to_meta(meta);
    auto got = timeout_ns < 0 ? pusher->pusher.loan(*k, bytes, m)
                              : pusher->pusher.loan(*k, bytes, m, to_deadline(timeout_ns));
    if (!got) return fail(got.error());
    *data = got->bytes().data();
    *loan = new bloccs_loan{std::move(*got)};
    return BLOCCS_OK;
  });
}

bloccs_errc bloccs_loan_commit(bloccs_loan* loan, size_t used) {
  return guarded("bloccs_loan_commit", [&] {
    if (!loan) return null_argument("bloccs_loan_commit", "loan");
    const bloccs_errc result = status(loan->loan.commit(used));
    delete loan;  // an over-long commit leaves the loan open: this aborts it
    return result;
  });
}

void bloccs_loan_abort(bloccs_loan* loan) { delete loan; }  // ~Loan aborts an open loan

bloccs_errc bloccs_push(const bloccs_key* key, const void* data, size_t size,
                        const bloccs_meta* meta) {
  return guarded("bloccs_push", [&] {
    auto k = to_key(key);
    if (!k) return bad_key("bloccs_push");
    if (!data && size) return null_argument("bloccs_push", "data");
    return status(bloccs::push(*k, to_bytes(data, size), to_meta(meta)));
  });
}

bloccs_errc bloccs_push_after(const bloccs_key* key, const void* data, size_t size,
                              const bloccs_meta* meta, std::uint64_t delay_ms) {
  return guarded("bloccs_push_after", [&] {
    auto k = to_key(key);
    if (!k) return bad_key("bloccs_push_after");
    if (!data && size) return null_argument("bloccs_push_after", "data");
    return status(bloccs::push_after(*k, to_bytes(data, size), to_meta(meta),
                                     std::chrono::milliseconds(delay_ms)));
  });
}

bloccs_errc bloccs_stop_on_signals(void) {
  return guarded("bloccs_stop_on_signals", [] { return status(bloccs::stop_on_signals()); });
}

int bloccs_stop_requested(void) { return bloccs::stop_requested() ? 1 : 0; }

void bloccs_request_stop(void) { bloccs::request_stop(); }

void bloccs_set_push_timeout(std::int64_t timeout_ms) {
  try {
    if (timeout_ms < 0)
      bloccs::set_push_timeout(std::nullopt);
    else
      bloccs::set_push_timeout(std::chrono::milliseconds(timeout_ms));
  } catch (...) {  // nothing crosses into C; set_push_timeout does not throw today
  }
}

}  // extern "C"
