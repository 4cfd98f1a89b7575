// SPDX-License-Identifier: Apache-2.0
// The peers: what a team would pick instead of bloccs, each set up the way its users set it up.
//   boost-mq  boost::interprocess::message_queue: a bounded queue in a /dev/shm segment behind a
//             process-shared mutex and two condition variables, `capacity` messages of `bytes`.
//             The receiver creates it, senders open it by name.
//   posix-mq  a kernel POSIX message queue (mq_send / mq_receive), `capacity` deep where the
//             kernel allows it, else as deep as it allows (a note on stderr says so). The
//             receiver creates it, senders open it by name.
//   uds       a Unix domain socket pair made before fork, SOCK_SEQPACKET; the kernel bounds it
//             by the socket's send buffer, not by `capacity`.
//   pipe      a pipe made before fork, default size (64 KiB on Linux), not `capacity`.
// Both named queues get names made of the spec's namespace and name ("bloccs-bench-<ns>-<name>",
// with a leading '/' for posix-mq); a stale one of that name, left by a killed run, is removed
// before creating. unlink_names() removes the names as soon as every end is open: an open queue
// lives on without its name, and no name outlives the run however it ends (where no mqueue file
// system is mounted, a leaked POSIX queue cannot even be listed).
// Every blocking call retries on EINTR; every failure is returned as an Error, never thrown.
#include <fcntl.h>
#include <mqueue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {
namespace {

namespace bip = boost::interprocess;

// "<what failed> <object>: <errno's text>; <what to do>". Takes string_views so that nothing
// allocates (and perhaps changes errno) before errno is read.
Error os_error(std::string_view what, std::string_view object, std::string_view todo) {
  const int err = errno;
  std::string message(what);
  if (!object.empty()) message.append(" ").append(object);
  message.append(": ").append(std::strerror(err)).append("; ").append(todo);
  return {Errc::system_error, std::move(message)};
}

// A sender's message must be exactly the channel's size.
Status check_message_size(std::size_t got, std::size_t bytes) {
  if (got == bytes) return {};
  return Error{Errc::payload_too_large, "a message of " + std::to_string(got) +
                                            " bytes on a channel of " + std::to_string(bytes) +
                                            "-byte messages; send exactly that many bytes"};
}

// A receiver's buffer must hold a whole message.
Status check_buffer_size(std::size_t have, std::size_t bytes) {
  if (have >= bytes) return {};
  return Error{Errc::buffer_too_small,
               "a buffer of " + std::to_string(have) + " bytes for " + std::to_string(bytes) +
                   "-byte messages; pass one of the channel's message size"};
}

// A message that arrived with another size than the channel's: a sender outside the suite.
Status check_arrived_size(const char* transport, std::size_t got, std::size_t bytes) {
  if (got == bytes) return {};
  return Error{Errc::corrupt, std::string(transport) + ": a message of " + std::to_string(got) +
                                  " bytes arrived on a channel of " + std::to_string(bytes) +
                                  "-byte messages; is something else sending on it?"};
}

Status check_name_length(const std::string& name) {
  if (name.size() <= NAME_MAX) return {};
  return Error{Errc::bad_name, "queue name '" + name + "' is longer than NAME_MAX (" +
                                   std::to_string(NAME_MAX) + "); shorten the namespace or name"};
}

// ---- boost-mq ---------------------------------------------------------------------------------

// Boost reports failures by throwing; here they become values.
Error boost_error(std::string_view what, const std::string& name, const std::exception& e,
                  std::string_view todo) {
  return {Errc::system_error, "boost-mq: " + std::string(what) + " " + name + ": " + e.what() +
                                  "; " + std::string(todo)};
}

class BoostReceiver final : public Receiver {
 public:
  BoostReceiver(std::unique_ptr<bip::message_queue> queue, std::string name, std::size_t bytes)
      : queue_(std::move(queue)), name_(std::move(name)), bytes_(bytes) {}

