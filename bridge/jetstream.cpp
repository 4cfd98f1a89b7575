// SPDX-License-Identifier: Apache-2.0
// NATS JetStream for the bridges (jetstream.hpp), on the C client libnats.
#include "bridge/jetstream.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "port/meta_codec.hpp"

namespace bloccs::bridge {
namespace {

constexpr const char* kAttemptHeader = "Bloccs-Attempt";
constexpr const char* kMetaHeader = "Bloccs-Meta";  // the pairs, encoded as in a record, in hex
constexpr const char* kMsgIdHeader = "Nats-Msg-Id";  // JetStream's duplicate window
constexpr const char* kEndHeader = "Bloccs-End";     // the end of a host's messages
constexpr std::int64_t kRequestTimeoutMs = 5000;
constexpr std::int64_t kMaxInFlight = 64;  // a puller fetches at most this many at once

std::string part(const std::string& s) {
  std::string out;
  for (char c : s) out += (c == '.' || c == '*' || c == '>' || c == ' ') ? '_' : c;
  return out;
}

std::string what(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail && *detail && last == s)
    text += " (" + std::string(detail) + ")";
  return text;
}

std::string urls_text(const std::vector<std::string>& urls) {
  std::string out;
  for (const auto& u : urls) out += (out.empty() ? "" : ", ") + u;
  return out;
}

Error failed(const std::string& doing, natsStatus s, jsErrCode code = static_cast<jsErrCode>(0)) {
  std::string text = doing + ": " + what(s);
  if (code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  return {Errc::system_error, text};
}

std::string hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : bytes) {
    out += kDigits[static_cast<unsigned>(b) >> 4];
    out += kDigits[static_cast<unsigned>(b) & 15];
  }
  return out;
}

std::optional<std::vector<std::byte>> unhex(std::string_view text) {
  if (text.size() % 2 || text.size() > 2 * kMetaMaxBytes) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::byte>(hi << 4 | lo));
  }
  return out;
}

}  // namespace

std::string wire_subject(const PortKey& t) {
  return "bloccs." + part(t.network_id) + "." + part(t.node_id) + "." + part(t.in_port);
}

std::string wire_stream(const PortKey& t) {
  return "bloccs_" + part(t.network_id) + "_" + part(t.node_id) + "_" + part(t.in_port);
}

std::string wire_consumer(const PortKey& t) { return wire_stream(t) + "_in"; }

// ---- Pulled -----------------------------------------------------------------------------

struct Pulled::Msg {
  natsMsg* msg = nullptr;
  ~Msg() {
    if (msg) natsMsg_Destroy(msg);
  }
};

Pulled::Pulled(std::unique_ptr<Msg> m) : msg_(std::move(m)) {}
Pulled::Pulled(Pulled&&) noexcept = default;
Pulled& Pulled::operator=(Pulled&&) noexcept = default;
Pulled::~Pulled() = default;

std::span<const std::byte> Pulled::payload() const noexcept {
  return {reinterpret_cast<const std::byte*>(natsMsg_GetData(msg_->msg)),
          static_cast<std::size_t>(natsMsg_GetDataLength(msg_->msg))};
}

Status Pulled::ack() {
  if (const natsStatus s = natsMsg_Ack(msg_->msg, nullptr); s != NATS_OK)
    return failed("acknowledging a message", s);
  return {};
}

// ---- Engine -----------------------------------------------------------------------------

