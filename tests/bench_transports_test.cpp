// SPDX-License-Identifier: Apache-2.0
// Every transport bloccs-bench drives (the floors, the bloccs ports, the peers), between real
// processes: one-way messages arrive whole and in order, round trips come back intact, several
// senders' messages all arrive (no more, no fewer), and no name is left behind; and the suite's
// measurements (scenarios.hpp) complete on each.
//
// Each test follows the life cycle in transport.hpp: the parent makes the channels before any
// fork; the children, forked first, wait for a go byte before they open their ends, so the
// parent's own end (a bloccs Port starts a thread) is opened after every fork; a channel's
// receiver opens before its senders; the parent calls unlink_names() once every child said it is
// ready; children leave with _exit. A transport that hangs fails its test by the alarm.
#include <dirent.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "benchmarks/suite/histogram.hpp"
#include "benchmarks/suite/scenarios.hpp"
#include "benchmarks/suite/transport.hpp"
#include "test_support.hpp"

namespace {

using namespace bloccs::bench;

constexpr std::uint32_t kCapacity = 64;  // every channel's bound: senders often wait for room
constexpr unsigned kTestSeconds = 100;   // the alarm: far beyond a test's few seconds
constexpr auto kJoinLimit = std::chrono::seconds(30);  // a child's exit, once its work is done

// ---- messages ----------------------------------------------------------------------------------
// Bytes 0-7: the message's number + 1, never 0 and never the previous message's (a floor's
// receiver sees a message arrive by its first word changing); bytes 8-11: its sender's id; the
// rest: a pattern of both, so a message cut short, shifted, or mixed with another shows.

constexpr std::uint32_t kMarkerSender = 0xffffffff;  // the id of the end-of-run marker's sender

void fill_message(std::span<std::byte> m, std::uint32_t sender, std::uint64_t seq) {
  const std::uint64_t first = seq + 1;
  std::memcpy(m.data(), &first, sizeof first);
  std::memcpy(m.data() + 8, &sender, sizeof sender);
  for (std::size_t j = 12; j < m.size(); ++j)
    m[j] = static_cast<std::byte>((seq * 31 + sender * 101 + j * 7) & 0xff);
}

struct Tag {
  std::uint32_t sender;
  std::uint64_t seq;
};

Tag tag_of(std::span<const std::byte> m) {
  std::uint64_t first;
  Tag tag{};
  std::memcpy(&first, m.data(), sizeof first);
  std::memcpy(&tag.sender, m.data() + 8, sizeof tag.sender);
  tag.seq = first - 1;
  return tag;
}

// Whether `m` is, byte for byte, message `seq` of `sender`.
bool is_message(std::span<const std::byte> m, std::uint32_t sender, std::uint64_t seq) {
  std::vector<std::byte> expected(m.size());
  fill_message(expected, sender, seq);
  return std::equal(m.begin(), m.end(), expected.begin());
}

// Whether `m` is one of the messages `senders` senders send, `per_sender` each.
bool is_sent_message(std::span<const std::byte> m, std::uint32_t senders,
                     std::uint64_t per_sender) {
  const Tag tag = tag_of(m);
  return tag.sender < senders && tag.seq < per_sender && is_message(m, tag.sender, tag.seq);
}

std::string describe(std::span<const std::byte> m) {
  const Tag tag = tag_of(m);
  return "a message tagged sender " + std::to_string(tag.sender) + ", number " +
         std::to_string(tag.seq);
}

// ---- child processes ---------------------------------------------------------------------------

// A child's exit codes (it also says on stderr what went wrong).
enum ChildCode : int {
  kDone = 0,
  kNoGo = 10,        // the parent went away before it said go
  kOpenFailed = 11,  // open_sender or open_receiver failed
  kSendFailed = 12,
  kReceiveFailed = 13,
  kWrongSizeTaken = 14,  // a message of the wrong size was not refused with payload_too_large
  kThrew = 15,
  kOrphaned = 16,  // the parent died before the child could tie its life to it
};
// What join() returns when the child did not exit on its own.
constexpr int kTimedOut = -1;
constexpr int kNotReaped = -2;

bool write_byte(int fd, char byte) {
  ssize_t n;
  do n = write(fd, &byte, 1);
  while (n < 0 && errno == EINTR);
  return n == 1;
}

bool read_byte(int fd, char expected) {
  char byte = 0;
  ssize_t n;
  do n = read(fd, &byte, 1);
  while (n < 0 && errno == EINTR);
  return n == 1 && byte == expected;
}

int child_failed(const std::string& who, const char* what, const bloccs::Error& e, int code) {
  std::fprintf(stderr, "bench_transports_test: %s: %s: %s: %s\n", who.c_str(), what,
               bloccs::errc_name(e.code), e.message.c_str());
  return code;
}

// A process forked by a test. It dies with the test process (PR_SET_PDEATHSIG) and leaves with
// _exit(what its body returns): it never returns into gtest, and never destroys the parent's
// objects it was copied with. The parent talks to it over a socket pair: 'g' (go: open your
// end), 'r' back (ready), and whatever else a test needs.
class ChildProcess {
 public:
  // Forks a child that runs body(control_fd) -> exit code.
  template <class Body>
  static ChildProcess start(Body&& body) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return ChildProcess(-1, -1);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(kOrphaned);  // the parent died before prctl took effect
      int code = kThrew;
      try {
        code = body(fds[1]);
      } catch (...) {
      }
      _exit(code);
    }
    close(fds[1]);
    if (pid < 0) {
      close(fds[0]);
      return ChildProcess(-1, -1);
    }
    return ChildProcess(pid, fds[0]);
  }

  ChildProcess(ChildProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), fd_(std::exchange(other.fd_, -1)) {}
  ChildProcess& operator=(ChildProcess&&) = delete;

  // A child still running here is left over from a failed assertion: it is killed and reaped.
  ~ChildProcess() {
    if (fd_ >= 0) close(fd_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }

  bool started() const { return pid_ > 0; }
  bool tell(char byte) { return write_byte(fd_, byte); }
  bool wait_ready() { return read_byte(fd_, 'r'); }

  // Its exit code (128 + the signal that killed it); kTimedOut if it was still running after
  // kJoinLimit, and then killed.
  int join() {
    const auto deadline = std::chrono::steady_clock::now() + kJoinLimit;
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0 && errno != EINTR) {
        pid_ = -1;  // not ours to wait for (or kill) any more
        return kNotReaped;
      }
      if (std::chrono::steady_clock::now() > deadline) return kTimedOut;  // the destructor kills
      usleep(1000);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  ChildProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  pid_t pid_;
  int fd_;
};