  Status receive(std::span<std::byte> out) override {
    if (auto st = check_buffer_size(out.size(), bytes_); !st) return st;
    try {
      bip::message_queue::size_type got = 0;
      unsigned priority = 0;
      queue_->receive(out.data(), bytes_, got, priority);
      return check_arrived_size("boost-mq", got, bytes_);
    } catch (const std::exception& e) {
      return boost_error("receive from", name_, e, "was the queue's segment removed by hand?");
    }
  }

 private:
  std::unique_ptr<bip::message_queue> queue_;
  std::string name_;
  std::size_t bytes_;
};

class BoostSender final : public Sender {
 public:
  BoostSender(std::unique_ptr<bip::message_queue> queue, std::string name, std::size_t bytes)
      : queue_(std::move(queue)), name_(std::move(name)), bytes_(bytes) {}

  Status send(std::span<const std::byte> message) override {
    if (auto st = check_message_size(message.size(), bytes_); !st) return st;
    try {
      queue_->send(message.data(), message.size(), 0);
      return {};
    } catch (const std::exception& e) {
      return boost_error("send to", name_, e, "was the queue's segment removed by hand?");
    }
  }

 private:
  std::unique_ptr<bip::message_queue> queue_;
  std::string name_;
  std::size_t bytes_;
};

class BoostChannel final : public Channel {
 public:
  BoostChannel(const ChannelSpec& spec, std::string name)
      : name_(std::move(name)), bytes_(spec.bytes), capacity_(spec.capacity) {}

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    try {
      bip::message_queue::remove(name_.c_str());  // a stale one, left by a killed run
      auto queue =
          std::make_unique<bip::message_queue>(bip::create_only, name_.c_str(), capacity_, bytes_);
      return std::unique_ptr<Receiver>(
          std::make_unique<BoostReceiver>(std::move(queue), name_, bytes_));
    } catch (const std::exception& e) {
      return boost_error("create", name_, e, "is /dev/shm full or not writable?");
    }
  }

  Result<std::unique_ptr<Sender>> open_sender() override {
    try {
      auto queue = std::make_unique<bip::message_queue>(bip::open_only, name_.c_str());
      return std::unique_ptr<Sender>(
          std::make_unique<BoostSender>(std::move(queue), name_, bytes_));
    } catch (const std::exception& e) {
      return boost_error("open", name_, e,
                         "open the receiver first, and senders before unlink_names()");
    }
  }

  void unlink_names() override { bip::message_queue::remove(name_.c_str()); }

 private:
  std::string name_;
  std::size_t bytes_;
  std::uint32_t capacity_;
};

Result<std::unique_ptr<Channel>> make_boost_mq(const ChannelSpec& spec) {
  std::string name = "bloccs-bench-" + spec.ns + "-" + spec.name;
  if (auto st = check_name_length(name); !st) return std::move(st).error();
  return std::unique_ptr<Channel>(std::make_unique<BoostChannel>(spec, std::move(name)));
}

// ---- posix-mq ---------------------------------------------------------------------------------

constexpr mqd_t kNoQueue = static_cast<mqd_t>(-1);

class PosixReceiver final : public Receiver {
 public:
  PosixReceiver(mqd_t queue, std::size_t bytes) : queue_(queue), bytes_(bytes) {}
  ~PosixReceiver() override { mq_close(queue_); }

  Status receive(std::span<std::byte> out) override {
    if (auto st = check_buffer_size(out.size(), bytes_); !st) return st;
    ssize_t n;
    do n = mq_receive(queue_, reinterpret_cast<char*>(out.data()), bytes_, nullptr);
    while (n < 0 && errno == EINTR);
    if (n < 0) return os_error("posix-mq: mq_receive", {}, "was the queue closed?");
    return check_arrived_size("posix-mq", static_cast<std::size_t>(n), bytes_);
  }
  // receive_some: the default, one mq_receive per message. A POSIX queue has no batch receive;
  // draining it with O_NONBLOCK calls would cost the same one system call per message.