struct Engine::Impl {
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  std::vector<std::string> urls;
  ~Impl() {
    if (js) jsCtx_Destroy(js);
    if (conn) natsConnection_Destroy(conn);
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::connect(const EngineSpec& spec) {
  if (spec.urls.empty())
    return Error{Errc::bad_config, "no NATS URL to connect to; give nats = \"nats://HOST:4222\""};
  natsOptions* opts = nullptr;
  if (const natsStatus s = natsOptions_Create(&opts); s != NATS_OK)
    return failed("making NATS options", s);
  std::vector<const char*> servers;
  for (const auto& u : spec.urls) servers.push_back(u.c_str());
  natsStatus s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, spec.connect_timeout.count());
  if (s == NATS_OK && !spec.client_name.empty())
    s = natsOptions_SetName(opts, spec.client_name.c_str());
  // After a first connection: reconnect for ever (a server restart, a cluster fail-over).
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  // Every publish and ack goes out at once: a bridge waits for each ack, so a flush deferred
  // to the client's flusher thread would add to every message's latency.
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
  if (s == NATS_OK && !spec.credentials.empty())
    s = natsOptions_SetUserCredentialsFromFiles(opts, spec.credentials.c_str(), nullptr);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return Error{Errc::bad_config, "NATS options for " + urls_text(spec.urls) + ": " + what(s)};
  }
  auto impl = std::make_unique<Impl>();
  impl->urls = spec.urls;
  s = natsConnection_Connect(&impl->conn, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK)
    return Error{Errc::not_ready, "cannot reach the NATS server at " + urls_text(spec.urls) +
                                      ": " + what(s) +
                                      "; check that nats-server runs there (with -js) and "
                                      "that the URL is right"};
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kRequestTimeoutMs;
  if (s = natsConnection_JetStream(&impl->js, impl->conn, &jo); s != NATS_OK)
    return failed("opening JetStream at " + urls_text(spec.urls), s);
  jsAccountInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  s = js_GetAccountInfo(&info, impl->js, nullptr, &code);
  if (info) jsAccountInfo_Destroy(info);
  if (s == NATS_NO_RESPONDERS || code == JSNotEnabledErr || code == JSNotEnabledForAccountErr)
    return Error{Errc::bad_config, "the NATS server at " + urls_text(spec.urls) +
                                       " has no JetStream; start it with -js (nats-server -js "
                                       "-sd DIR), or enable it for this account"};
  if (s != NATS_OK) return failed("asking " + urls_text(spec.urls) + " about JetStream", s, code);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Status Engine::ensure_stream(const PortKey& target, std::int64_t max_messages, int replicas) {
  const std::string name = wire_stream(target), subject = wire_subject(target);
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_WorkQueuePolicy;  // an acked message leaves the stream
  cfg.MaxMsgs = max_messages;
  cfg.Discard = js_DiscardNew;  // a full stream refuses: back-pressure
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  cfg.Duplicates = 2LL * 60 * 1'000'000'000;  // two minutes of Nats-Msg-Id
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&info, impl_->js, &cfg, nullptr, &code);
  if (s != NATS_OK && code == JSStreamNameExistErr) {  // there already: bring its bound along
    code = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&info, impl_->js, &cfg, nullptr, &code);
  }
  if (info) jsStreamInfo_Destroy(info);
  if (s != NATS_OK) return failed("making stream " + name + " for " + subject, s, code);
  return {};
}

Result<bool> Engine::publish_end(const PortKey& target, const std::string& from) {
  return publish(target, {}, {}, {}, from);
}

Result<bool> Engine::publish(const PortKey& target, std::span<const std::byte> payload,
                             const Meta& meta, const std::string& id) {
  return publish(target, payload, meta, id, {});
}

Result<bool> Engine::publish(const PortKey& target, std::span<const std::byte> payload,
                             const Meta& meta, const std::string& id, const std::string& end) {
  const std::string subject = wire_subject(target);
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr,
                                reinterpret_cast<const char*>(payload.data()),
                                static_cast<int>(payload.size()));
  if (s != NATS_OK) return failed("making a message for " + subject, s);
  std::unique_ptr<natsMsg, void (*)(natsMsg*)> owned(msg, natsMsg_Destroy);
  if (meta.attempt)
    s = natsMsgHeader_Set(msg, kAttemptHeader, std::to_string(meta.attempt).c_str());
  if (s == NATS_OK && !meta.values.empty()) {
    std::array<std::byte, kMetaMaxBytes> encoded;
    auto n = MetaCodec::encode(meta, encoded);
    if (!n) return std::move(n).error();
    s = natsMsgHeader_Set(msg, kMetaHeader, hex(std::span(encoded).first(*n)).c_str());
  }
  if (s == NATS_OK && !id.empty()) s = natsMsgHeader_Set(msg, kMsgIdHeader, id.c_str());
  if (s == NATS_OK && !end.empty()) s = natsMsgHeader_Set(msg, kEndHeader, end.c_str());
  if (s != NATS_OK) return failed("setting the headers of a message for " + subject, s);
  jsPubAck* ack = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&ack, impl_->js, msg, nullptr, &code);
  if (ack) jsPubAck_Destroy(ack);
  if (s == NATS_OK) return true;
  if (code == JSStreamStoreFailedErr) return false;  // full: discard new
  return failed("publishing to " + subject, s, code);
}

Result<std::uint64_t> Engine::pending(const PortKey& target) {
  const std::string name = wire_stream(target);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&info, impl_->js, name.c_str(), nullptr, &code);
  if (s != NATS_OK) return failed("asking about stream " + name, s, code);
  const std::uint64_t n = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  return n;
}

Result<std::uint64_t> Engine::resume_point(const PortKey& target, const std::string& durable) {
  const std::string stream = wire_stream(target);
  jsStreamInfo* sinfo = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&sinfo, impl_->js, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) return failed("asking about stream " + stream, s, code);
  const std::uint64_t first = sinfo->State.FirstSeq;
  jsStreamInfo_Destroy(sinfo);
  jsConsumerInfo* cinfo = nullptr;
  s = js_GetConsumerInfo(&cinfo, impl_->js, stream.c_str(), durable.c_str(), nullptr, &code);
  if (s != NATS_OK) return failed("asking about consumer " + durable + " of " + stream, s, code);
  const std::uint64_t floor = cinfo->AckFloor.Stream;
  jsConsumerInfo_Destroy(cinfo);
  // What is below the stream's first message left it (acked); an empty stream's first
  // sequence is the next one to be stored.
  return std::max(floor + 1, first);
}

