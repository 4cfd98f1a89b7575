// SPDX-License-Identifier: Apache-2.0
// bloccs as a user runs it: through the public port API (bloccs/port.hpp), nothing below it.
// The receiver starts a Port under the key {"bench", <channel name>, "in"}; each sender opens a
// bloccs::Sender for that key (resolved once, as a wire to one port is) and pushes with empty
// meta.
//   bloccs-spsc         single_pusher port (SPSC ring); the consumer spins briefly, then parks
//   bloccs-mpsc         the default port (MPSC ring), same consumer
//   bloccs-spsc-parked  single_pusher, receive_spin = 0: the consumer parks at once when empty
//   bloccs-spsc-nohist  bloccs-spsc without the time-in-queue histogram: the difference is what
//                       stamping each message and recording its time cost
#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "benchmarks/suite/transport.hpp"
#include "bloccs/port.hpp"

namespace bloccs::bench {
namespace {

enum class Kind { spsc, mpsc, spsc_parked, spsc_no_histogram };

class PortReceiver final : public Receiver {
 public:
  explicit PortReceiver(Port port) : port_(std::move(port)) {}

  Status receive(std::span<std::byte> out) override {
    auto n = receive_some(out, 1);
    if (!n) return std::move(n).error();
    return {};
  }

  Result<std::size_t> receive_some(std::span<std::byte> scratch, std::size_t max) override {
    bool fits = true;
    auto n = port_.receive_batch(
        [&](const MessageView& m) {
          fits = fits && m.payload.size() == scratch.size();
          std::memcpy(scratch.data(), m.payload.data(), std::min(m.payload.size(), scratch.size()));
        },
        max);
    if (n && !fits) return Error{Errc::corrupt, "bloccs: a message of the wrong size arrived"};
    return n;
  }

 private:
  Port port_;
};

class PortSender final : public Sender {
 public:
  explicit PortSender(bloccs::Sender sender) : sender_(std::move(sender)) {}
  Status send(std::span<const std::byte> message) override { return sender_.push(message); }

 private:
  bloccs::Sender sender_;
};

class PortChannel final : public Channel {
 public:
  PortChannel(const ChannelSpec& spec, Kind kind) : spec_(spec), kind_(kind) {}

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    PortOptions options{
        .buffer = spec_.capacity,
        .max_payload = static_cast<std::uint32_t>(spec_.bytes),
        .single_pusher = kind_ != Kind::mpsc,
        .max_pushers = std::max<std::uint32_t>(spec_.senders, 1),
        .ns = spec_.ns,
        .latency_histogram = kind_ != Kind::spsc_no_histogram,
    };
    if (kind_ == Kind::spsc_parked) options.receive_spin = std::chrono::nanoseconds(0);
    auto port = Port::start(key(), options);
    if (!port) return std::move(port).error();
    return std::unique_ptr<Receiver>(std::make_unique<PortReceiver>(std::move(port).value()));
  }

  Result<std::unique_ptr<Sender>> open_sender() override {
    auto sender = bloccs::Sender::open(key(), spec_.ns);
    if (!sender) return std::move(sender).error();
    return std::unique_ptr<Sender>(std::make_unique<PortSender>(std::move(sender).value()));
  }

 private:
  PortKey key() const { return {"bench", spec_.name, "in"}; }
  ChannelSpec spec_;
  Kind kind_;
};

template <Kind kind>
Result<std::unique_ptr<Channel>> make_port_channel(const ChannelSpec& spec) {
  if (kind != Kind::mpsc && spec.senders != 1)
    return Error{Errc::bad_config, "an SPSC port takes one sending process"};
  return std::unique_ptr<Channel>(std::make_unique<PortChannel>(spec, kind));
}

constexpr Transport kBloccs[] = {
    {"bloccs-spsc", "a bloccs port with one pusher (SPSC ring); receive spins 50 us, then parks",
     false, false, make_port_channel<Kind::spsc>},
    {"bloccs-mpsc", "a bloccs port, any number of pushers (MPSC ring); receive as above", true,
     false, make_port_channel<Kind::mpsc>},
    {"bloccs-spsc-parked", "a bloccs SPSC port whose receive parks at once (receive_spin = 0)",
     false, false, make_port_channel<Kind::spsc_parked>},
    {"bloccs-spsc-nohist", "bloccs-spsc without the time-in-queue histogram (latency_histogram off)",
     false, false, make_port_channel<Kind::spsc_no_histogram>},
};

}  // namespace

std::span<const Transport> bloccs_transports() { return kBloccs; }

}  // namespace bloccs::bench