// ---- what the children do ----------------------------------------------------------------------

// A sender must refuse a message one byte too long, and queue nothing of it.
int check_wrong_size_refused(Sender& tx, std::size_t bytes, const std::string& who) {
  std::vector<std::byte> too_long(bytes + 1);
  auto st = tx.send(too_long);
  if (st) {
    std::fprintf(stderr, "bench_transports_test: %s: took a message too long\n", who.c_str());
    return kWrongSizeTaken;
  }
  if (st.code() == bloccs::Errc::payload_too_large) return kDone;
  return child_failed(who, "send too long (wanted payload_too_large)", st.error(), kWrongSizeTaken);
}

// In a sender child: on go, opens a sender, says ready, then sends messages 0 .. count - 1.
int run_sender(Channel& channel, int control, std::size_t bytes, std::uint32_t id,
               std::uint64_t count) {
  const std::string who = "sender " + std::to_string(id);
  if (!read_byte(control, 'g')) return kNoGo;
  auto tx = channel.open_sender();
  if (!tx) return child_failed(who, "open_sender", tx.error(), kOpenFailed);
  if (!write_byte(control, 'r')) return kNoGo;
  if (int code = check_wrong_size_refused(**tx, bytes, who); code != kDone) return code;
  std::vector<std::byte> m(bytes);
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    fill_message(m, id, seq);
    if (auto st = (*tx)->send(m); !st) return child_failed(who, "send", st.error(), kSendFailed);
  }
  if (auto st = (*tx)->finish(); !st) return child_failed(who, "finish", st.error(), kSendFailed);
  return kDone;
}

