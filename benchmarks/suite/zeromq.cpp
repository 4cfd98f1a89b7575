// SPDX-License-Identifier: Apache-2.0
// ZeroMQ as its users run it between processes of one host: a PUSH socket per sender connected
// to the receiver's PULL socket over ipc://, libzmq 4.3 (Debian libzmq3-dev).
//   zmq-ipc  the receiver binds, senders connect; each sender's send high-water mark is the
//            spec's capacity, so a sender blocks in zmq_send once that many wait in it. The
//            receiver's mark is 0 (no bound): its I/O thread reads whatever arrives, so a slow
//            receiver holds senders back only once its memory does not.
//            receive_some takes what is queued with ZMQ_DONTWAIT after a blocking first.
// Closing a sender loses the tail of its messages unless something follows them (libzmq 4.3.4,
// also its master; libzmq issues #1922, #3774): the I/O thread writes in batches of up to
// 8192 bytes (out_batch_size), and once it has taken the last message from the socket's queue
// into a batch, the close completes, even with ZMQ_LINGER -1, and destroys the connection
// with whatever of that batch the kernel did not take yet (its buffer is full whenever the
// receiver reads more slowly than the sender writes: under load). Measured here: the last 56 of
// a sender's 3000 64-byte messages (3696 bytes) lost, and the receiver waiting for them for
// ever. So finish() sends one more message of at least 8192 bytes first, of a size no message
// of the channel has, which the receiver skips: the batch the close ends with then holds none
// of the channel's messages. Like any queued message, it holds the close until the receiver
// has taken it: a receiver stays open until its senders have finished (the suite's do).
// The endpoint is a Linux abstract socket ("ipc://@bloccs-bench-<ns>-<name>"): it has no file,
// so nothing can be left behind and no name needs unlinking (a connect is asynchronous: a file
// removed before the I/O thread gets to it would leave the sender connecting for ever).
// Each end makes its own context in the process that uses it: a context's I/O thread does not
// survive fork(). A sender's finish() closes it with its messages still queued and waits until
// the I/O thread has handed them all to the kernel.
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {
namespace {

// The flush message finish() sends last: at least libzmq's out_batch_size (8192 bytes), so the
// I/O thread's final batch holds nothing else (see the top), and never the channel's size.
constexpr std::size_t kOutBatchBytes = 8192;
constexpr std::size_t flush_bytes(std::size_t bytes) {
  return bytes == kOutBatchBytes ? kOutBatchBytes + 1 : kOutBatchBytes;
}

Error zmq_failure(std::string_view what, std::string_view todo) {
  const int err = zmq_errno();
  return {Errc::system_error,
          "zmq-ipc: " + std::string(what) + ": " + zmq_strerror(err) + "; " + std::string(todo)};
}

// A context and one socket of it, closed and terminated together. `linger_ms` bounds how long
// closing waits for queued messages to leave (-1: until they have).
class Socket {
 public:
  // A PUSH socket's send high-water mark is `hwm`; a PULL's receive mark is 0, none (see the
  // top).
  static Result<Socket> make(int type, int hwm) {
    Socket s;
    s.ctx_ = zmq_ctx_new();
    if (!s.ctx_) return zmq_failure("zmq_ctx_new", "is the process out of file descriptors?");
    s.sock_ = zmq_socket(s.ctx_, type);
    if (!s.sock_) return zmq_failure("zmq_socket", "is the process out of file descriptors?");
    const int mark = type == ZMQ_PUSH ? hwm : 0;
    if (zmq_setsockopt(s.sock_, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, &mark, sizeof mark) !=
        0)
      return zmq_failure("setting the high-water mark", "is the capacity in range?");
    return s;
  }
  Socket() = default;
  Socket(Socket&& o) noexcept
      : ctx_(std::exchange(o.ctx_, nullptr)), sock_(std::exchange(o.sock_, nullptr)) {}
  Socket& operator=(Socket&&) = delete;
  ~Socket() { close(0); }

  void* get() const noexcept { return sock_; }
  // Closes the socket, waiting up to `linger_ms` for what it queued, and ends the context.
  void close(int linger_ms) noexcept {
    if (sock_) {
      zmq_setsockopt(sock_, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
      zmq_close(std::exchange(sock_, nullptr));
    }
    if (ctx_) {
      while (zmq_ctx_term(ctx_) != 0 && zmq_errno() == EINTR) {
      }
      ctx_ = nullptr;
    }
  }

 private:
  void* ctx_ = nullptr;
  void* sock_ = nullptr;
};

class ZmqReceiver final : public Receiver {
 public:
  ZmqReceiver(Socket socket, std::size_t bytes) : socket_(std::move(socket)), bytes_(bytes) {}

  Status receive(std::span<std::byte> out) override { return take(out, 0); }

  Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) override {
    if (auto st = take(scratch, 0); !st) return std::move(st).error();
    std::size_t n = 1;
    while (n < max) {
      Status st = take(scratch, ZMQ_DONTWAIT);
      if (!st && st.code() == Errc::timeout) break;  // nothing more queued
      if (!st) return std::move(st).error();
      ++n;
    }
    return n;
  }

 private:
  // One message into `out`; Errc::timeout if `flags` says not to wait and none is queued.
  Status take(std::span<std::byte> out, int flags) {
    if (out.size() < bytes_)
      return Error{Errc::buffer_too_small, "zmq-ipc: a buffer smaller than the messages"};
    for (;;) {
      // As zmq_recv does it, but a sender's flush message (see the top) is skipped before it
      // is copied: `out` keeps the last message taken.
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      if (zmq_msg_recv(&msg, socket_.get(), flags) >= 0) {
        const std::size_t n = zmq_msg_size(&msg);
        if (n == bytes_) std::memcpy(out.data(), zmq_msg_data(&msg), n);
        zmq_msg_close(&msg);
        if (n == bytes_) return {};
        if (n == flush_bytes(bytes_)) continue;  // a sender finished
        return Error{Errc::corrupt, "zmq-ipc: a message of " + std::to_string(n) +
                                        " bytes arrived on a channel of " + std::to_string(bytes_) +
                                        "-byte messages"};
      }
      const int err = zmq_errno();
      zmq_msg_close(&msg);
      if (err == EINTR) continue;
      if (err == EAGAIN) return Error{Errc::timeout, "zmq-ipc: nothing queued"};
      errno = err;
      return zmq_failure("zmq_msg_recv", "was the socket closed?");
    }
  }

  Socket socket_;
  std::size_t bytes_;
};

class ZmqSender final : public Sender {
 public:
  ZmqSender(Socket socket, std::size_t bytes) : socket_(std::move(socket)), bytes_(bytes) {}

  Status send(std::span<const std::byte> message) override {
    if (message.size() != bytes_)
      return Error{Errc::payload_too_large, "zmq-ipc: a message of " +
                                                std::to_string(message.size()) +
                                                " bytes on a channel of " + std::to_string(bytes_) +
                                                "-byte messages; send exactly that many bytes"};
    for (;;) {  // blocks at the high-water mark
      if (zmq_send(socket_.get(), message.data(), message.size(), 0) >= 0) return {};
      if (zmq_errno() != EINTR) return zmq_failure("zmq_send", "was the socket closed?");
    }
  }

  Status finish() override {
    // The flush message (see the top): what the close may drop of the last batch is its bytes.
    const std::vector<std::byte> flush(flush_bytes(bytes_));
    for (;;) {
      if (zmq_send(socket_.get(), flush.data(), flush.size(), 0) >= 0) break;
      if (zmq_errno() != EINTR) return zmq_failure("zmq_send", "was the socket closed?");
    }
    socket_.close(-1);  // returns once every queued message has left for the receiver
    return {};
  }

 private:
  Socket socket_;
  std::size_t bytes_;
};

class ZmqChannel final : public Channel {
 public:
  explicit ZmqChannel(const ChannelSpec& spec)
      : endpoint_("ipc://@bloccs-bench-" + spec.ns + "-" + spec.name),
        bytes_(spec.bytes),
        hwm_(static_cast<int>(spec.capacity)) {}

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    auto s = Socket::make(ZMQ_PULL, hwm_);
    if (!s) return std::move(s).error();
    if (zmq_bind(s->get(), endpoint_.c_str()) != 0)
      return zmq_failure("binding " + endpoint_, "is another run using the name?");
    return std::unique_ptr<Receiver>(std::make_unique<ZmqReceiver>(std::move(s).value(), bytes_));
  }

  Result<std::unique_ptr<Sender>> open_sender() override {
    auto s = Socket::make(ZMQ_PUSH, hwm_);
    if (!s) return std::move(s).error();
    if (zmq_connect(s->get(), endpoint_.c_str()) != 0)
      return zmq_failure("connecting to " + endpoint_, "is the endpoint well formed?");
    return std::unique_ptr<Sender>(std::make_unique<ZmqSender>(std::move(s).value(), bytes_));
  }

 private:
  std::string endpoint_;
  std::size_t bytes_;
  int hwm_;
};

Result<std::unique_ptr<Channel>> make_zmq_ipc(const ChannelSpec& spec) {
  return std::unique_ptr<Channel>(std::make_unique<ZmqChannel>(spec));
}

constexpr Transport kZeroMq[] = {
    {"zmq-ipc",
     "ZeroMQ PUSH/PULL over ipc:// (an abstract Unix socket), send high-water mark = capacity",
     true, false, make_zmq_ipc, false},
};

}  // namespace

std::span<const Transport> zeromq_transports() {
  return kZeroMq;
}

}  // namespace bloccs::bench