 private:
  mqd_t queue_;
  std::size_t bytes_;
};

class PosixSender final : public Sender {
 public:
  PosixSender(mqd_t queue, std::size_t bytes) : queue_(queue), bytes_(bytes) {}
  ~PosixSender() override { mq_close(queue_); }

  Status send(std::span<const std::byte> message) override {
    if (auto st = check_message_size(message.size(), bytes_); !st) return st;
    int r;
    do r = mq_send(queue_, reinterpret_cast<const char*>(message.data()), message.size(), 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return os_error("posix-mq: mq_send", {}, "was the queue closed?");
    return {};
  }

 private:
  mqd_t queue_;
  std::size_t bytes_;
};

// The deepest queue an unprivileged process may create: /proc/sys/fs/mqueue/msg_max (10 unless
// raised); 0 if it cannot be read.
long mqueue_msg_max() {
  long allowed = 0;
  std::ifstream("/proc/sys/fs/mqueue/msg_max") >> allowed;
  return allowed;
}

// Whether mq_open refused for the queue's depth: over msg_max (EINVAL), or over the user's
// RLIMIT_MSGQUEUE bytes, which every queue of the user shares (EMFILE), or kernel memory.
bool refused_for_depth(mqd_t queue) {
  return queue == kNoQueue && (errno == EINVAL || errno == EMFILE || errno == ENOMEM);
}

mqd_t create_posix_queue(const std::string& name, std::size_t bytes, long depth) {
  mq_attr attr{};
  attr.mq_maxmsg = depth;
  attr.mq_msgsize = static_cast<long>(bytes);
  return mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0600, &attr);
}

// Creates the queue `capacity` deep (a privileged process may exceed msg_max); if the kernel
// refuses, msg_max deep; if that too is refused (the byte limit, shared with the user's other
// queues), half as deep again and again. `depth` is what it got.
mqd_t create_deepest_posix_queue(const std::string& name, std::size_t bytes, long capacity,
                                 long& depth) {
  depth = capacity;
  mqd_t queue = create_posix_queue(name, bytes, depth);
  if (!refused_for_depth(queue)) return queue;
  const long allowed = mqueue_msg_max();
  if (allowed > 0 && allowed < depth) {
    depth = allowed;
    queue = create_posix_queue(name, bytes, depth);
  }
  while (refused_for_depth(queue) && depth > 1) {
    depth /= 2;
    queue = create_posix_queue(name, bytes, depth);
  }
  return queue;
}

// Once per process: every posix-mq channel of a run meets the same limit.
void note_shallower_queue(long depth, std::uint32_t capacity) {
  static std::atomic_flag said;
  if (said.test_and_set()) return;
  std::fprintf(stderr,
               "bloccs-bench: posix-mq: the kernel allows queues of %ld messages here, not %u "
               "(/proc/sys/fs/mqueue/msg_max, RLIMIT_MSGQUEUE); its queues are shallower\n",
               depth, capacity);
}

class PosixChannel final : public Channel {
 public:
  PosixChannel(const ChannelSpec& spec, std::string name)
      : name_(std::move(name)), bytes_(spec.bytes), capacity_(spec.capacity) {}

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    mq_unlink(name_.c_str());  // a stale one, left by a killed run
    long depth = 0;
    const mqd_t queue = create_deepest_posix_queue(name_, bytes_, capacity_, depth);
    if (queue == kNoQueue)
      return os_error("posix-mq: mq_open", name_,
                      "check /proc/sys/fs/mqueue (msg_max, msgsize_max, queues_max) and "
                      "ulimit -q");
    if (depth < static_cast<long>(capacity_)) note_shallower_queue(depth, capacity_);
    return std::unique_ptr<Receiver>(std::make_unique<PosixReceiver>(queue, bytes_));
  }

  Result<std::unique_ptr<Sender>> open_sender() override {
    const mqd_t queue = mq_open(name_.c_str(), O_WRONLY | O_CLOEXEC);
    if (queue == kNoQueue)
      return os_error("posix-mq: mq_open to send", name_,
                      "open the receiver first, and senders before unlink_names()");
    return std::unique_ptr<Sender>(std::make_unique<PosixSender>(queue, bytes_));
  }

  void unlink_names() override { mq_unlink(name_.c_str()); }

 private:
  std::string name_;
  std::size_t bytes_;
  std::uint32_t capacity_;
};