// In the echo child: on go, opens the receiver of `in` and a sender on `out`, says ready, then
// sends back each of `count` messages it receives.
int run_echo(Channel& in, Channel& out, int control, std::size_t bytes, std::uint64_t count) {
  if (!read_byte(control, 'g')) return kNoGo;
  auto rx = in.open_receiver();
  if (!rx) return child_failed("echo", "open_receiver", rx.error(), kOpenFailed);
  auto tx = out.open_sender();
  if (!tx) return child_failed("echo", "open_sender", tx.error(), kOpenFailed);
  if (!write_byte(control, 'r')) return kNoGo;
  std::vector<std::byte> m(bytes);
  for (std::uint64_t i = 0; i < count; ++i) {
    if (auto st = (*rx)->receive(m); !st)
      return child_failed("echo", "receive", st.error(), kReceiveFailed);
    if (auto st = (*tx)->send(m); !st) return child_failed("echo", "send", st.error(), kSendFailed);
  }
  if (auto st = (*tx)->finish(); !st) return child_failed("echo", "finish", st.error(), kSendFailed);
  return kDone;
}

// In the marker child: on go, opens a sender, says ready; once every sender has exited (reading
// `senders_done` gives end of file when the last of them, each holding its write end, is gone),
// sends one marker message. Nothing a sender sent can arrive after it.
int run_marker(Channel& channel, int control, int senders_done, std::size_t bytes) {
  if (!read_byte(control, 'g')) return kNoGo;
  auto tx = channel.open_sender();
  if (!tx) return child_failed("marker", "open_sender", tx.error(), kOpenFailed);
  if (!write_byte(control, 'r')) return kNoGo;
  char byte;
  ssize_t n;
  do n = read(senders_done, &byte, 1);
  while (n < 0 && errno == EINTR);
  std::vector<std::byte> m(bytes);
  fill_message(m, kMarkerSender, 0);
  if (auto st = (*tx)->send(m); !st) return child_failed("marker", "send", st.error(), kSendFailed);
  if (auto st = (*tx)->finish(); !st)
    return child_failed("marker", "finish", st.error(), kSendFailed);
  return kDone;
}

// ---- names -------------------------------------------------------------------------------------

// Entries of /dev/shm whose name contains `part`.
std::vector<std::string> shm_entries_containing(const std::string& part) {
  std::vector<std::string> found;
  if (DIR* dir = opendir("/dev/shm")) {
    while (const dirent* e = readdir(dir))
      if (std::strstr(e->d_name, part.c_str()) != nullptr) found.emplace_back(e->d_name);
    closedir(dir);
  }
  return found;
}

// The names peers.cpp gives its named queues.
std::string boost_mq_name(const ChannelSpec& spec) {
  return "bloccs-bench-" + spec.ns + "-" + spec.name;
}
std::string posix_mq_name(const ChannelSpec& spec) {
  return "/" + boost_mq_name(spec);
}

// 0 if a POSIX queue of that name opens, else mq_open's errno.
int mq_open_error(const std::string& name) {
  const mqd_t q = mq_open(name.c_str(), O_RDONLY);
  if (q == static_cast<mqd_t>(-1)) return errno;
  mq_close(q);
  return 0;
}

// Calls unlink_names(); a named queue's name must be there before and gone after, while its
// open ends live on.
void unlink_names_and_check(const Transport& t, Channel& channel, const ChannelSpec& spec) {
  if (t.name == "posix-mq") {
    const std::string name = posix_mq_name(spec);
    EXPECT_EQ(mq_open_error(name), 0) << name << " does not open: the test must know its name";
    channel.unlink_names();
    EXPECT_EQ(mq_open_error(name), ENOENT) << name << " after unlink_names()";
  } else if (t.name == "boost-mq") {
    const std::string name = boost_mq_name(spec);
    EXPECT_EQ(shm_entries_containing(name).size(), 1u)
        << name << " is not in /dev/shm: the test must know its name";
    channel.unlink_names();
    EXPECT_EQ(shm_entries_containing(name), std::vector<std::string>{})
        << "still in /dev/shm after unlink_names()";
  } else {
    channel.unlink_names();
  }
}

