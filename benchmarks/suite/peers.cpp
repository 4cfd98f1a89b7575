// The peers: what a team would use instead of bloccs, each set up the way its users do.
//   boost-mq  boost::interprocess::message_queue: a bounded queue in shared memory behind a
//             process-shared mutex and condition variables; capacity messages of `bytes`.
//   posix-mq  mq_open/mq_send/mq_receive, a kernel queue of capacity messages (fewer if the
//             kernel's limits refuse: a note on stderr says so).
//   uds       a Unix domain socket pair, SOCK_SEQPACKET: message boundaries hold with several
//             senders (a stream socket would interleave their bytes); the receiver drains a
//             batch with one recvmmsg after its blocking recv.
//   pipe      a pipe (default size, 64 KiB on Linux); writes of up to PIPE_BUF (4096) bytes are
//             atomic, so several senders are safe; the receiver reads many messages per read.
// Every blocking call retries on EINTR. Named objects (boost-mq, posix-mq) are unlinked as soon
// as every end is open (unlink_names), so a run that dies leaves none behind.
#include <fcntl.h>
#include <mqueue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {
namespace {

namespace bip = boost::interprocess;

Error os_error(const std::string& what) {
  return {Errc::system_error, what + ": " + std::strerror(errno)};
}

Status check_size(std::size_t got, std::size_t want) {
  if (got == want) return {};
  return Error{Errc::payload_too_large, "message of " + std::to_string(got) +
                                            " bytes on a channel of " + std::to_string(want) +
                                            "-byte messages"};
}

// ---- boost-mq ---------------------------------------------------------------------------------

class BoostReceiver final : public Receiver {
 public:
  explicit BoostReceiver(std::unique_ptr<bip::message_queue> q) : q_(std::move(q)) {}
  Status receive(std::span<std::byte> out) override {
    try {
      bip::message_queue::size_type got = 0;
      unsigned priority = 0;
      q_->receive(out.data(), out.size(), got, priority);
      return check_size(got, out.size());
    } catch (const bip::interprocess_exception& e) {
      return Error{Errc::system_error, std::string("boost-mq: receive: ") + e.what()};
    }
  }

 private:
  std::unique_ptr<bip::message_queue> q_;
};

class BoostSender final : public Sender {
 public:
  BoostSender(std::unique_ptr<bip::message_queue> q, std::size_t bytes)
      : q_(std::move(q)), bytes_(bytes) {}
  Status send(std::span<const std::byte> m) override {
    if (auto st = check_size(m.size(), bytes_); !st) return st;
    try {
      q_->send(m.data(), m.size(), 0);
      return {};
    } catch (const bip::interprocess_exception& e) {
      return Error{Errc::system_error, std::string("boost-mq: send: ") + e.what()};
    }
  }

 private:
  std::unique_ptr<bip::message_queue> q_;
  std::size_t bytes_;
};

class BoostChannel final : public Channel {
 public:
  explicit BoostChannel(const ChannelSpec& spec)
      : spec_(spec), name_("bloccs-" + spec.ns + "-" + spec.name) {}

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    try {
      bip::message_queue::remove(name_.c_str());  // a stale one from a killed run
      auto q = std::make_unique<bip::message_queue>(bip::create_only, name_.c_str(),
                                                    spec_.capacity, spec_.bytes);
      return std::unique_ptr<Receiver>(std::make_unique<BoostReceiver>(std::move(q)));
    } catch (const bip::interprocess_exception& e) {
      return Error{Errc::system_error, "boost-mq: create " + name_ + ": " + e.what()};
    }
  }

  Result<std::unique_ptr<Sender>> open_sender() override {
    try {
      auto q = std::make_unique<bip::message_queue>(bip::open_only, name_.c_str());
      return std::unique_ptr<Sender>(std::make_unique<BoostSender>(std::move(q), spec_.bytes));
    } catch (const bip::interprocess_exception& e) {
      return Error{Errc::system_error, "boost-mq: open " + name_ + ": " + e.what() +
                                           " (is the receiver open?)"};
    }
  }

  void unlink_names() override { bip::message_queue::remove(name_.c_str()); }

 private:
  ChannelSpec spec_;
  std::string name_;
};

// ---- posix-mq ---------------------------------------------------------------------------------

class PosixReceiver final : public Receiver {
 public:
  explicit PosixReceiver(mqd_t q) : q_(q) {}
  ~PosixReceiver() override { mq_close(q_); }
  Status receive(std::span<std::byte> out) override {
    ssize_t n;
    do n = mq_receive(q_, reinterpret_cast<char*>(out.data()), out.size(), nullptr);
    while (n < 0 && errno == EINTR);
    if (n < 0) return os_error("posix-mq: mq_receive");
    return check_size(static_cast<std::size_t>(n), out.size());
  }

 private:
  mqd_t q_;
};

