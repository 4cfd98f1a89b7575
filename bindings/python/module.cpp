// SPDX-License-Identifier: Apache-2.0
// bloccs._bloccs: the Python binding of the port API (pybind11). The package bloccs
// (bindings/python/bloccs/__init__.py) re-exports it; its docstrings are the user's reference.
//
// The GIL is released whenever a call may wait (push, push_after, receive, loan), so a Python
// thread parked on a full port does not stop the others. Payloads are taken through the buffer
// protocol (bytes, bytearray, memoryview, numpy arrays: any C-contiguous buffer) without a
// copy on the Python side; received ones are bytes, or a memoryview of the ring itself inside
// receive_views. Errors are exceptions whose class is the error code (bloccs.Timeout, ...).
#include <Python.h>
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <span>
#include <utility>
#include <vector>

#include "bloccs/node.hpp"
#include "bloccs/port.hpp"
#include "bloccs/version.hpp"

namespace py = pybind11;

// Outputs holds loans (move-only) in a vector, which std::is_copy_constructible cannot see;
// pybind11 must not try to copy one (Python only ever gets the handler's, by reference).
template <>
struct pybind11::detail::is_copy_constructible<bloccs::Outputs> : std::false_type {};

namespace {

using bloccs::Errc;

constexpr int kCodes = static_cast<int>(Errc::bad_loan) + 1;

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}
// bloccs.Error and one subclass per code, made at import (see PYBIND11_MODULE).
PyObject* g_error = nullptr;
std::array<PyObject*, kCodes> g_errors{};

// A bloccs::Error on its way to Python, where the translator raises it as its class.
struct Raised {
  bloccs::Error error;
};

[[noreturn]] void raise(const bloccs::Error& e) { throw Raised{e}; }

template <class T>
T take(bloccs::Result<T>&& r) {
  if (!r) raise(r.error());
  return std::move(*r);
}

void check(const bloccs::Status& st) {
  if (!st) raise(st.error());
}

// Seconds (None: wait as long as it takes; 0: do not wait) -> a deadline.
bloccs::Deadline deadline(std::optional<double> timeout) {
  if (!timeout) return bloccs::kNoDeadline;
  if (std::isnan(*timeout) || *timeout < 0)
    throw py::value_error("timeout must be None or a number of seconds >= 0");
  if (*timeout > 1e9) return bloccs::kNoDeadline;
  return bloccs::Clock::now() +
         std::chrono::duration_cast<bloccs::Clock::duration>(std::chrono::duration<double>(*timeout));
}

// The payload of a push: a C-contiguous buffer held for the call (PyBUF_SIMPLE refuses a
// strided one, with Python's own BufferError).
class Payload {
 public:
  explicit Payload(const py::handle& object) {
    if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~Payload() { PyBuffer_Release(&view_); }
  Payload(const Payload&) = delete;
  Payload& operator=(const Payload&) = delete;
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
};

bloccs::PortKey to_key(const py::tuple& key) {
  if (key.size() != 3)
    throw py::value_error("a port key is a tuple (network, node, in_port), not " +
                          std::to_string(key.size()) + " items");
  return {key[0].cast<std::string>(), key[1].cast<std::string>(), key[2].cast<std::string>()};
}

bloccs::Meta to_meta(const std::optional<py::dict>& meta, std::uint32_t attempt) {
  bloccs::Meta m;
  m.attempt = attempt;
  if (meta)
    for (auto [k, v] : *meta) m.set(py::str(k).cast<std::string>(), py::str(v).cast<std::string>());
  return m;
}

py::dict meta_dict(const std::vector<std::pair<std::string, std::string>>& values) {
  py::dict d;
  for (const auto& [k, v] : values) d[py::str(k)] = py::str(v);
  return d;
}

// A received message, copied out of the ring.
struct Message {
  py::bytes payload;
  py::dict meta;
  std::uint32_t attempt = 0;
};

Message to_python(bloccs::Message&& m) {
  return {py::bytes(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()),
          meta_dict(m.meta.values), m.meta.attempt};
}

// A message in place, for the span of a receive_views callback.
struct View {
  py::memoryview payload;
  py::dict meta;
  std::uint32_t attempt = 0;
};

struct PyPort {
  bloccs::Port port;
};

struct PyPusher {
  bloccs::Pusher pusher;
};

std::uint32_t snake_to_index(Errc code) { return static_cast<std::uint32_t>(code); }

std::string class_name(Errc code) {  // "no_producer" -> "NoProducer"
  std::string out;
  bool up = true;
  for (const char* c = bloccs::errc_name(code); *c; ++c) {
    if (*c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(*c))) : *c;
    up = false;
  }
  return out;
}