// ---- the tests ---------------------------------------------------------------------------------

std::vector<std::string> transport_names() {
  std::vector<std::string> names;
  for (const Transport& t : all_transports()) names.emplace_back(t.name);
  return names;
}

class EveryTransport : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    t_ = find_transport(GetParam());
    ASSERT_NE(t_, nullptr);
    std::signal(SIGALRM, SIG_DFL);  // the default action: end the test process, so it fails
    alarm(kTestSeconds);
  }

  // d: every channel of the test is destroyed by now; nothing of its namespace may be left.
  // What is left fails the test, and is then removed so that it fails no other.
  void TearDown() override {
    alarm(0);
    if (ns_.empty()) return;  // skipped before it made anything
    std::vector<std::string> left = shm_entries_containing(ns_);  // the peers' named queues
    EXPECT_EQ(left, std::vector<std::string>{}) << "left in /dev/shm";
    for (const std::string& name : left)
      if (!name.starts_with("bloccs.")) shm_unlink(("/" + name).c_str());
    EXPECT_EQ(bloccs::test::shm_entries(ns_), std::vector<std::string>{})
        << "bloccs segments left in /dev/shm";
    bloccs::test::remove_namespace(ns_);
  }

  // Names this test's channels: "t-<run>-bt-<pid>-<serial><id>", unique in this process and
  // among processes, so tests run in parallel; a letter follows the serial, so no namespace
  // contains another ("-1ow" is not in "-12ow"). The shm_left_clean fixture looks for this
  // run's namespaces after the run.
  void use_namespace(const char* id) {
    static int serial = 0;
    ns_ = bloccs::test::test_namespace_prefix() + "bt-" + std::to_string(getpid()) + "-" +
          std::to_string(++serial) + id;
  }

  void send_one_way(std::size_t bytes);
  void receive_from_senders_in_order(std::size_t bytes);
  void count_with_receive_some(std::size_t bytes);
  void count_merged_with_receive_some(std::size_t bytes, std::size_t batch);
  // Starts kSenders children sending kPerSender `bytes`-byte messages each on `channel`, opens
  // its receiver into `rx`, and lets them go once it is open.
  void start_senders(Channel& channel, const ChannelSpec& spec, std::size_t bytes,
                     std::vector<ChildProcess>& senders, std::unique_ptr<Receiver>& rx);

  const Transport* t_ = nullptr;
  std::string ns_;
};

constexpr std::uint64_t kOneWayMessages = 2'000;
constexpr std::uint64_t kRoundTrips = 1'000;
constexpr std::uint32_t kSenders = 3;
constexpr std::uint64_t kPerSender = 3'000;

// a: a sender child sends kOneWayMessages messages; the parent receives each in order, intact.
void EveryTransport::send_one_way(std::size_t bytes) {
  const ChannelSpec spec{"ow" + std::to_string(bytes), ns_, bytes, kCapacity, 1};
  auto channel = t_->make_channel(spec);
  ASSERT_TRUE(channel) << channel.error().message;
  ChildProcess sender = ChildProcess::start(
      [&](int control) { return run_sender(**channel, control, bytes, 0, kOneWayMessages); });
  ASSERT_TRUE(sender.started()) << "fork: " << std::strerror(errno);
  auto rx = (*channel)->open_receiver();
  ASSERT_TRUE(rx) << rx.error().message;
  ASSERT_TRUE(sender.tell('g'));
  ASSERT_TRUE(sender.wait_ready()) << "the sender exited with " << sender.join();
  unlink_names_and_check(*t_, **channel, spec);

  std::vector<std::byte> m(bytes);
  for (std::uint64_t i = 0; i < kOneWayMessages; ++i) {
    auto st = (*rx)->receive(m);
    ASSERT_TRUE(st) << "message " << i << ": " << st.error().message;
    ASSERT_TRUE(is_message(m, 0, i)) << "message " << i << " is not intact: " << describe(m);
  }
  EXPECT_EQ(sender.join(), kDone);
}