class PosixSender final : public Sender {
 public:
  PosixSender(mqd_t q, std::size_t bytes) : q_(q), bytes_(bytes) {}
  ~PosixSender() override { mq_close(q_); }
  Status send(std::span<const std::byte> m) override {
    if (auto st = check_size(m.size(), bytes_); !st) return st;
    int r;
    do r = mq_send(q_, reinterpret_cast<const char*>(m.data()), m.size(), 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return os_error("posix-mq: mq_send");
    return {};
  }

 private:
  mqd_t q_;
  std::size_t bytes_;
};

// The kernel bounds a queue by /proc/sys/fs/mqueue/msg_max (unless privileged) and a user's
// queues by RLIMIT_MSGQUEUE bytes: raise the soft limit as far as allowed, then halve the depth
// until the kernel takes it.
mqd_t create_posix_queue(const std::string& name, const ChannelSpec& spec, long& depth) {
  rlimit limit{};
  if (getrlimit(RLIMIT_MSGQUEUE, &limit) == 0 && limit.rlim_cur != limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_MSGQUEUE, &limit);
  }
  auto try_depth = [&](long d) {
    depth = std::max(d, 1L);
    mq_attr attr{};
    attr.mq_maxmsg = depth;
    attr.mq_msgsize = static_cast<long>(spec.bytes);
    return mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDONLY, 0600, &attr);
  };
  auto refused = [](mqd_t q) {
    return q == static_cast<mqd_t>(-1) && (errno == EINVAL || errno == EMFILE || errno == ENOMEM);
  };
  mqd_t q = try_depth(spec.capacity);  // a privileged process may exceed msg_max
  long allowed = 0;
  if (std::ifstream in("/proc/sys/fs/mqueue/msg_max"); refused(q) && in >> allowed &&
                                                        allowed < static_cast<long>(spec.capacity))
    q = try_depth(allowed);
  while (refused(q) && depth > 1) q = try_depth(depth / 2);
  return q;
}

class PosixChannel final : public Channel {
 public:
  explicit PosixChannel(const ChannelSpec& spec) : spec_(spec), name_("/bloccs-" + spec.ns + "-" + spec.name) {}

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    mq_unlink(name_.c_str());  // a stale one from a killed run
    long depth = 0;
    const mqd_t q = create_posix_queue(name_, spec_, depth);
    if (q == static_cast<mqd_t>(-1)) return os_error("posix-mq: mq_open " + name_);
    if (depth < static_cast<long>(spec_.capacity)) {
      static bool said = false;
      if (!std::exchange(said, true))
        std::fprintf(stderr, "bloccs-bench: posix-mq: the kernel's limits allow %ld messages "
                             "per queue, not %u\n", depth, spec_.capacity);
    }
    return std::unique_ptr<Receiver>(std::make_unique<PosixReceiver>(q));
  }

  Result<std::unique_ptr<Sender>> open_sender() override {
    const mqd_t q = mq_open(name_.c_str(), O_WRONLY);
    if (q == static_cast<mqd_t>(-1)) return os_error("posix-mq: mq_open " + name_ + " to send");
    return std::unique_ptr<Sender>(std::make_unique<PosixSender>(q, spec_.bytes));
  }

  void unlink_names() override { mq_unlink(name_.c_str()); }

 private:
  ChannelSpec spec_;
  std::string name_;
};

// ---- uds and pipe: a pair of file descriptors made before fork ---------------------------------