// A Python node's message, for the span of its handler call (bloccs::Delivery).
struct Delivery {
  std::string port;
  py::memoryview payload;
  py::dict meta;
  std::uint32_t attempt = 0;
};

// Data a handler emits: any C-contiguous buffer, or a str (sent as UTF-8).
template <class Send>
void send_data(const py::object& data, Send&& send) {
  if (py::isinstance<py::str>(data)) {
    const std::string text = data.cast<std::string>();
    send(bloccs::bytes(text));
    return;
  }
  const Payload payload(data);
  send(payload.bytes());
}

// Runs a Python handler for one delivery with the GIL held; what it raises fails the message
// (the node's retry policy and dead letters take it from there), as a C++ handler's Error does.
bloccs::Status call_handler(const py::function& handler, const bloccs::Delivery& in,
                            bloccs::Outputs& out) {
  py::gil_scoped_acquire locked;
  Delivery d{std::string(in.port),
             py::memoryview::from_memory(in.payload.data(),
                                         static_cast<py::ssize_t>(in.payload.size())),
             meta_dict(in.meta.copy().values), in.meta.attempt()};
  bloccs::Status result;
  try {
    handler(py::cast(&d, py::return_value_policy::reference),
            py::cast(&out, py::return_value_policy::reference));
  } catch (py::error_already_set& e) {
    // The error text a dead letter carries: "ValueError: what it said", no traceback.
    result = bloccs::Error{Errc::bad_config, py::str(e.type().attr("__name__")).cast<std::string>() +
                                                 ": " + py::str(e.value()).cast<std::string>()};
  } catch (const Raised& r) {
    result = r.error;  // an emit that failed
  }
  PyObject* released = PyObject_CallMethod(d.payload.ptr(), "release", nullptr);
  if (!released) PyErr_Clear();  // a kept export; the handler was told not to
  Py_XDECREF(released);
  return result;
}

}  // namespace