TEST_P(EveryTransport, OneWayMessagesArriveWholeAndInOrder) {
  if (t_->floor) GTEST_SKIP() << "a floor holds one message at a time: round trips only";
  use_namespace("ow");
  for (std::size_t bytes : {64u, 512u, 4096u}) {
    SCOPED_TRACE(std::to_string(bytes) + "-byte messages");
    send_one_way(bytes);
    if (HasFatalFailure()) return;
  }
}

// b: an echo child sends back on channel B what it receives on channel A.
TEST_P(EveryTransport, RoundTripsComeBackIntact) {
  use_namespace("rt");
  constexpr std::size_t bytes = 4096;  // the largest: every byte of it is compared
  const ChannelSpec to_echo_spec{"rt-a", ns_, bytes, kCapacity, 1};
  const ChannelSpec from_echo_spec{"rt-b", ns_, bytes, kCapacity, 1};
  auto to_echo = t_->make_channel(to_echo_spec);
  ASSERT_TRUE(to_echo) << to_echo.error().message;
  auto from_echo = t_->make_channel(from_echo_spec);
  ASSERT_TRUE(from_echo) << from_echo.error().message;
  ChildProcess echo = ChildProcess::start(
      [&](int control) { return run_echo(**to_echo, **from_echo, control, bytes, kRoundTrips); });
  ASSERT_TRUE(echo.started()) << "fork: " << std::strerror(errno);
  auto rx = (*from_echo)->open_receiver();  // before the echo opens its sender on it
  ASSERT_TRUE(rx) << rx.error().message;
  ASSERT_TRUE(echo.tell('g'));
  ASSERT_TRUE(echo.wait_ready()) << "the echo exited with " << echo.join();
  auto tx = (*to_echo)->open_sender();  // the echo, ready, has opened the receiver
  ASSERT_TRUE(tx) << tx.error().message;
  unlink_names_and_check(*t_, **to_echo, to_echo_spec);
  unlink_names_and_check(*t_, **from_echo, from_echo_spec);

  std::vector<std::byte> out(bytes), back(bytes);
  for (std::uint64_t i = 0; i < kRoundTrips; ++i) {
    fill_message(out, 0, i);
    auto sent = (*tx)->send(out);
    ASSERT_TRUE(sent) << "round trip " << i << ": send: " << sent.error().message;
    auto got = (*rx)->receive(back);
    ASSERT_TRUE(got) << "round trip " << i << ": receive: " << got.error().message;
    ASSERT_EQ(back, out) << "round trip " << i << " came back as " << describe(back);
  }
  EXPECT_EQ(echo.join(), kDone);
}

// c, first run: kSenders children send kPerSender tagged messages each; receive() must see each
// sender's messages in its order, each intact.
void EveryTransport::receive_from_senders_in_order(std::size_t bytes) {
  const ChannelSpec spec{"ms", ns_, bytes, kCapacity, kSenders};
  auto channel = t_->make_channel(spec);
  ASSERT_TRUE(channel) << channel.error().message;
  std::vector<ChildProcess> senders;
  std::unique_ptr<Receiver> rx;
  start_senders(**channel, spec, bytes, senders, rx);
  if (HasFatalFailure()) return;

  std::array<std::uint64_t, kSenders> next{};  // each sender's next message number
  std::vector<std::byte> m(bytes);
  for (std::uint64_t i = 0; i < kSenders * kPerSender; ++i) {
    auto st = rx->receive(m);
    ASSERT_TRUE(st) << "message " << i << ": " << st.error().message;
    const Tag tag = tag_of(m);
    ASSERT_LT(tag.sender, kSenders) << "message " << i << " is " << describe(m);
    ASSERT_EQ(tag.seq, next[tag.sender]) << "message " << i << " is " << describe(m);
    ASSERT_TRUE(is_message(m, tag.sender, tag.seq)) << "message " << i << " is not intact";
    ++next[tag.sender];
  }
  for (ChildProcess& s : senders) EXPECT_EQ(s.join(), kDone);
}