Result<std::unique_ptr<Channel>> make_posix_mq(const ChannelSpec& spec) {
  std::string name = "/bloccs-bench-" + spec.ns + "-" + spec.name;
  if (auto st = check_name_length(name); !st) return std::move(st).error();
  return std::unique_ptr<Channel>(std::make_unique<PosixChannel>(spec, std::move(name)));
}

// ---- uds and pipe: two file descriptors made before fork ----------------------------------------

// Owns both ends; every process holding the channel holds both, so a reader never sees EOF and a
// writer never sees EPIPE while the channel lives. The ends it opens refer to its descriptors.
template <class EndReceiver, class EndSender>
class FdPairChannel final : public Channel {
 public:
  FdPairChannel(int read_fd, int write_fd, std::size_t bytes)
      : read_fd_(read_fd), write_fd_(write_fd), bytes_(bytes) {}
  ~FdPairChannel() override {
    close(read_fd_);
    close(write_fd_);
  }
  Result<std::unique_ptr<Receiver>> open_receiver() override {
    return std::unique_ptr<Receiver>(std::make_unique<EndReceiver>(read_fd_, bytes_));
  }
  Result<std::unique_ptr<Sender>> open_sender() override {
    return std::unique_ptr<Sender>(std::make_unique<EndSender>(write_fd_, bytes_));
  }

 private:
  int read_fd_;
  int write_fd_;
  std::size_t bytes_;
};

// ---- uds ----

// SOCK_SEQPACKET, not SOCK_STREAM: each send is one record, queued whole or not at all, and each
// recv takes exactly one record, so messages keep their boundaries however many processes send
// at once. A stream socket promises no such thing: Linux splits a send larger than about half
// the send buffer into several, and another sender's bytes can land between them.
class SocketReceiver final : public Receiver {
 public:
  SocketReceiver(int fd, std::size_t bytes) : fd_(fd), bytes_(bytes) {}

  Status receive(std::span<std::byte> out) override {
    if (auto st = check_buffer_size(out.size(), bytes_); !st) return st;
    ssize_t n;
    // MSG_TRUNC: the record's real length, so a longer one is seen rather than cut silently.
    do n = recv(fd_, out.data(), bytes_, MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return os_error("uds: recv", {}, "was the socket closed?");
    if (n == 0) return Error{Errc::system_error, "uds: recv: end of file; every sender closed it"};
    return check_arrived_size("uds", static_cast<std::size_t>(n), bytes_);
  }

  // As a user would batch: one blocking recv, then one recvmmsg that takes, without waiting,
  // whatever else is queued (up to max), each record into `scratch` in turn.
  Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) override {
    if (auto st = receive(scratch); !st) return std::move(st).error();
    const std::size_t more = std::min(std::max<std::size_t>(max, 1) - 1, kBatch);
    if (more == 0) return std::size_t{1};
    std::array<iovec, kBatch> iov;
    std::array<mmsghdr, kBatch> records{};
    for (std::size_t i = 0; i < more; ++i) {
      iov[i] = {scratch.data(), bytes_};
      records[i].msg_hdr.msg_iov = &iov[i];
      records[i].msg_hdr.msg_iovlen = 1;
    }
    const auto count = static_cast<unsigned>(more);
    int n;
    do n = recvmmsg(fd_, records.data(), count, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      return os_error("uds: recvmmsg", {}, "was the socket closed?");
    const std::size_t taken = n > 0 ? static_cast<std::size_t>(n) : 0;
    for (std::size_t i = 0; i < taken; ++i)  // msg_len: each record's real length (MSG_TRUNC)
      if (auto st = check_arrived_size("uds", records[i].msg_len, bytes_); !st)
        return std::move(st).error();
    return 1 + taken;
  }

 private:
  static constexpr std::size_t kBatch = 64;  // records per recvmmsg
  int fd_;
  std::size_t bytes_;
};

class SocketSender final : public Sender {
 public:
  SocketSender(int fd, std::size_t bytes) : fd_(fd), bytes_(bytes) {}