PYBIND11_MODULE(_bloccs, m) {
  m.doc() = "bloccs: lock-free shared-memory ports between processes (the C++ library's binding)";
  m.attr("__version__") = bloccs::version();

  // The exceptions: bloccs.Error (with .code, the error's name), and a subclass per code;
  // Timeout is also a TimeoutError.
  g_error = PyErr_NewExceptionWithDoc("bloccs.Error",
                                      "A bloccs call failed; .code names why (e.g. 'timeout').",
                                      PyExc_Exception, nullptr);
  m.attr("Error") = py::handle(g_error);
  for (int i = 0; i < kCodes; ++i) {
    const Errc code = static_cast<Errc>(i);
    const std::string name = class_name(code);
    py::object bases = code == Errc::timeout
                           ? py::object(py::make_tuple(py::handle(g_error), py::handle(PyExc_TimeoutError)))
                           : py::reinterpret_borrow<py::object>(g_error);
    g_errors[i] = PyErr_NewException(("bloccs." + name).c_str(), bases.ptr(), nullptr);
    m.attr(name.c_str()) = py::handle(g_errors[i]);
  }
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Raised& r) {
      PyObject* type = g_errors[snake_to_index(r.error.code)];
      py::object exc = py::reinterpret_steal<py::object>(
          PyObject_CallFunction(type, "s", r.error.message.c_str()));
      if (!exc) return;  // the call's own error is set
      exc.attr("code") = bloccs::errc_name(r.error.code);
      PyErr_SetObject(type, exc.ptr());
    }
  });

  py::class_<Message>(m, "Message", "A received message: payload (bytes), meta (dict), attempt.")
      .def_readonly("payload", &Message::payload)
      .def_readonly("meta", &Message::meta)
      .def_readonly("attempt", &Message::attempt)
      .def("__repr__", [](const Message& msg) {
        return "<bloccs.Message " + std::to_string(py::len(msg.payload)) + " bytes, attempt " +
               std::to_string(msg.attempt) + ">";
      });

  py::class_<View>(m, "View",
                   "A message in place in the port's ring, valid only inside the receive_views "
                   "callback: payload is a read-only memoryview released when the callback "
                   "returns (copy it, bytes(view.payload), to keep it).")
      .def_readonly("payload", &View::payload)
      .def_readonly("meta", &View::meta)
      .def_readonly("attempt", &View::attempt);

  py::class_<bloccs::QueueTimes>(m, "QueueTimes",
                                 "Time in queue, push to receipt, in seconds (within 3.2%).")
      .def_readonly("count", &bloccs::QueueTimes::count)
      .def_property_readonly("total", [](const bloccs::QueueTimes& q) { return seconds(q.total); })
      .def_property_readonly("p50", [](const bloccs::QueueTimes& q) { return seconds(q.p50); })
      .def_property_readonly("p90", [](const bloccs::QueueTimes& q) { return seconds(q.p90); })
      .def_property_readonly("p99", [](const bloccs::QueueTimes& q) { return seconds(q.p99); })
      .def_property_readonly("p999", [](const bloccs::QueueTimes& q) { return seconds(q.p999); })
      .def_property_readonly("max", [](const bloccs::QueueTimes& q) { return seconds(q.max); });

  py::class_<bloccs::PortStats>(m, "PortStats")
      .def_readonly("depth", &bloccs::PortStats::depth)
      .def_readonly("parked_pushers", &bloccs::PortStats::parked_pushers)
      .def_readonly("pending_after", &bloccs::PortStats::pending_after)
      .def_readonly("after_delivered", &bloccs::PortStats::after_delivered)
      .def_readonly("after_retries", &bloccs::PortStats::after_retries)
      .def_readonly("links", &bloccs::PortStats::links)
      .def_readonly("refused", &bloccs::PortStats::refused)
      .def_readonly("salvaged", &bloccs::PortStats::salvaged)
      .def_readonly("lost_at_takeover", &bloccs::PortStats::lost_at_takeover)
      .def_readonly("pushes_waited", &bloccs::PortStats::pushes_waited)
      .def_property_readonly("waited", [](const bloccs::PortStats& s) { return seconds(s.waited); })
      .def_property_readonly("longest_wait",
                             [](const bloccs::PortStats& s) { return seconds(s.longest_wait); })
      .def_readonly("timed_out", &bloccs::PortStats::timed_out)
      .def_readonly("no_producer_while_waiting", &bloccs::PortStats::no_producer_while_waiting)
      .def_readonly("time_in_queue", &bloccs::PortStats::time_in_queue);

  py::class_<PyPort>(m, "Port", "The owner of an input port: its only consumer.")
      .def_static(
          "start",
          [](const py::tuple& key, std::optional<std::uint32_t> buffer, std::uint32_t max_payload,
             std::uint32_t typical_payload, bool single_pusher, std::uint32_t max_pushers,
             std::optional<std::string> ns, std::uint32_t mode, std::optional<std::string> group,
             double receive_spin, bool latency_histogram) {
            bloccs::PortOptions o;
            o.buffer = buffer;
            o.max_payload = max_payload;
            o.typical_payload = typical_payload;
            o.single_pusher = single_pusher;
            o.max_pushers = max_pushers;
            o.ns = ns.value_or("");
            o.mode = static_cast<mode_t>(mode);
            o.group = group.value_or("");
            o.receive_spin = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::duration<double>(receive_spin));
            o.latency_histogram = latency_histogram;
            const bloccs::PortKey k = to_key(key);
            py::gil_scoped_release unlocked;  // a take-over may read a dead owner's rings
            return PyPort{take(bloccs::Port::start(k, std::move(o)))};
          },
          py::arg("key"), py::arg("buffer") = 1024, py::arg("max_payload") = 4096,
          py::arg("typical_payload") = 256, py::arg("single_pusher") = false,
          py::arg("max_pushers") = 64, py::arg("ns") = py::none(), py::arg("mode") = 0600,
          py::arg("group") = py::none(), py::arg("receive_spin") = 50e-6,
          py::arg("latency_histogram") = true,
          "Starts the port `key` = (network, node, in_port); buffer=None is unbounded.")
      .def(
          "receive",
          [](PyPort& self, std::optional<double> timeout) {
            const bloccs::Deadline until = deadline(timeout);
            std::optional<bloccs::Message> got;
            {
              py::gil_scoped_release unlocked;
              if (timeout && *timeout == 0) {
                auto r = self.port.try_receive();
                if (!r) raise(r.error());
                if (!*r) raise({Errc::timeout, "receive: nothing is queued"});
                got = std::move(**r);
              } else {
                got = take(self.port.receive(until));
              }
            }
            return to_python(std::move(*got));
          },
          py::arg("timeout") = py::none(),
          "Takes one message (a copy); waits up to `timeout` seconds (None: as long as it "
          "takes; 0: not at all) and raises bloccs.Timeout when none came.")
      .def(
          "receive_batch",
          [](PyPort& self, std::size_t max, std::optional<double> timeout) {
            const bloccs::Deadline until = deadline(timeout);
            std::vector<bloccs::Message> got;
            {
              py::gil_scoped_release unlocked;
              auto copy = [&](const bloccs::MessageView& v) { got.push_back(v.copy()); };
              auto n = timeout && *timeout == 0 ? self.port.try_receive_batch(copy, max)
                                                : self.port.receive_batch(copy, max, until);
              if (!n) raise(n.error());
            }
            std::vector<Message> out;
            out.reserve(got.size());
            for (auto& msg : got) out.push_back(to_python(std::move(msg)));
            return out;
          },
          py::arg("max") = 64, py::arg("timeout") = py::none(),
          "Up to `max` messages (copies), waiting up to `timeout` for the first; [] when "
          "timeout=0 finds none.")
      .def(
          "receive_views",
          [](PyPort& self, const std::function<void(View&)>& fn, std::size_t max,
             std::optional<double> timeout) {
            const bloccs::Deadline until = deadline(timeout);
            std::optional<py::error_already_set> failed;
            auto visit = [&](const bloccs::MessageView& v) {
              py::gil_scoped_acquire locked;
              if (failed) return;  // the rest of the batch is released unseen by Python
              View view{py::memoryview::from_memory(v.payload.data(),
                                                    static_cast<py::ssize_t>(v.payload.size())),
                        meta_dict(v.meta.copy().values), v.meta.attempt()};
              try {
                fn(view);
              } catch (py::error_already_set& e) {
                failed = std::move(e);
              }
              // The ring's bytes are reused once the batch is released: no view outlives it.
              PyObject* released = PyObject_CallMethod(view.payload.ptr(), "release", nullptr);
              if (!released) {  // a kept export still points at the ring: raise that
                if (failed)
                  PyErr_Clear();
                else
                  failed = py::error_already_set();
              }
              Py_XDECREF(released);
            };
            std::size_t n = 0;
            {
              py::gil_scoped_release unlocked;
              auto r = timeout && *timeout == 0 ? self.port.try_receive_batch(visit, max)
                                                : self.port.receive_batch(visit, max, until);
              if (!r) raise(r.error());
              n = *r;
            }
            if (failed) throw std::move(*failed);
            return n;
          },
          py::arg("fn"), py::arg("max") = 64, py::arg("timeout") = py::none(),
          "Calls fn(view) for up to `max` messages in place (no copy), then releases them "
          "together; returns how many. view.payload is valid during the call only.")
      .def("stats", [](const PyPort& self) { return self.port.stats(); })
      .def_property_readonly("key", [](const PyPort& self) -> py::tuple {
        const bloccs::PortKey& k = self.port.key();
        return py::make_tuple(k.network_id, k.node_id, k.in_port);
      })
      .def("stop", [](PyPort& self) {
        py::gil_scoped_release unlocked;
        self.port.stop();
      }, "Stops the port: the key is unregistered and its segments removed.")
      .def("__enter__", [](PyPort& self) -> PyPort& { return self; })
      .def("__exit__", [](PyPort& self, py::args) {
        py::gil_scoped_release unlocked;
        self.port.stop();
      })
      .def("__iter__", [](PyPort& self) -> PyPort& { return self; })
      .def("__next__", [](PyPort& self) {
        std::optional<bloccs::Message> got;
        {
          py::gil_scoped_release unlocked;
          auto r = self.port.receive();
          if (!r && r.code() == Errc::stopping) throw py::stop_iteration();
          got = take(std::move(r));
        }
        return to_python(std::move(*got));
      });

  py::class_<PyPusher>(m, "Pusher", "Pushes into ports by key; one per thread.")
      .def(py::init([](std::optional<std::string> ns) {
             return PyPusher{take(bloccs::Pusher::open(ns.value_or("")))};
           }),
           py::arg("ns") = py::none())
      .def(
          "push",
          [](PyPusher& self, const py::tuple& key, const py::object& data,
             std::optional<py::dict> meta, std::uint32_t attempt, std::optional<double> timeout) {
            const bloccs::PortKey k = to_key(key);
            const bloccs::Meta md = to_meta(meta, attempt);
            const Payload payload(data);
            const bool bounded = timeout.has_value();
            const bloccs::Deadline until = deadline(timeout);
            py::gil_scoped_release unlocked;
            check(bounded ? self.pusher.push(k, payload.bytes(), md, until)
                          : self.pusher.push(k, payload.bytes(), md));
          },
          py::arg("key"), py::arg("data"), py::arg("meta") = py::none(), py::arg("attempt") = 0,
          py::arg("timeout") = py::none(),
          "Pushes `data` (any C-contiguous buffer) into `key`'s port; parks while it is full, "
          "up to `timeout` seconds (None: the process's push timeout, else for ever).")
      .def(
          "push_after",
          [](PyPusher& self, const py::tuple& key, const py::object& data, double delay,
             std::optional<py::dict> meta, std::uint32_t attempt) {
            if (!(delay >= 0)) throw py::value_error("delay must be a number of seconds >= 0");
            const bloccs::PortKey k = to_key(key);
            const bloccs::Meta md = to_meta(meta, attempt);
            const Payload payload(data);
            const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(delay * 1000));
            py::gil_scoped_release unlocked;
            check(self.pusher.push_after(k, payload.bytes(), md, ms));
          },
          py::arg("key"), py::arg("data"), py::arg("delay"), py::arg("meta") = py::none(),
          py::arg("attempt") = 0,
          "Hands the message to the port's timer, which enqueues it `delay` seconds from now.");

  py::class_<Delivery>(m, "Delivery",
                       "A message as a node's handler sees it, valid during the call only: port, "
                       "payload (a read-only memoryview of the ring), meta (dict), attempt.")
      .def_readonly("port", &Delivery::port)
      .def_readonly("payload", &Delivery::payload)
      .def_readonly("meta", &Delivery::meta)
      .def_readonly("attempt", &Delivery::attempt)
      .def_property_readonly("text", [](const Delivery& d) {
        const py::buffer_info info = py::buffer(d.payload).request();
        return py::str(static_cast<const char*>(info.ptr), static_cast<std::size_t>(info.size));
      });

  py::class_<bloccs::Outputs>(m, "Outputs", "Where a handler emits; sent when it returns.")
      .def(
          "emit",
          [](bloccs::Outputs& out, std::string_view output, const py::object& data,
             std::optional<py::dict> meta, std::uint32_t attempt) {
            const bloccs::Meta md = to_meta(meta, attempt);
            send_data(data, [&](std::span<const std::byte> b) { check(out.emit(output, b, md)); });
          },
          py::arg("output"), py::arg("data"), py::arg("meta") = py::none(),
          py::arg("attempt") = 0,
          "Emits `data` (bytes-like or str) on `output`; sent to every port it is wired to once "
          "the handler returns, nothing of it if the handler raises.");

  py::class_<bloccs::Node>(m, "Node", "A pipeline node (bloccs/node.hpp), run by `bloccs run`.")
      .def_static(
          "from_environment",
          [](std::optional<std::string> ns) {
            bloccs::NodeOptions o;
            o.ns = ns.value_or("");
            return take(bloccs::Node::from_environment(std::move(o)));
          },
          py::arg("ns") = py::none(),
          "The node the launcher started this process as ($BLOCCS_PIPELINE, $BLOCCS_NODE).")
      .def(
          "on_message",
          [](bloccs::Node& node, py::function handler) {
            node.on_message([handler](const bloccs::Delivery& in, bloccs::Outputs& out) {
              return call_handler(handler, in, out);
            });
            return handler;
          },
          "Sets the handler of every input port: handler(msg, out). Usable as a decorator. "
          "Raising fails the message: it is retried, then dead-lettered.")
      .def(
          "on",
          [](bloccs::Node& node, std::string port) {
            return py::cpp_function([&node, port](py::function handler) {
              node.on(port, [handler](const bloccs::Delivery& in, bloccs::Outputs& out) {
                return call_handler(handler, in, out);
              });
              return handler;
            });
          },
          py::arg("port"), py::keep_alive<0, 1>(),
          "@node.on(\"port\"): the handler of one input port.")
      .def(
          "run",
          [](bloccs::Node& node) {
            py::gil_scoped_release unlocked;  // handlers take it back for their call
            return node.run();
          },
          "Handles messages until the launcher stops the node; returns the exit status.")
      .def(
          "emit",
          [](bloccs::Node& node, std::string_view output, const py::object& data,
             std::optional<py::dict> meta, std::uint32_t attempt) {
            const bloccs::Meta md = to_meta(meta, attempt);
            send_data(data, [&](std::span<const std::byte> b) {
              py::gil_scoped_release unlocked;  // parks while a target port is full
              check(node.emit(output, b, md));
            });
          },
          py::arg("output"), py::arg("data"), py::arg("meta") = py::none(),
          py::arg("attempt") = 0, "A source's emit: sent at once (parks while a target is full).")
      .def("stopping", &bloccs::Node::stopping, "True once the node was asked to stop.")
      .def("stop", &bloccs::Node::stop)
      .def_property_readonly("name", [](const bloccs::Node& node) { return node.spec().id; })
      .def_property_readonly("network", &bloccs::Node::network)
      .def("counters", [](const bloccs::Node& node) {
        const bloccs::NodeCounters c = node.counters();
        py::dict d;
        d["received"] = c.received;
        d["handled"] = c.handled;
        d["failed"] = c.failed;
        d["retried"] = c.retried;
        d["dead_lettered"] = c.dead_lettered;
        d["emitted"] = c.emitted;
        d["lost"] = c.lost;
        d["salvaged"] = c.salvaged;
        d["lost_at_takeover"] = c.lost_at_takeover;
        return d;
      });

  m.def("stop_on_signals", [] { check(bloccs::stop_on_signals()); },
        "SIGINT and SIGTERM end every wait with bloccs.Stopping instead of killing the process.");
  m.def("stop_requested", &bloccs::stop_requested);
  m.def("request_stop", &bloccs::request_stop);
}