// Writes all of `m` to `fd` (one call for a socket or a pipe write <= PIPE_BUF).
Status write_all(int fd, std::span<const std::byte> m, const char* what) {
  std::size_t done = 0;
  while (done < m.size()) {
    const ssize_t n = write(fd, m.data() + done, m.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return os_error(std::string(what) + ": write");
    done += static_cast<std::size_t>(n);
  }
  return {};
}

class FdSender final : public Sender {
 public:
  FdSender(int fd, std::size_t bytes, const char* what) : fd_(fd), bytes_(bytes), what_(what) {}
  Status send(std::span<const std::byte> m) override {
    if (auto st = check_size(m.size(), bytes_); !st) return st;
    return write_all(fd_, m, what_);
  }

 private:
  int fd_;
  std::size_t bytes_;
  const char* what_;
};

class SocketReceiver final : public Receiver {
 public:
  explicit SocketReceiver(int fd) : fd_(fd) {}

  Status receive(std::span<std::byte> out) override {
    ssize_t n;
    do n = recv(fd_, out.data(), out.size(), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return os_error("uds: recv");
    return check_size(static_cast<std::size_t>(n), out.size());
  }

  // One blocking recv, then whatever else is queued, up to `max`, with one recvmmsg; every
  // message is copied into `scratch` in turn.
  Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) override {
    if (auto st = receive(scratch); !st) return std::move(st).error();
    const std::size_t more = std::min<std::size_t>(max - 1, kBatch);
    if (more == 0) return std::size_t{1};
    std::array<iovec, kBatch> iov;
    std::array<mmsghdr, kBatch> msgs{};
    for (std::size_t i = 0; i < more; ++i) {
      iov[i] = {scratch.data(), scratch.size()};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n;
    do n = recvmmsg(fd_, msgs.data(), static_cast<unsigned>(more), MSG_DONTWAIT, nullptr);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) return os_error("uds: recvmmsg");
    return std::size_t{1} + static_cast<std::size_t>(std::max(n, 0));
  }

 private:
  static constexpr std::size_t kBatch = 64;
  int fd_;
};

class PipeReceiver final : public Receiver {
 public:
  PipeReceiver(int fd, std::size_t bytes) : fd_(fd), bytes_(bytes), buffer_(kBuffer + bytes) {}

  Status receive(std::span<std::byte> out) override {
    auto n = receive_some(out, 1);
    if (!n) return std::move(n).error();
    return {};
  }

  // One blocking read of up to `max` messages' worth; a message cut by the read keeps its first
  // bytes for the next call.
  Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) override {
    const std::size_t want = std::min(max * bytes_, kBuffer / bytes_ * bytes_);
    while (held_ < bytes_) {
      ssize_t n;
      do n = read(fd_, buffer_.data() + held_, want - held_);  // held_ < bytes_ <= want
      while (n < 0 && errno == EINTR);
      if (n < 0) return os_error("pipe: read");
      if (n == 0) return Error{Errc::system_error, "pipe: every writer closed it"};
      held_ += static_cast<std::size_t>(n);
    }
    const std::size_t whole = std::min(held_ / bytes_, max);
    std::memcpy(scratch.data(), buffer_.data() + (whole - 1) * bytes_, bytes_);
    const std::size_t used = whole * bytes_;
    std::memmove(buffer_.data(), buffer_.data() + used, held_ - used);
    held_ -= used;
    return whole;
  }

 private:
  static constexpr std::size_t kBuffer = 64 * 1024;
  int fd_;
  std::size_t bytes_;
  std::vector<std::byte> buffer_;
  std::size_t held_ = 0;
};

enum class FdKind { uds, pipe };

class FdChannel final : public Channel {
 public:
  FdChannel(int read_fd, int write_fd, std::size_t bytes, FdKind kind)
      : read_fd_(read_fd), write_fd_(write_fd), bytes_(bytes), kind_(kind) {}
  ~FdChannel() override {
    close(read_fd_);
    close(write_fd_);
  }

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    if (kind_ == FdKind::uds) return std::unique_ptr<Receiver>(std::make_unique<SocketReceiver>(read_fd_));
    return std::unique_ptr<Receiver>(std::make_unique<PipeReceiver>(read_fd_, bytes_));
  }
  Result<std::unique_ptr<Sender>> open_sender() override {
    return std::unique_ptr<Sender>(
        std::make_unique<FdSender>(write_fd_, bytes_, kind_ == FdKind::uds ? "uds" : "pipe"));
  }

 private:
  int read_fd_, write_fd_;
  std::size_t bytes_;
  FdKind kind_;
};

Result<std::unique_ptr<Channel>> make_boost(const ChannelSpec& spec) {
  return std::unique_ptr<Channel>(std::make_unique<BoostChannel>(spec));
}

Result<std::unique_ptr<Channel>> make_posix(const ChannelSpec& spec) {
  return std::unique_ptr<Channel>(std::make_unique<PosixChannel>(spec));
}

Result<std::unique_ptr<Channel>> make_uds(const ChannelSpec& spec) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return os_error("uds: socketpair");
  return std::unique_ptr<Channel>(std::make_unique<FdChannel>(fds[0], fds[1], spec.bytes, FdKind::uds));
}

Result<std::unique_ptr<Channel>> make_pipe(const ChannelSpec& spec) {
  if (spec.bytes > PIPE_BUF)
    return Error{Errc::bad_config, "pipe: messages over PIPE_BUF bytes are not written atomically"};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return os_error("pipe: pipe2");
  return std::unique_ptr<Channel>(std::make_unique<FdChannel>(fds[0], fds[1], spec.bytes, FdKind::pipe));
}

constexpr Transport kPeers[] = {
    {"boost-mq", "boost::interprocess::message_queue (shared memory, mutex + condition variables)",
     true, false, make_boost},
    {"posix-mq", "POSIX message queue (mq_send / mq_receive)", true, false, make_posix},
    {"uds", "Unix domain socket pair, SOCK_SEQPACKET; batches with recvmmsg", true, false, make_uds},
    {"pipe", "a pipe; the receiver reads many messages per read", true, false, make_pipe},
};

}  // namespace

std::span<const Transport> peer_transports() { return kPeers; }

}  // namespace bloccs::bench