  Status send(std::span<const std::byte> message) override {
    if (auto st = check_message_size(message.size(), bytes_); !st) return st;
    ssize_t n;
    // MSG_NOSIGNAL: a closed peer is an error value, not a SIGPIPE that kills the sender.
    do n = ::send(fd_, message.data(), message.size(), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return os_error("uds: send", {}, "was the socket closed?");
    return {};  // a SEQPACKET send queues the whole record or fails
  }

 private:
  int fd_;
  std::size_t bytes_;
};

using UdsChannel = FdPairChannel<SocketReceiver, SocketSender>;

Result<std::unique_ptr<Channel>> make_uds(const ChannelSpec& spec) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return os_error("uds: socketpair", {}, "too many open files? (ulimit -n)");
  // A record is queued whole: it must fit the sending socket's buffer, which the kernel caps at
  // net.core.wmem_max (an unprivileged process cannot go past it).
  const int want = static_cast<int>(std::min<std::size_t>(2 * spec.bytes + 65536, INT_MAX / 2));
  int got = 0;
  socklen_t len = sizeof got;
  for (int fd : fds) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
  getsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &got, &len);
  if (static_cast<std::size_t>(got) / 2 < spec.bytes + 4096) {  // the kernel doubles what it keeps
    close(fds[0]);
    close(fds[1]);
    return Error{Errc::bad_config, "uds: a record of " + std::to_string(spec.bytes) +
                                       " bytes does not fit the socket's send buffer (" +
                                       std::to_string(got / 2) +
                                       " bytes, capped by net.core.wmem_max)"};
  }
  return std::unique_ptr<Channel>(std::make_unique<UdsChannel>(fds[0], fds[1], spec.bytes));
}

// ---- pipe ----

// Reads until `out` is full: a pipe read may return less than asked.
Status read_exactly(int fd, std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("pipe: read", {}, "was the pipe closed?");
    if (n == 0) return Error{Errc::system_error, "pipe: read: end of file; every writer closed it"};
    done += static_cast<std::size_t>(n);
  }
  return {};
}

class PipeReceiver final : public Receiver {
 public:
  PipeReceiver(int fd, std::size_t bytes) : fd_(fd), bytes_(bytes), buffer_(kReadSize) {}

  // Takes the first bytes of the message from what receive_some kept, reads the rest.
  Status receive(std::span<std::byte> out) override {
    if (auto st = check_buffer_size(out.size(), bytes_); !st) return st;
    const std::size_t kept = std::min(held_, bytes_);
    std::memcpy(out.data(), buffer_.data(), kept);
    drop_front(kept);
    return read_exactly(fd_, out.subspan(kept, bytes_ - kept));
  }