Result<WireState> Engine::wire_state(const PortKey& target) {
  if (natsConnection_Status(impl_->conn) != NATS_CONN_STATUS_CONNECTED)
    return Error{Errc::not_ready, "the NATS server at " + urls_text(impl_->urls) +
                                      " is away; the connection is being made again"};
  WireState w;
  auto stored = pending(target);
  if (!stored) return std::move(stored).error();
  w.stored = *stored;
  const std::string stream = wire_stream(target), consumer = wire_consumer(target);
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_GetConsumerInfo(&info, impl_->js, stream.c_str(), consumer.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSConsumerNotFoundErr) return w;  // no ingress pulled yet
  if (s != NATS_OK) return failed("asking about consumer " + consumer + " of " + stream, s, code);
  w.pulled = true;
  w.in_flight = static_cast<std::uint64_t>(std::max<std::int64_t>(info->NumAckPending, 0));
  // Every delivery takes a consumer sequence number, and the first delivery of each message
  // one of the stream's: the consumer (made before or with the stream's first message) is ahead
  // by its redeliveries.
  if (info->Delivered.Consumer > info->Delivered.Stream)
    w.redelivered = info->Delivered.Consumer - info->Delivered.Stream;
  jsConsumerInfo_Destroy(info);
  return w;
}

// ---- Puller -----------------------------------------------------------------------------

struct Puller::Impl {
  natsSubscription* sub = nullptr;
  std::string subject;
  ~Impl() {
    if (sub) natsSubscription_Destroy(sub);
  }
};

Puller::Puller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Puller::~Puller() = default;

Result<std::unique_ptr<Puller>> Engine::pull(const PortKey& target, const std::string& durable) {
  auto impl = std::make_unique<Puller::Impl>();
  impl->subject = wire_subject(target);
  const std::string stream = wire_stream(target);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.AckWait = 2LL * 1'000'000'000;  // unacked this long (a bridge that died): again
  // No more in flight than one fetch: after a bridge died, its unacked messages come again
  // before any later one, so a source's order holds.
  so.Config.MaxAckPending = kMaxInFlight;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_PullSubscribe(&impl->sub, impl_->js, impl->subject.c_str(),
                                        durable.c_str(), nullptr, &so, &code);
  if (s != NATS_OK)
    return failed("pulling from " + stream + " as " + durable, s, code);
  return std::make_unique<Puller>(std::move(impl));
}

Result<std::vector<Pulled>> Puller::fetch(int max, std::chrono::milliseconds wait) {
  natsMsgList list{};
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = natsSubscription_Fetch(&list, impl_->sub, max, wait.count(), &code);
  std::vector<Pulled> out;
  if (s == NATS_TIMEOUT) return out;  // nothing came
  if (s != NATS_OK) return failed("fetching from " + impl_->subject, s, code);
  for (int i = 0; i < list.Count; ++i) {
    auto m = std::make_unique<Pulled::Msg>();
    m->msg = list.Msgs[i];
    list.Msgs[i] = nullptr;  // ours now
    Pulled p(std::move(m));
    const char* value = nullptr;
    if (natsMsgHeader_Get(p.msg_->msg, kEndHeader, &value) == NATS_OK && value)
      p.end_of_ = value;
    if (natsMsgHeader_Get(p.msg_->msg, kAttemptHeader, &value) == NATS_OK && value)
      p.meta_.attempt = static_cast<std::uint32_t>(std::strtoul(value, nullptr, 10));
    if (natsMsgHeader_Get(p.msg_->msg, kMetaHeader, &value) == NATS_OK && value) {
      // The pairs as a pusher encoded them; checked as a record's meta is.
      if (auto bytes = unhex(value)) {
        MetaView view;
        std::span<const std::byte> payload;
        std::uint64_t stamp;
        if (MetaCodec::decode(*bytes, view, payload, stamp)) p.meta_.values = view.copy().values;
      }
    }
    jsMsgMetaData* md = nullptr;
    if (natsMsg_GetMetaData(&md, p.msg_->msg) == NATS_OK && md) {
      p.delivered_ = md->NumDelivered;
      p.stream_seq_ = md->Sequence.Stream;
      jsMsgMetaData_Destroy(md);
    }
    out.push_back(std::move(p));
  }
  natsMsgList_Destroy(&list);
  return out;
}

}  // namespace bloccs::bridge