// c, second run: the same senders, and a marker child that sends one message once they have all
// exited; receive_some(scratch, 64) must take exactly kSenders x kPerSender messages before the
// marker, and hand over real ones. A transport that merges one queue per sender at the receiver
// (one_queue false) may hand the marker over before the others' last messages: there the
// senders alone send, and receive_some must take all their messages, never more than asked.
void EveryTransport::count_with_receive_some(std::size_t bytes) {
  constexpr std::size_t kBatch = 64;
  if (!t_->one_queue) return count_merged_with_receive_some(bytes, kBatch);
  const ChannelSpec spec{"mc", ns_, bytes, kCapacity, kSenders + 1};
  auto channel = t_->make_channel(spec);
  ASSERT_TRUE(channel) << channel.error().message;
  int done[2];  // every sender holds the write end until it exits; the marker reads
  ASSERT_EQ(pipe2(done, O_CLOEXEC), 0) << std::strerror(errno);
  std::vector<ChildProcess> children;
  for (std::uint32_t id = 0; id < kSenders; ++id)
    children.push_back(ChildProcess::start(
        [&, id](int control) { return run_sender(**channel, control, bytes, id, kPerSender); }));
  children.push_back(ChildProcess::start([&](int control) {
    close(done[1]);
    return run_marker(**channel, control, done[0], bytes);
  }));
  close(done[0]);
  close(done[1]);
  for (ChildProcess& c : children) ASSERT_TRUE(c.started()) << "fork: " << std::strerror(errno);
  auto rx = (*channel)->open_receiver();
  ASSERT_TRUE(rx) << rx.error().message;
  for (ChildProcess& c : children) ASSERT_TRUE(c.tell('g'));
  for (ChildProcess& c : children)
    ASSERT_TRUE(c.wait_ready()) << "a child exited with " << c.join();
  unlink_names_and_check(*t_, **channel, spec);

  std::uint64_t before_marker = 0;
  std::vector<std::byte> scratch(bytes);
  for (;;) {
    auto n = (*rx)->receive_some(scratch, kBatch);
    ASSERT_TRUE(n) << "after " << before_marker << " messages: " << n.error().message;
    ASSERT_GE(*n, 1u);
    ASSERT_LE(*n, kBatch);
    if (is_message(scratch, kMarkerSender, 0)) {  // the last message sent: the last of its batch
      before_marker += *n - 1;
      break;
    }
    ASSERT_TRUE(is_sent_message(scratch, kSenders, kPerSender))
        << "receive_some left in scratch " << describe(scratch);
    before_marker += *n;
  }
  EXPECT_EQ(before_marker, kSenders * kPerSender);
  for (ChildProcess& c : children) EXPECT_EQ(c.join(), kDone);
}

void EveryTransport::start_senders(Channel& channel, const ChannelSpec& spec, std::size_t bytes,
                                   std::vector<ChildProcess>& senders,
                                   std::unique_ptr<Receiver>& rx) {
  for (std::uint32_t id = 0; id < kSenders; ++id)
    senders.push_back(ChildProcess::start(
        [&, id](int control) { return run_sender(channel, control, bytes, id, kPerSender); }));
  for (ChildProcess& s : senders) ASSERT_TRUE(s.started()) << "fork: " << std::strerror(errno);
  auto opened = channel.open_receiver();
  ASSERT_TRUE(opened) << opened.error().message;
  rx = std::move(opened).value();
  for (ChildProcess& s : senders) ASSERT_TRUE(s.tell('g'));
  for (ChildProcess& s : senders)
    ASSERT_TRUE(s.wait_ready()) << "a sender exited with " << s.join();
  unlink_names_and_check(*t_, channel, spec);
}