  // As a user would batch: one big blocking read (up to max messages, at most 64 KiB, the default
  // pipe's size), then counts the whole messages in it; the last one is copied into `scratch`, and
  // the first bytes of a message the read cut are kept for the next call.
  Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) override {
    if (auto st = check_buffer_size(scratch.size(), bytes_); !st) return std::move(st).error();
    if (bytes_ > kReadSize) {  // a message larger than one read: read it whole, one at a time
      if (auto st = receive(scratch); !st) return std::move(st).error();
      return std::size_t{1};
    }
    const std::size_t limit = std::min(std::max<std::size_t>(max, 1), kReadSize / bytes_) * bytes_;
    while (held_ < bytes_) {  // more than one read only if the first ended inside a message
      const ssize_t n = read(fd_, buffer_.data() + held_, limit - held_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return os_error("pipe: read", {}, "was the pipe closed?");
      if (n == 0)
        return Error{Errc::system_error, "pipe: read: end of file; every writer closed it"};
      held_ += static_cast<std::size_t>(n);
    }
    const std::size_t whole = held_ / bytes_;  // held_ <= limit, so whole <= max
    std::memcpy(scratch.data(), buffer_.data() + (whole - 1) * bytes_, bytes_);
    drop_front(whole * bytes_);
    return whole;
  }

 private:
  static constexpr std::size_t kReadSize = 64 * 1024;

  void drop_front(std::size_t n) {
    std::memmove(buffer_.data(), buffer_.data() + n, held_ - n);
    held_ -= n;
  }

  int fd_;
  std::size_t bytes_;
  std::vector<std::byte> buffer_;
  std::size_t held_ = 0;  // bytes read but not yet handed over: less than one message
};

class PipeSender final : public Sender {
 public:
  PipeSender(int fd, std::size_t bytes) : fd_(fd), bytes_(bytes) {}

  // One write up to PIPE_BUF bytes: it is atomic, so other senders' messages never land inside
  // it. A larger message (one sender only: make_pipe) takes as many writes as the pipe wants.
  Status send(std::span<const std::byte> message) override {
    if (auto st = check_message_size(message.size(), bytes_); !st) return st;
    for (std::size_t done = 0; done < message.size();) {
      const ssize_t n = write(fd_, message.data() + done, message.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return os_error("pipe: write", {}, "was the pipe closed?");
      done += static_cast<std::size_t>(n);
    }
    return {};
  }

 private:
  int fd_;
  std::size_t bytes_;
};

using PipeChannel = FdPairChannel<PipeReceiver, PipeSender>;

Result<std::unique_ptr<Channel>> make_pipe(const ChannelSpec& spec) {
  if (spec.bytes == 0 || (spec.bytes > PIPE_BUF && spec.senders > 1))
    return Error{Errc::bad_config, "pipe: messages of " + std::to_string(spec.bytes) +
                                       " bytes from several senders; only writes of 1 to "
                                       "PIPE_BUF (" +
                                       std::to_string(PIPE_BUF) + ") bytes are atomic"};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return os_error("pipe: pipe2", {}, "too many open files? (ulimit -n)");
  // A sender writes a whole message before its receiver reads (the streaming warm-up): the pipe
  // must hold one. Past the default 64 KiB it grows, as far as fs.pipe-max-size lets it (a
  // process with CAP_SYS_RESOURCE may go further).
  if (spec.bytes > 65536 && fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(spec.bytes)) < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    return Error{Errc::bad_config, "pipe: a pipe cannot hold a message of " +
                                       std::to_string(spec.bytes) + " bytes (" +
                                       std::strerror(err) + "; see /proc/sys/fs/pipe-max-size)"};
  }
  return std::unique_ptr<Channel>(std::make_unique<PipeChannel>(fds[0], fds[1], spec.bytes));
}

constexpr Transport kPeers[] = {
    {"boost-mq", "boost::interprocess::message_queue: shared memory, a mutex, condition variables",
     true, false, make_boost_mq},
    {"posix-mq", "a POSIX message queue in the kernel: mq_send, mq_receive", true, false,
     make_posix_mq},
    {"uds", "a Unix domain socket pair (SOCK_SEQPACKET), received in batches with recvmmsg", true,
     false, make_uds},
    {"pipe", "a pipe (default 64 KiB), received in batches with one big read", true, false,
     make_pipe},
};

}  // namespace

std::span<const Transport> peer_transports() {
  return kPeers;
}

}  // namespace bloccs::bench