void EveryTransport::count_merged_with_receive_some(std::size_t bytes, std::size_t batch) {
  const ChannelSpec spec{"mm", ns_, bytes, kCapacity, kSenders};
  auto channel = t_->make_channel(spec);
  ASSERT_TRUE(channel) << channel.error().message;
  std::vector<ChildProcess> senders;
  std::unique_ptr<Receiver> rx;
  start_senders(**channel, spec, bytes, senders, rx);
  if (HasFatalFailure()) return;
  std::uint64_t taken = 0;
  std::vector<std::byte> scratch(bytes);
  while (taken < kSenders * kPerSender) {
    const std::size_t ask = std::min<std::uint64_t>(batch, kSenders * kPerSender - taken);
    auto n = rx->receive_some(scratch, ask);
    ASSERT_TRUE(n) << "after " << taken << " messages: " << n.error().message;
    ASSERT_GE(*n, 1u);
    ASSERT_LE(*n, ask) << "receive_some took more than it was asked for";
    ASSERT_TRUE(is_sent_message(scratch, kSenders, kPerSender))
        << "receive_some left in scratch " << describe(scratch);
    taken += *n;
  }
  for (ChildProcess& s : senders) EXPECT_EQ(s.join(), kDone);
}

TEST_P(EveryTransport, SeveralSendersLoseNothing) {
  if (!t_->multi_sender) GTEST_SKIP() << GetParam() << " takes one sending process";
  use_namespace("ms");
  {
    SCOPED_TRACE("receive(), 4096-byte messages");
    receive_from_senders_in_order(4096);
    if (HasFatalFailure()) return;
  }
  SCOPED_TRACE("receive_some(), 64-byte messages");
  count_with_receive_some(64);
}

// ---- the measurements (scenarios.hpp) run on every transport -----------------------------------
// bloccs-bench's own code between the processes: each measurement completes, counts what it
// should, and leaves nothing behind (TearDown).

TEST_P(EveryTransport, RoundTripsAreMeasured) {
  use_namespace("mr");
  for (std::size_t bytes : {64u, 4096u}) {
    LatencyHistogram h;
    const RoundTripPlan plan{ns_, "mr" + std::to_string(bytes), bytes, 20, 300, -1};
    auto st = measure_round_trips(*t_, plan, h);
    ASSERT_TRUE(st) << bytes << " B: " << st.error().message;
    EXPECT_EQ(h.count(), 300u);
    EXPECT_GT(h.min(), 0u);
  }
}

TEST_P(EveryTransport, StreamsAreMeasured) {
  if (t_->floor) GTEST_SKIP() << "floors are measured in round trips only";
  const std::uint32_t pushers = t_->multi_sender ? 3 : 1;
  use_namespace("st");
  const StreamPlan plan{ns_, "st", 64, pushers, 3'000, kCapacity, std::chrono::nanoseconds(0), -1};
  auto r = measure_stream(*t_, plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->messages, 3'000u * pushers);
  EXPECT_GT(r->seconds, 0);
}

TEST_P(EveryTransport, ASlowConsumerHoldsBackItsPushers) {
  if (t_->floor) GTEST_SKIP() << "floors are measured in round trips only";
  const std::uint32_t pushers = t_->multi_sender ? 2 : 1;
  use_namespace("bp");
  const StreamPlan plan{ns_, "bp", 64, pushers, 500, 8, std::chrono::microseconds(20), -1};
  auto r = measure_stream(*t_, plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->messages, 500u * pushers);
  EXPECT_LE(r->msgs_per_s(), 1.0 / 20e-6 * 1.01);  // the consumer's 20 us per message bounds it
  // Each pusher's CPU while pushing, as it measured it: some, and never more than the transfer
  // took (fork and set-up, which the wait4 total would add, are left out).
  EXPECT_GT(r->pusher_cpu_seconds, 0.0);
  EXPECT_LE(r->pusher_cpu_seconds, r->seconds * 1.05);
}

INSTANTIATE_TEST_SUITE_P(bench_transports, EveryTransport, ::testing::ValuesIn(transport_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
